"""Fourier view: gain and phase against ω (log axis) of the selected neuron's three paths.

* forward rate path D⁺τr I⁻τm (drive → ŭ),
* GLE error path D⁺τm I⁻τr (ε → e, paper Eq. 7),
* AM adjoint I⁺τm D⁻τr (paper Eq. 9: same phase as the GLE error, inverse gain),

for the neuron's current τm, τr (continuous-time curves from :mod:`gle_core.fourier`), a marker
at the input frequency, and the gain/phase measured from the running simulation (dots; one per
input frequency visited since τ last changed; the adjoint's dots are λ against α measured
on the λ traces of :class:`gle_lab.adjoint_overlay.AdjointOverlay`).

Everything is drawn in the selected neuron's colour; the path is told by the line style
(forward solid, error dashed, AM adjoint a wide translucent band under them: its gain equals
the forward gain and its phase the error phase, so a thin line would hide under those).
"""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, FixedTicker, Legend, Range1d, Span
from panel.viewable import Viewer

from gle_core import fourier

from ..streaming import decade_bounds

from .style import (add_legend, add_line, apply_plot_mode, decade_axis, make_figure,
                    neuron_color)

OMEGAS = np.logspace(-2, 2, 241)
#: the phase plot's height (px), and what it grows by for the one-column key of both plots
#: below it (phone and presentation layouts)
PHASE_HEIGHT, KEY_BELOW_EXTRA = 240, 90
#: (transfer function, legend label, line style: dash, width, alpha)
PATHS = (("am_adjoint", "AM adjoint I⁺τm D⁻τr (band)", ("solid", 9, 0.3)),
         ("forward", "forward D⁺τr I⁻τm", ("solid", 2.5, 1.0)),
         ("gle_error", "GLE error D⁺τm I⁻τr", ("dashed", 2.5, 1.0)))


def _close(a, b, rtol=0.0, atol=0.0):
    """``np.allclose`` for the few points of a Fourier dot set, in plain Python: numpy's
    costs ~20 µs a call on lists this short, three calls per update, several updates a
    second per session."""
    return len(a) == len(b) and all(abs(x - y) <= atol + rtol * abs(y) for x, y in zip(a, b))


