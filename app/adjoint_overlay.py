"""The AM adjoint λ of the visible window and its gain/phase fits (computed, not drawn).

λ is computed from the *recorded* forward trajectory (rates r, φ′(ŭ) and targets of the
simulator's probes) with :func:`gle_core.adjoint.adjoint_traces` over the visible window,
integrated backward in time from the window's end (so its last few τm are truncated: λ = 0
after the window). It is on the time axis of e (see the ``gle_core.adjoint`` docstring) and in
the same units, so the Errors view can overlay it on GLE's online e (paper Eq. 9 / Fig. 2).

:meth:`AdjointOverlay.update` runs every few frames (adaptively, so that it costs about
:data:`ADJOINT_BUDGET_MS` per frame on average), on pause and after a single step. Each refresh
also fits gain and phase of λ against α (the adjoint's instantaneous error) at the drive
frequency: the Fourier view's measured adjoint dots. The views only draw what this holds.
"""
from __future__ import annotations

import math
import time

import numpy as np

from gle_core import fourier
from gle_core.adjoint import adjoint_traces

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
    both for the recorded stream, and ``cost`` (s of CPU it took). Members of a shared run
    (:mod:`gle_lab.shared_runs`) share one computation: its users read the dict and add
    only to its ``fits`` memo (see :meth:`AdjointOverlay._fit`).
    """
    run = getattr(state, "shared_run", None)
    if run is not None:
        return run.reuse(("adjoint", n_samples, state.window),
                         lambda: _compute_adjoint(state, n_samples))
    return _compute_adjoint(state, n_samples)


def _compute_adjoint(state, n_samples):
    sim = state.sim
    probes = getattr(sim, "probes", {})
    if any(k not in probes for k in ADJOINT_RECORD):
        return None
    t0 = time.perf_counter()
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
            "alpha": np.concatenate([a[:, 0, :] for a in alpha], axis=1),
            "cost": time.perf_counter() - t0, "fits": {}}


class AdjointOverlay:
    """λ of the visible window (``last``) and its fits by ω (``fits``) for one session."""

    def __init__(self, state):
        self.state = state
        self.every = ADJOINT_MIN_EVERY
        self.cost = 0.0                   # seconds of the last λ computation
        self.updates = 0
        self.fits = {}                    # ω -> GainPhaseFit of λ against α (selected neuron)
        self.last = None
        self._fits_history = None

    def update(self):
        """Recompute λ over the visible window and fit it; returns the dict or ``None``."""
        res = compute_adjoint(self.state)
        if res is None:
            return None
        t0 = time.perf_counter()
        self._fit(res)
        self.last = res
        # what computing λ cost, whoever computed it: a member of a shared run that reused
        # it paces itself as a session of its own would (not by the ~0 of reusing it)
        self.cost = res["cost"] + (time.perf_counter() - t0)
        self.updates += 1
        # spend ~ADJOINT_BUDGET_MS per frame on average
        self.every = int(min(ADJOINT_MAX_EVERY, max(
            ADJOINT_MIN_EVERY, math.ceil(self.cost * 1e3 / ADJOINT_BUDGET_MS))))
        return res

    def _fit(self, res):
        st = self.state
        hist = st.readout.history
        if hist is not self._fits_history:      # τ, neuron or mode changed: old dots are stale
            self.fits = {}
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
        # everything the fit depends on besides res: members of a shared run fit once
        key = (omega, j, st._t_change + settle, tau_max, st.waveform)
        fit = res["fits"].get(key)
        if fit is None:
            fit = res["fits"][key] = fourier.measure_gain_phase(
                t[sel], res["alpha"][sel, j], res["lam"][sel, j], omega, max_periods=2,
                # a square wave's harmonics are orthogonal over whole periods; a sum of
                # sines' are not
                max_residual=1.0 if st.waveform == "smoothed_square" else 0.05)
        if fit.ok:
            self.fits[round(omega, 6)] = fit

    def clear(self):
        self.fits = {}
        self.last = None
