"""Errors view: the error e (solid), the instantaneous error ε (dotted) and the AM adjoint λ
(dash-dot, paper Eq. 9 / Fig. 2) of every neuron, each in its neuron's colour.

Render-only: λ and its fits are computed by :class:`gle_lab.adjoint_overlay.AdjointOverlay`
(from the recorded trajectory, a few times a second); this view draws what it holds.
"""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource
from panel.viewable import Viewer

from ..adjoint_overlay import AdjointOverlay
from .style import add_legend, add_line, apply_plot_mode, make_figure, neuron_color

NOTE = ("λ: AM adjoint (paper Eq. 9) of the visible window, integrated backward from its end "
        "(the last few τm are truncated); refreshed a few times a second and on pause.")


def _mode_label(state):
    return getattr(state, "mode_label", None) or state.error_mode.upper()


class ErrorsView(Viewer):
    title = "Errors"

    def __init__(self, state, traces, overlay=None, **params):
        super().__init__(**params)
        self.state, self.traces = state, traces
        self.overlay = overlay if overlay is not None else AdjointOverlay(state)
        self.height, self.mode = 250, "wide"
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.note = pn.pane.HTML(f"<p style='margin:0'>{NOTE}</p>",
                                 styles={"font-size": "14px", "color": "#4d4d4d"},
                                 margin=(0, 10), sizing_mode="stretch_width")
        self.layout = pn.Column(self.pane, self.note, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-errors"])
        if "mode_label" in state.param:
            state.param.watch(lambda e: self._retitle(), "mode_label")

    # the overlay's cadence and results, under the names the dashboard and tests use
    adjoint_every = property(lambda self: self.overlay.every)
    adjoint_updates = property(lambda self: self.overlay.updates)
    adjoint_cost = property(lambda self: self.overlay.cost)
    adjoint_fits = property(lambda self: self.overlay.fits)
    last_adjoint = property(lambda self: self.overlay.last)

    @staticmethod
    def adjoint_available():
        return True

    def _title(self):
        return (f"Errors ({_mode_label(self.state)}): error e (solid), instantaneous ε "
                "(dotted), AM adjoint λ (dash-dot)")

    def _retitle(self):
        fig = self.pane.object
        if fig is not None and fig.title.text != self._title():
            fig.title.text = self._title()

    def _figure(self):
        st, tr = self.state, self.traces
        fig = make_figure(self._title(), "time t (a.u.)", "error", height=self.height,
                          x_range=tr.x_range, y_range=tr.y_ranges["errors"].range)
        src = tr.source
        for j, lab in enumerate(st.labels):
            c = neuron_color(j)
            add_line(fig, "t", f"e{j}", src, color=c, width=3, label=f"e {lab}")
            add_line(fig, "t", f"eps{j}", src, color=c, width=2, dash="dotted",
                     label=f"ε {lab}")
        self.add_adjoint(fig)
        return apply_plot_mode(add_legend(fig), self.mode, short_title=self._short())

    def set_mode(self, mode):
        """Fit the plot to a page layout (toolbar, legend place)."""
        self.mode = mode
        apply_plot_mode(self.pane.object, mode, short_title=self._short())

    def _short(self):
        # a phone's width, or half of a projector's (presentation: beside the microcircuit)
        return getattr(self, "mode", None) in ("phone", "present")

    def _empty(self):
        return {"t": np.zeros(0), **{f"lam{j}": np.zeros(0)
                                     for j in range(self.state.n_neurons)}}

    def add_adjoint(self, fig):
        """The AM adjoint λ of every neuron: dash-dot lines in its colour, own source."""
        self.adjoint_source = ColumnDataSource(self._empty())
        self.traces.y_ranges["errors"].extra = [
            (self.adjoint_source, [f"lam{j}" for j in range(self.state.n_neurons)])]
        for j, lab in enumerate(self.state.labels):
            add_line(fig, "t", f"lam{j}", self.adjoint_source, color=neuron_color(j),
                     width=2.5, dash="dotdash", alpha=0.9, label=f"λ {lab} (AM)")
        return fig

    # ------------------------------------------------------------------ λ refresh
    def update_adjoint(self):
        """Have the overlay recompute λ, then draw it (decimated like the traces).
        Returns the computed dict or None."""
        st = self.state
        res = self.overlay.update()
        if res is None:
            return None
        keep = res["ids"] % st.decimation == 0
        data = {"t": res["t"][keep]}
        for j in range(res["lam"].shape[1]):
            data[f"lam{j}"] = np.ascontiguousarray(res["lam"][keep, j])
        self.adjoint_source.data = data
        lam = res["lam"][np.isfinite(res["lam"])]
        if len(lam):                              # λ shares the errors' axis
            self.traces.y_ranges["errors"].fit(float(lam.min()), float(lam.max()))
        return res

    def set_height(self, height):
        self.height = int(height)
        if self.pane.object is not None and self.pane.object.height != self.height:
            self.pane.object.height = self.height

    def clear(self):
        self.adjoint_source.data = self._empty()
        self.overlay.clear()

    def rebuild(self):
        self.pane.object = self._figure()
        self.overlay.clear()

    def __panel__(self):
        return self.layout

    @property
    def panel(self):
        return self.layout
