"""Activity view: the input and the rate of every neuron, student (solid) and teacher (dashed)."""
from __future__ import annotations

import panel as pn

from .style import INPUT_COLOR, add_legend, make_figure, neuron_color


class ActivityView:
    title = "Activity"

    def __init__(self, state, traces):
        self.state, self.traces = state, traces
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")

    def _figure(self):
        st, tr = self.state, self.traces
        fig = make_figure("Activity: input x and rates r (student solid, teacher dashed)",
                          "time t (a.u.)", "rate", x_range=tr.x_range,
                          y_range=tr.y_ranges["activity"].range)
        src = tr.source
        fig.line("t", "x", source=src, color=INPUT_COLOR, line_width=1.5, alpha=0.6,
                 legend_label="input x")
        teacher = st.sim.teacher is not None
        for j, lab in enumerate(st.labels):
            c = neuron_color(j)
            fig.line("t", f"r{j}", source=src, color=c, line_width=2.5,
                     legend_label=f"r {lab}")
            if teacher:
                fig.line("t", f"tr{j}", source=src, color=c, line_width=2, line_dash="dashed",
                         alpha=0.8, legend_label=f"r {lab} teacher")
        return add_legend(fig)

    def rebuild(self):
        self.pane.object = self._figure()

    @property
    def panel(self):
        return self.pane