class FourierView(Viewer):
    title = "Fourier"

    def __init__(self, state, **params):
        super().__init__(**params)
        self.state = state
        # the source's tags: the (τm, τr) its curves are for. The page draws a τ slider's
        # curves itself at once (assets/js/page.js, "sliders answered here") and
        # knows from them when the server's are for the same τ.
        self.curves = ColumnDataSource(self._curve_data(), tags=list(state.neuron_taus()))
        self.measured = {k: ColumnDataSource({"w": [], "gain": [], "phase": []})
                         for k in ("forward", "error", "adjoint")}
        self.gain_fig, self.phase_fig = self._figures()
        self.layout = pn.Column(pn.pane.Bokeh(self.gain_fig, sizing_mode="stretch_width"),
                                pn.pane.Bokeh(self.phase_fig, sizing_mode="stretch_width"),
                                sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-fourier"])

    def _curve_data(self):
        st = self.state
        tm, tr = st.neuron_taus()
        data = {"w": OMEGAS}
        for kind, *_ in PATHS:
            g, p = fourier.gain_phase(fourier.transfer(kind, OMEGAS, tm, tr))
            data[f"{kind}_gain"] = g
            data[f"{kind}_phase"] = np.degrees(p)
        return data

    @staticmethod
    def _gain_bounds(data):
        """Whole decades around every curve's gain (the axis moves only past a decade)."""
        gains = np.concatenate([np.asarray(data[f"{kind}_gain"]) for kind, *_ in PATHS])
        return decade_bounds(float(np.min(gains)) / 1.2, float(np.max(gains)) * 1.2)

    def _figures(self):
        # Fixed axes the server sets, not auto-ranging ones: the curves move when τ moves
        # (what the class should see) while the axes stay put, and the browser repaints
        # once per change instead of again when its data range catches up.
        self.gain_range = Range1d(*self._gain_bounds(self.curves.data))
        gain = make_figure("Gain |H(ω)|", "", "gain", height=220, x_axis_type="log",
                           y_axis_type="log", y_range=self.gain_range,
                           x_range=Range1d(OMEGAS[0], OMEGAS[-1]))
        phase = make_figure("Phase arg H(ω)  (+ = leads)", "ω (rad/a.u.)", "phase (°)",
                            height=PHASE_HEIGHT, x_axis_type="log", x_range=gain.x_range,
                            y_range=Range1d(-100.0, 100.0))
        # every path here is first order over first order: its phase lies within ±90°
        phase.yaxis.ticker = FixedTicker(ticks=[-90, -45, 0, 45, 90])
        for ax in (gain.xaxis, gain.yaxis, phase.xaxis):
            decade_axis(ax)                                    # 0.01 … 100, no TeX
        color = neuron_color(self.state.neuron)
        self._colored = []                                     # glyphs in the neuron's colour
        for kind, label, (dash, width, alpha) in PATHS:
            for fig, col in ((gain, "gain"), (phase, "phase")):
                r = add_line(fig, "w", f"{kind}_{col}", self.curves, color=color, width=width,
                             dash=dash, alpha=alpha, label=label)
                self._colored.append(r.glyph)
        for key, label, marker in (("forward", "measured forward", "circle"),
                                   ("error", "measured error", "square"),
                                   ("adjoint", "measured adjoint λ/α", "diamond")):
            for fig, col in ((gain, "gain"), (phase, "phase")):
                r = fig.scatter("w", col, source=self.measured[key], size=12, color=color,
                                line_color="black", marker=marker, legend_label=label)
                self._colored.append(r.glyph)
        self._color = color
        self.markers = []
        for fig in (gain, phase):
            span = Span(location=self.state.omega, dimension="height", line_color="#555555",
                        line_dash="dotdash", line_width=2)
            fig.add_layout(span)
            self.markers.append(span)
        phase.add_layout(Span(location=0, dimension="width", line_color="#999999",
                              line_width=1))
        add_legend(gain)
        add_legend(phase)
        # the legends draw stand-ins with copies of the glyphs (style.detached_items): they
        # take the neuron's colour with the curves
        self._colored += [r.glyph for fig in (gain, phase) for legend in fig.select(type=Legend)
                          for item in legend.items for r in item.renderers]
        return gain, phase

    def set_mode(self, mode):
        """Fit the plots to a page layout (toolbar, legend place). On a phone and in
        presentation (half a projector's width) one key, below the phase plot, serves both
        plots: beside them it took more width than the plots had, and its labels are too
        long for two columns below; the phase plot grows by its rows."""
        below = mode in ("phone", "present")
        for fig in (self.gain_fig, self.phase_fig):
            apply_plot_mode(fig, mode, legend_side="below" if below else "right")
        for legend in self.gain_fig.select(type=Legend):
            if legend.visible == below:
                legend.visible = not below
        height = PHASE_HEIGHT + (KEY_BELOW_EXTRA if below else 0)
        if self.phase_fig.height != height:
            self.phase_fig.height = height

    def update_curves(self):
        """Recompute the analytic curves (τ of the selected neuron changed)."""
        color = neuron_color(self.state.neuron)
        if color != self._color:                  # another neuron selected: its colour
            self._color = color
            for glyph in self._colored:
                if hasattr(glyph, "fill_color"):
                    glyph.fill_color = color
                else:
                    glyph.line_color = color
        data = self._curve_data()
        self.curves.tags = list(self.state.neuron_taus())     # before the data: see __init__
        self.curves.data = data
        lo, hi = self._gain_bounds(data)
        if (self.gain_range.start, self.gain_range.end) != (lo, hi):
            self.gain_range.update(start=lo, end=hi)

    def update(self, adjoint_fits=None):
        """Move the ω marker and plot the measured points (cheap; a few times a second).

        ``adjoint_fits``: {ω: GainPhaseFit} of λ against α (from the adjoint overlay)."""
        st = self.state
        w = st.drive_frequency()
        for span in self.markers:
            span.visible = w is not None
            if w is not None and span.location != w:
                span.location = w
        hist = st.readout.history
        sets = [("forward", {w_: f[0] for w_, f in hist.items()}),
                ("error", {w_: f[1] for w_, f in hist.items()})]
        if adjoint_fits is not None:
            sets.append(("adjoint", adjoint_fits))
        for name, fits_by_w in sets:
            ws, gs, ps = [], [], []
            for w_, fit in fits_by_w.items():
                if fit is not None and fit.ok:
                    ws.append(w_)
                    gs.append(fit.gain)
                    ps.append(float(np.degrees(fit.phase)))
            new = {"w": ws, "gain": gs, "phase": ps}
            old = self.measured[name].data
            if list(old["w"]) != ws or not _close(old["phase"], ps, atol=0.05) or \
                    not _close(old["gain"], gs, rtol=1e-3):
                # only a visible change is sent (every property set is a websocket message)
                self.measured[name].data = new

    def rebuild(self):
        self.update_curves()
        for src in self.measured.values():
            src.data = {"w": [], "gain": [], "phase": []}

    def __panel__(self):
        return self.layout

    @property
    def panel(self):
        return self.layout
