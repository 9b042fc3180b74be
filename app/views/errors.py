"""Errors view: GLE error e (solid), instantaneous error ε (dotted, neuron colour) and the AM
adjoint λ (dotted black, paper Eq. 9 / Fig. 2) of every neuron.

λ is computed from the *recorded* forward trajectory (rates r, φ′(ŭ) and targets of the
simulator's probes) with :func:`gle_core.adjoint.adjoint_traces` over the visible window,
integrated backward in time from the window's end (so its last few τm are truncated: λ = 0
after the window). It is on the time axis of e (see the ``gle_core.adjoint`` docstring) and in
the same units, so the overlay shows how well GLE's online e approximates the exact adjoint.

The computation is not per frame: :meth:`ErrorsView.update_adjoint` runs every few frames
(adaptively, so that it costs about :data:`ADJOINT_BUDGET_MS` per frame on average), on pause
and after a single step. Each refresh also fits gain and phase of λ against α (the adjoint's
instantaneous error) at the drive frequency for the Fourier view's dots.
"""
from __future__ import annotations

import math
import time

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource

from gle_core import fourier
from gle_core.adjoint import adjoint_traces

from .style import add_legend, make_figure, neuron_color

ADJOINT_COLOR_TRACE = "black"
#: average server CPU (ms per frame) the λ recomputation may use
ADJOINT_BUDGET_MS = 0.3
#: recompute λ at most / at least every this many frames
ADJOINT_MIN_EVERY, ADJOINT_MAX_EVERY = 6, 45
#: λ is trusted up to this many τm (the layer's largest) before the window's end
TRUNCATION_TAUS = 5.0
#: signals the λ overlay needs from the simulator's probes
ADJOINT_RECORD = ("t", "r", "r_prime", "target")


def compute_adjoint(state, n_samples=None):
    """λ and α of every neuron over the last ``n_samples`` recorded steps (default: window).

    Returns ``None`` (nothing recorded, or the probes lack r_prime/target) or a dict with
    ``t`` (K,), ``ids`` (K,) absolute sample indices, ``lam`` and ``alpha`` (K, n_neurons),
    both for the recorded stream.
    """
    sim = state.sim
    probes = getattr(sim, "probes", {})
    if any(k not in probes for k in ADJOINT_RECORD):
        return None
    net = state.net
    n = len(probes["t"])
    if n_samples is None:
        n_samples = int(math.ceil(state.window / net.dt)) + 1
    K = min(n, int(n_samples))
    if K < 2:
        return None
    total = probes["t"].total
    t = probes["t"].last(K)
    r = probes["r"].last(K)
    rp = probes["r_prime"].last(K)
    y = probes["target"].last(K)
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(rp)) and np.all(np.isfinite(y))):
        return None
    _, lam, alpha = adjoint_traces(net, r, rp, y, t)
    return {"t": t, "ids": np.arange(total - K, total),
            "lam": np.concatenate([a[:, 0, :] for a in lam], axis=1),
            "alpha": np.concatenate([a[:, 0, :] for a in alpha], axis=1)}


class ErrorsView:
    title = "Errors"

    def __init__(self, state, traces):
        self.state, self.traces = state, traces
        self.adjoint_every = ADJOINT_MIN_EVERY
        self.adjoint_cost = 0.0           # seconds of the last λ computation
        self.adjoint_updates = 0
        self.adjoint_fits = {}            # ω -> GainPhaseFit of λ against α (selected neuron)
        self._fits_history = None
        self.last_adjoint = None
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.note = pn.pane.Str(
            "λ: AM adjoint (paper Eq. 9) of the visible window, integrated backward from its "
            "end (the last few τm are truncated); refreshed a few times a second and on pause.",
            styles={"font-size": "11px", "color": "#777"}, margin=(0, 10))

    @staticmethod
    def adjoint_available():
        return True

    def _figure(self):
        st, tr = self.state, self.traces
        fig = make_figure("Errors: GLE error e (solid), instantaneous ε (dotted), "
                          "AM adjoint λ (dotted black)", "time t (a.u.)", "error",
                          x_range=tr.x_range, y_range=tr.y_ranges["errors"].range)
        src = tr.source
        for j, lab in enumerate(st.labels):
            c = neuron_color(j)
            fig.line("t", f"e{j}", source=src, color=c, line_width=2.5, legend_label=f"e {lab}")
            fig.line("t", f"eps{j}", source=src, color=c, line_width=2, line_dash="dotted",
                     legend_label=f"ε {lab}")
        self.add_adjoint(fig)
        return add_legend(fig)

    def _empty(self):
        return {"t": np.zeros(0), **{f"lam{j}": np.zeros(0)
                                     for j in range(self.state.n_neurons)}}

    def add_adjoint(self, fig):
        """The AM adjoint λ of every neuron: dotted black lines over their own source."""
        self.adjoint_source = ColumnDataSource(self._empty())
        self.traces.y_ranges["errors"].extra = [
            (self.adjoint_source, [f"lam{j}" for j in range(self.state.n_neurons)])]
        for j, lab in enumerate(self.state.labels):
            fig.line("t", f"lam{j}", source=self.adjoint_source, color=ADJOINT_COLOR_TRACE,
                     line_width=2.5, line_dash=[2, 3], legend_label=f"λ {lab} (AM)")
        return fig

    # ------------------------------------------------------------------ λ refresh
    def update_adjoint(self):
        """Recompute λ over the visible window, send it (decimated like the traces) and fit
        its gain/phase against α at the drive frequency. Returns the computed dict or None."""
        st = self.state
        t0 = time.perf_counter()
        res = compute_adjoint(st)
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
        self._fit(res)
        self.last_adjoint = res
        self.adjoint_cost = time.perf_counter() - t0
        self.adjoint_updates += 1
        # spend ~ADJOINT_BUDGET_MS per frame on average
        self.adjoint_every = int(min(ADJOINT_MAX_EVERY, max(
            ADJOINT_MIN_EVERY, math.ceil(self.adjoint_cost * 1e3 / ADJOINT_BUDGET_MS))))
        return res

    def _fit(self, res):
        st = self.state
        hist = st.readout.history
        if hist is not self._fits_history:      # τ, neuron or mode changed: old dots are stale
            self.adjoint_fits = {}
            self._fits_history = hist
        omega = st.drive_frequency()
        if omega is None:
            return
        tm, tr = st.neuron_taus()
        layer, _ = st.neuron_location()
        tau_max = float(max(np.max(a) for a in st.net.tau_m[layer:]))
        t = res["t"]
        settle = min(3.0 * max(tm, tr), 60.0)
        sel = (t >= st._t_change + settle) & (t <= t[-1] - TRUNCATION_TAUS * tau_max)
        if np.count_nonzero(sel) < 8:
            return
        j = st.neuron
        fit = fourier.measure_gain_phase(t[sel], res["alpha"][sel, j], res["lam"][sel, j],
                                         omega, max_periods=2,
                                         # a square wave's harmonics are orthogonal over
                                         # whole periods; a sum of sines' are not
                                         max_residual=(1.0 if st.waveform == "smoothed_square"
                                                       else 0.05))
        if fit.ok:
            self.adjoint_fits[round(omega, 6)] = fit

    def clear(self):
        self.adjoint_source.data = self._empty()
        self.adjoint_fits = {}
        self.last_adjoint = None

    def rebuild(self):
        self.pane.object = self._figure()
        self.adjoint_fits = {}
        self.last_adjoint = None

    @property
    def panel(self):
        return pn.Column(self.pane, self.note, sizing_mode="stretch_width", margin=0)
