"""Errors view: GLE error e (solid) and instantaneous error ε (dotted) of every neuron.

The AM adjoint λ (exact gradients, spec §4) will be added from ``gle_core.adjoint`` when it
exists: :meth:`ErrorsView.adjoint_available` is the switch, :meth:`ErrorsView.add_adjoint`
the place where its trace joins the figure.
"""
from __future__ import annotations

import importlib.util

import panel as pn

from .style import add_legend, make_figure, neuron_color


class ErrorsView:
    title = "Errors"

    def __init__(self, state, traces):
        self.state, self.traces = state, traces
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        note = ("" if self.adjoint_available() else
                "AM adjoint λ: coming with gle_core.adjoint (exact gradients)")
        self.note = pn.pane.Str(note, styles={"font-size": "11px", "color": "#777"},
                                margin=(0, 10))

    @staticmethod
    def adjoint_available():
        return importlib.util.find_spec("gle_core.adjoint") is not None

    def _figure(self):
        st, tr = self.state, self.traces
        fig = make_figure("Errors: GLE error e (solid) and instantaneous error ε (dotted)",
                          "time t (a.u.)", "error", x_range=tr.x_range)
        src = tr.source
        for j, lab in enumerate(st.labels):
            c = neuron_color(j)
            fig.line("t", f"e{j}", source=src, color=c, line_width=2.5, legend_label=f"e {lab}")
            fig.line("t", f"eps{j}", source=src, color=c, line_width=2, line_dash="dotted",
                     legend_label=f"ε {lab}")
        self.add_adjoint(fig)
        return add_legend(fig)

    def add_adjoint(self, fig):
        """Hook for the AM adjoint λ trace (needs gle_core.adjoint; nothing to draw yet)."""
        return fig

    def rebuild(self):
        self.pane.object = self._figure()

    @property
    def panel(self):
        parts = [self.pane] + ([self.note] if self.note.object else [])
        return pn.Column(*parts, sizing_mode="stretch_width", margin=0)
