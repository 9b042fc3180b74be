"""Activity view: the input and the rate of every neuron, student (solid) and teacher (dashed)."""
from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from .style import INPUT_COLOR, add_legend, add_line, apply_plot_mode, make_figure, neuron_color


class ActivityView(Viewer):
    """Render-only: the traces come from the session's :class:`~gle_lab.streaming.TraceStream`."""

    title = "Activity"

    def __init__(self, state, traces, **params):
        super().__init__(**params)
        self.state, self.traces = state, traces
        self.height, self.mode = 250, "wide"
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.layout = pn.Column(self.pane, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-activity"])

    def _figure(self):
        st, tr = self.state, self.traces
        fig = make_figure("Activity: input x and rates r (student solid, teacher dashed)",
                          "time t (a.u.)", "rate", height=self.height, x_range=tr.x_range,
                          y_range=tr.y_ranges["activity"].range)
        src = tr.source
        add_line(fig, "t", "x", src, color=INPUT_COLOR, width=1.5, alpha=0.7, label="input x")
        teacher = st.sim.teacher is not None
        for j, lab in enumerate(st.labels):
            c = neuron_color(j)
            add_line(fig, "t", f"r{j}", src, color=c, width=3, label=f"r {lab}")
            if teacher:
                add_line(fig, "t", f"tr{j}", src, color=c, width=2, dash="dashed", alpha=0.9,
                         label=f"r {lab} teacher")
        return apply_plot_mode(add_legend(fig), self.mode)

    def set_mode(self, mode):
        """Fit the plot to a page layout (toolbar, legend place)."""
        self.mode = mode
        apply_plot_mode(self.pane.object, mode)

    def set_height(self, height):
        """Plot height in px (the page layout: presentation, wide or phone)."""
        self.height = int(height)
        if self.pane.object is not None and self.pane.object.height != self.height:
            self.pane.object.height = self.height

    def rebuild(self):
        self.pane.object = self._figure()

    def __panel__(self):
        return self.layout

    @property
    def panel(self):
        return self.layout
