"""Frequency-domain view of GLE neurons: transfer functions and gain/phase measurement.

This module gives the analytic complex transfer functions of the GLE operators (paper
Eqs. 1, 2, 11, 12), of the two neuron paths built from them (forward rates, paper Eq. 6;
GLE errors, paper Eq. 7) and of the adjoint-method operator they are compared with (paper
Eq. 9), both in continuous time and *exactly* for the engine's explicit Euler scheme
(docs/model.md "The discrete scheme", "Closed-form checks"). It also measures gain and phase from
simulated traces, so the dashboard and the tests can compare a simulation with the closed forms.

Units and sign conventions
--------------------------
* Time and time constants τ are in arbitrary units (a.u.); angular frequency ω is in
  rad per a.u.; ``dt`` is the Euler step in a.u.
* A transfer function ``H(ω)`` is the complex factor by which a system multiplies the input
  ``e^{iωt}``: a real input ``cos(ωt)`` becomes ``|H| cos(ωt + arg H)`` in the steady state.
* **Positive phase means the output leads the input** (it reaches its peaks earlier);
  negative phase means it lags. The equivalent time shift is ``phase / ω`` a.u. of lead
  (:func:`lead_time`). Phases are wrapped to ``(-π, π]`` (:func:`wrap_phase`).
* A retrospective (low-pass) operator ``I⁻`` has negative phase (lag), a prospective operator
  ``D⁺`` positive phase (lead). The forward neuron ``D⁺_τr I⁻_τm`` *lags* when τr < τm, and the
  GLE error path ``D⁺_τm I⁻_τr`` then *leads* by exactly the same phase: the "phase inversion"
  (docs/model.md "Closed-form checks" 3). :func:`phase_inversion_mismatch` returns how far a pair
  of measured phases is from that ideal (0 when forward lag and error lead cancel).

Continuous transfer functions (``dt=None``; paper Eqs. 11, 12)
--------------------------------------------------------------
``I⁻_τ = 1/(1+iωτ)``, ``D⁺_τ = 1+iωτ``, ``I⁺_τ = 1/(1-iωτ)``, ``D⁻_τ = 1-iωτ``;
forward ``D⁺_τr I⁻_τm = (1+iωτr)/(1+iωτm)``; GLE error ``D⁺_τm I⁻_τr = (1+iωτm)/(1+iωτr)``;
AM adjoint ``I⁺_τm D⁻_τr = (1-iωτr)/(1-iωτm)``.

Exact discrete transfer functions (``dt`` given; docs/model.md "The discrete scheme", check 1,
check 2)
--------------------------------------------------------------------
With ``z = e^{iω dt}``, one Euler step of the soma is ``u_{k+1} = u_k + dt (s_k - u_k)/τm`` and
its prospective read-out is ``ŭ_k = u_k + τr (s_k - u_k)/τm``. Writing the *Euler frequency*
``σ = (z - 1)/dt`` (the forward difference; ``σ → iω`` as ``dt → 0``), every discrete operator is
its continuous counterpart with ``iω`` replaced by ``σ``:

* ``I⁻_τ = 1/(1 + τσ) = a/(z - (1 - a))`` with ``a = dt/τ`` -- the Euler leaky integrator read
  out at its *start-of-step* value ``u_k`` (as the engine does);
* ``D⁺_τ = 1 + τσ`` -- ``x_k + τ (x_{k+1} - x_k)/dt``, the forward difference the engine forms
  when it computes ``ŭ = u_old + τr u̇`` with ``u̇ = (u_new - u_old)/dt``;
* forward neuron ``(1 + τr σ)/(1 + τm σ) = τr/τm + (1 - τr/τm) a_m/(z - (1 - a_m))``, which is
  exactly docs/model.md "Closed-form checks" 1; the GLE error path ``(1 + τm σ)/(1 + τr σ)`` is
  docs/model.md "Closed-form checks" 2.

Consequently the discrete GLE error operator is *exactly* the reciprocal of the discrete forward
operator (not only in the ``dt → 0`` limit): the phase inversion and Eq. 13 hold to rounding
error for the Euler scheme too.

The discrete AM adjoint
~~~~~~~~~~~~~~~~~~~~~~~
docs/model.md gives the continuous AM operator (paper Eq. 13). For the discrete scheme we take
the *exact* adjoint (transpose) of the discrete forward recursion. The forward map ``s ↦ ŭ`` is a causal
convolution with impulse response ``h_0 = τr/τm``, ``h_k = (1 - τr/τm) a_m (1 - a_m)^{k-1}``
(k ≥ 1); its transpose is the anti-causal correlation with the same ``h``, whose transfer
function is ``H(1/z)``, i.e. ``conj(H(z))`` on the unit circle (real impulse response). Reverse-mode
differentiation of the Euler steps gives exactly this recursion, run backwards in time:
``λ_k = (1 - τr/τm) α_k + (1 - a_m) λ_{k+1}``, ``∂L/∂s_k = (τr/τm) α_k + a_m λ_{k+1}`` (verified in
the tests). In operator form this is ``I⁺_τm D⁻_τr`` with ``σ → σ* = (1/z - 1)/dt`` (the backward
difference): ``I⁺_τ = 1/(1 + τσ*)``, ``D⁻_τ = 1 + τσ* = 1 - τ(1 - z⁻¹)/dt``.

The one-step Jacobi latency of the network (docs/model.md "The discrete scheme": each layer reads
its neighbours' start-of-step values, so the forward pass gains a factor ``z⁻¹`` per layer boundary
and the error pass a factor ``z⁻¹`` per boundary too, while the exact adjoint of a ``z⁻¹`` delay is
``z⁺¹``) is a property of the wiring, not of a single neuron; it is deliberately *not* folded into
these single-neuron transfer functions. Multiply by :func:`step_delay` to include it.

Measuring gain and phase
------------------------
:func:`measure_gain_phase` least-squares fits ``a cos ωt + b sin ωt + c`` to an input and an
output trace over the largest whole number of periods at the end of the given window and
returns their complex ratio (see its docstring for the failure policy).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .errors import GLEParameterError

__all__ = [
    "KINDS",
    "retrospective",
    "prospective",
    "retrospective_adjoint",
    "prospective_adjoint",
    "forward_neuron",
    "gle_error",
    "am_adjoint",
    "transfer",
    "step_delay",
    "gain_phase",
    "wrap_phase",
    "lead_time",
    "phase_inversion_mismatch",
    "GainPhaseFit",
    "measure_gain_phase",
]

#: The neuron-level transfer functions understood by :func:`transfer`.
#: ``"forward"``: drive s → prospective voltage ŭ (``D⁺_τr I⁻_τm``);
#: ``"gle_error"``: ε → e (``D⁺_τm I⁻_τr``, paper Eq. 7);
#: ``"am_adjoint"``: α → λ (``I⁺_τm D⁻_τr``, paper Eq. 9);
#: ``"ie_error"``: ε → e in instantaneous-error mode (identity, docs/model.md "Exact gradients").
KINDS = ("forward", "gle_error", "am_adjoint", "ie_error")

_TWO_PI = 2.0 * np.pi


# ----------------------------------------------------------------------------- validation

def _first_bad(arr: np.ndarray, bad: np.ndarray):
    """Return the first offending element (as a Python scalar) of ``arr`` where ``bad``."""
    return arr[bad].flat[0].item() if arr.ndim else arr.item()


def _check_omega(omega) -> np.ndarray:
    if np.iscomplexobj(omega):
        raise GLEParameterError("omega", omega, "real, finite values (rad per a.u.)")
    try:
        w = np.asarray(omega, dtype=float)
    except (TypeError, ValueError):
        raise GLEParameterError("omega", omega, "real, finite values (rad per a.u.)") from None
    bad = ~np.isfinite(w)
    if bad.any():
        raise GLEParameterError("omega", _first_bad(w, bad),
                                "real, finite values (rad per a.u.)")
    return w


def _check_tau(tau, name: str) -> np.ndarray:
    if np.iscomplexobj(tau):
        raise GLEParameterError(name, tau, "(0, inf) a.u.")
    try:
        t = np.asarray(tau, dtype=float)
    except (TypeError, ValueError):
        raise GLEParameterError(name, tau, "(0, inf) a.u.") from None
    bad = ~(np.isfinite(t) & (t > 0.0))
    if bad.any():
        raise GLEParameterError(name, _first_bad(t, bad), "(0, inf) a.u.",
                                "Time constants must be positive and finite.")
    return t


def _check_dt(dt, *integrated: Tuple[np.ndarray, str]) -> float:
    """Validate the Euler step; ``integrated`` lists (τ, name) pairs that are Euler-integrated."""
    if isinstance(dt, (bool, np.bool_)) or np.ndim(dt) != 0 or np.iscomplexobj(dt):
        raise GLEParameterError("dt", dt, "a real scalar in (0, inf) a.u., or None")
    try:
        d = float(dt)
    except (TypeError, ValueError):
        raise GLEParameterError("dt", dt, "a real scalar in (0, inf) a.u., or None") from None
    if not (np.isfinite(d) and d > 0.0):
        raise GLEParameterError("dt", d, "(0, inf) a.u., or None for continuous time")
    for tau, name in integrated:
        tmin = float(np.min(tau))
        if not d < 2.0 * tmin:
            raise GLEParameterError(
                "dt", d, f"(0, 2·{name}) = (0, {2.0 * tmin:g}) a.u.",
                f"Explicit Euler with {name} = {tmin:g} is not stable (|1 - dt/{name}| ≥ 1), "
                "so no steady-state response exists.")
    return d


# ------------------------------------------------------------------------ Euler frequency

def _sigma(w: np.ndarray, dt: Optional[float], adjoint: bool) -> np.ndarray:
    """Generalised frequency variable replacing ``iω``.

    Continuous: ``iω`` (``-iω`` for adjoints). Discrete: ``(z - 1)/dt`` with ``z = e^{iω dt}``
    (``z → 1/z`` for adjoints), computed without cancellation as
    ``z - 1 = -2 sin²(ω dt/2) + i sin(ω dt)``.
    """
    sign = -1.0 if adjoint else 1.0
    if dt is None:
        return 1j * (sign * w)
    theta = w * dt
    half = np.sin(0.5 * theta)
    return (-2.0 * half * half + 1j * (sign * np.sin(theta))) / dt


def _dt_or_none(dt, *integrated):
    return None if dt is None else _check_dt(dt, *integrated)


# ------------------------------------------------------------------ elementary operators

def retrospective(omega, tau, dt=None):
    """Transfer function of the retrospective (causal low-pass) operator ``I⁻_τ``.

    Paper Eqs. 1 and 12 (with the docs/model.md "Operators" normalisation ``τ ẏ = -y + x``):
    ``I⁻_τ(ω) = 1/(1 + iωτ)``.

    Parameters
    ----------
    omega : array_like of float
        Angular frequency (rad per a.u.); any finite real values (negative ω gives the
        complex conjugate).
    tau : float or array_like of float
        Time constant τ > 0 (a.u.); broadcast against ``omega``.
    dt : float, optional
        Euler step (a.u.). ``None`` (default) gives the continuous operator; otherwise the exact
        response of the engine's Euler integrator ``y_{k+1} = y_k + dt (x_k - y_k)/τ`` read out at
        its start-of-step value ``y_k``: ``a/(z - (1 - a))`` with ``z = e^{iω dt}``, ``a = dt/τ``.
        Requires ``dt < 2τ`` (Euler stability).

    Returns
    -------
    complex ndarray
        ``H(ω)``; gain ``|H|``, phase ``arg H`` (negative: the output lags).

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        If ω is not finite, τ ≤ 0, dt ≤ 0 or dt ≥ 2τ.
    """
    w = _check_omega(omega)
    t = _check_tau(tau, "tau")
    d = _dt_or_none(dt, (t, "tau"))
    return 1.0 / (1.0 + t * _sigma(w, d, adjoint=False))


def prospective(omega, tau, dt=None):
    """Transfer function of the prospective operator ``D⁺_τ{x} = x + τ ẋ``.

    Paper Eqs. 2 and 12: ``D⁺_τ(ω) = 1 + iωτ``, the exact inverse of ``I⁻_τ``.

    Parameters
    ----------
    omega : array_like of float
        Angular frequency (rad per a.u.).
    tau : float or array_like of float
        Time constant τ > 0 (a.u.).
    dt : float, optional
        ``None`` for continuous time; otherwise the engine's forward difference
        ``x_k + τ (x_{k+1} - x_k)/dt``, i.e. ``1 + τ (z - 1)/dt``. This is the exact inverse of
        the discrete :func:`retrospective` with the same τ and dt.

    Returns
    -------
    complex ndarray
        ``H(ω)`` (positive phase: the output leads).

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        If ω is not finite, τ ≤ 0 or dt ≤ 0.
    """
    w = _check_omega(omega)
    t = _check_tau(tau, "tau")
    d = _dt_or_none(dt)
    return 1.0 + t * _sigma(w, d, adjoint=False)


def retrospective_adjoint(omega, tau, dt=None):
    """Transfer function of the anti-causal low-pass ``I⁺_τ`` (adjoint of ``I⁻_τ``).

    Paper Eq. 11: ``I⁺_τ(ω) = 1/(1 - iωτ)``. With ``dt`` given, the exact transpose of the
    discrete :func:`retrospective`, ``a/(z⁻¹ - (1 - a))`` = ``conj`` of the causal one for real ω.

    Parameters
    ----------
    omega, tau, dt
        As in :func:`retrospective` (``dt < 2τ`` required).

    Returns
    -------
    complex ndarray
        ``H(ω)`` (positive phase: the output leads, it "looks into the future").

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        If ω is not finite, τ ≤ 0, dt ≤ 0 or dt ≥ 2τ.
    """
    w = _check_omega(omega)
    t = _check_tau(tau, "tau")
    d = _dt_or_none(dt, (t, "tau"))
    return 1.0 / (1.0 + t * _sigma(w, d, adjoint=True))


def prospective_adjoint(omega, tau, dt=None):
    """Transfer function of ``D⁻_τ{x} = x - τ ẋ`` (adjoint of ``D⁺_τ``).

    Paper Eq. 11: ``D⁻_τ(ω) = 1 - iωτ``. With ``dt`` given, the transpose of the discrete
    :func:`prospective`: the backward difference ``x_k - τ (x_k - x_{k-1})/dt``,
    i.e. ``1 + τ (z⁻¹ - 1)/dt``.

    Parameters
    ----------
    omega, tau, dt
        As in :func:`prospective`.

    Returns
    -------
    complex ndarray
        ``H(ω)`` (negative phase: the output lags).

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        If ω is not finite, τ ≤ 0 or dt ≤ 0.
    """
    w = _check_omega(omega)
    t = _check_tau(tau, "tau")
    d = _dt_or_none(dt)
    return 1.0 + t * _sigma(w, d, adjoint=True)


# ------------------------------------------------------------------ neuron compositions

def _ratio(omega, num_tau, num_name, den_tau, den_name, dt, adjoint):
    w = _check_omega(omega)
    tn = _check_tau(num_tau, num_name)
    td = _check_tau(den_tau, den_name)
    d = _dt_or_none(dt, (td, den_name))
    sig = _sigma(w, d, adjoint)
    return (1.0 + tn * sig) / (1.0 + td * sig)


def forward_neuron(omega, tau_m, tau_r, dt=None):
    """Forward path of a GLE neuron: drive ``s`` → prospective voltage ``ŭ``.

    ``ŭ = D⁺_τr I⁻_τm {s}`` (paper Eq. 6 and Postulate 1; docs/model.md "The network"), so
    ``H(ω) = (1 + iωτr)/(1 + iωτm)`` (Eqs. 11, 12). It lags for τr < τm (retrospective neuron),
    is the identity for τr = τm (LE neuron) and leads for τr > τm (prospective neuron).

    Parameters
    ----------
    omega : array_like of float
        Angular frequency (rad per a.u.).
    tau_m, tau_r : float or array_like of float
        Membrane and rate time constants (a.u., > 0), broadcast against ``omega``.
    dt : float, optional
        ``None`` for continuous time; otherwise the exact steady-state response of the Euler
        scheme of docs/model.md "The discrete scheme" step 4 (linear φ, γ = 0), docs/model.md
        "Closed-form checks" 1: ``τr/τm + (1 - τr/τm) a_m/(z - (1 - a_m))``, ``z = e^{iω dt}``,
        ``a_m = dt/τm`` (equivalently ``(1 + τr σ)/(1 + τm σ)``, ``σ = (z - 1)/dt``). Requires
        ``dt < 2 τm``.

    Returns
    -------
    complex ndarray
        ``H(ω)``.

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        If ω is not finite, a τ ≤ 0, dt ≤ 0 or dt ≥ 2 τm.
    """
    return _ratio(omega, tau_r, "tau_r", tau_m, "tau_m", dt, adjoint=False)


def gle_error(omega, tau_m, tau_r, dt=None):
    """GLE error path: ``ε`` → ``e = D⁺_τm I⁻_τr {ε}`` (paper Eq. 7; docs/model.md "The network").

    ``H(ω) = (1 + iωτm)/(1 + iωτr)``: the time constants are swapped with respect to
    :func:`forward_neuron`, and ``H`` is exactly its reciprocal (the "phase inversion"). The DC gain
    is 1 and the high-frequency gain tends to ``τm/τr`` (errors amplify fast noise when τr < τm).

    Parameters
    ----------
    omega : array_like of float
        Angular frequency (rad per a.u.).
    tau_m, tau_r : float or array_like of float
        Membrane and rate time constants of the neuron (a.u., > 0).
    dt : float, optional
        ``None`` for continuous time; otherwise the exact response of the error neuron's Euler
        scheme (docs/model.md "The discrete scheme" step 3: ``v̇ = (ε - v)/τr``, ``v ← v + dt v̇``,
        ``e = v + τm v̇``), docs/model.md "Closed-form checks" 2:
        ``τm/τr + (1 - τm/τr) a_r/(z - (1 - a_r))``, ``a_r = dt/τr``. This equals
        ``1/forward_neuron(omega, tau_m, tau_r, dt)`` exactly. Requires ``dt < 2 τr``.

    Returns
    -------
    complex ndarray
        ``H(ω)``.

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        If ω is not finite, a τ ≤ 0, dt ≤ 0 or dt ≥ 2 τr.
    """
    return _ratio(omega, tau_m, "tau_m", tau_r, "tau_r", dt, adjoint=False)


def am_adjoint(omega, tau_m, tau_r, dt=None):
    """Adjoint-method error operator ``λ = I⁺_τm D⁻_τr {α}`` (paper Eq. 9; docs/model.md "Exact
    gradients").

    ``H(ω) = (1 - iωτr)/(1 - iωτm)``, the adjoint (complex conjugate) of :func:`forward_neuron`.
    Paper Eq. 13: it has the same phase as :func:`gle_error` and the reciprocal gain.

    Parameters
    ----------
    omega : array_like of float
        Angular frequency (rad per a.u.).
    tau_m, tau_r : float or array_like of float
        Membrane and rate time constants (a.u., > 0).
    dt : float, optional
        ``None`` for continuous time; otherwise the exact adjoint (transpose) of the discrete
        forward recursion, ``H_fwd(1/z) = conj(H_fwd(z))``: what reverse-mode differentiation
        through the Euler steps of one neuron yields (see the module docstring; the per-layer
        Jacobi latency is not included). Because the discrete GLE error is exactly
        ``1/H_fwd(z)``, Eq. 13 holds exactly for the Euler scheme as well. Requires ``dt < 2 τm``.

    Returns
    -------
    complex ndarray
        ``H(ω)``.

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        If ω is not finite, a τ ≤ 0, dt ≤ 0 or dt ≥ 2 τm.
    """
    return _ratio(omega, tau_r, "tau_r", tau_m, "tau_m", dt, adjoint=True)


def transfer(kind, omega, tau_m, tau_r, dt=None):
    """Neuron-level transfer function by name.

    Parameters
    ----------
    kind : {"forward", "gle_error", "am_adjoint", "ie_error"}
        ``"forward"``: :func:`forward_neuron`; ``"gle_error"``: :func:`gle_error`;
        ``"am_adjoint"``: :func:`am_adjoint`; ``"ie_error"``: the instantaneous-error baseline
        (``e = ε``, docs/model.md "Exact gradients"), i.e. 1 at every ω.
    omega : array_like of float
        Angular frequency (rad per a.u.).
    tau_m, tau_r : float or array_like of float
        Membrane and rate time constants (a.u., > 0).
    dt : float, optional
        ``None`` for continuous time, else the Euler step (exact discrete response).

    Returns
    -------
    complex ndarray
        ``H(ω)`` broadcast over ``omega``, ``tau_m``, ``tau_r``.

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        For an unknown ``kind`` or an out-of-range parameter.
    """
    if kind == "forward":
        return forward_neuron(omega, tau_m, tau_r, dt)
    if kind == "gle_error":
        return gle_error(omega, tau_m, tau_r, dt)
    if kind == "am_adjoint":
        return am_adjoint(omega, tau_m, tau_r, dt)
    if kind == "ie_error":
        w = _check_omega(omega)
        tm = _check_tau(tau_m, "tau_m")
        tr = _check_tau(tau_r, "tau_r")
        _dt_or_none(dt)
        return np.ones(np.broadcast(w, tm, tr).shape, dtype=complex)
    raise GLEParameterError("kind", kind, "one of " + ", ".join(KINDS))


def step_delay(omega, dt, steps=1):
    """Transfer function ``z^{-steps}`` of a delay by ``steps`` Euler steps, ``z = e^{iω dt}``.

    Use it to add the network's Jacobi latency (docs/model.md "The discrete scheme": one dt per
    layer boundary) to the single-neuron transfer functions; ``steps < 0`` is an advance (the
    adjoint of a delay).

    Parameters
    ----------
    omega : array_like of float
        Angular frequency (rad per a.u.).
    dt : float
        Euler step (a.u., > 0).
    steps : int, optional
        Number of steps of delay (default 1).

    Returns
    -------
    complex ndarray
        ``e^{-i ω dt steps}`` (gain 1, phase ``-ω dt steps``).
    """
    w = _check_omega(omega)
    d = _check_dt(dt)
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)):
        raise GLEParameterError("steps", steps, "an integer number of Euler steps")
    return np.exp(-1j * w * (d * int(steps)))


# ---------------------------------------------------------------------- gain and phase

def wrap_phase(phase):
    """Wrap angles (rad) to the half-open interval ``(-π, π]``.

    ``-π`` maps to ``+π``, so a phase inversion by half a period is reported as ``+π``.
    """
    p = np.asarray(phase, dtype=float)
    out = p - _TWO_PI * np.ceil((p - np.pi) / _TWO_PI)
    # guard against rounding pushing a value to -π or just above π
    out = np.where(out <= -np.pi, out + _TWO_PI, out)
    out = np.where(out > np.pi, out - _TWO_PI, out)
    return out if out.ndim else float(out)


def gain_phase(H):
    """Gain and phase of a complex transfer function.

    Parameters
    ----------
    H : array_like of complex
        Transfer function values.

    Returns
    -------
    gain : ndarray or float
        ``|H|``.
    phase : ndarray or float
        ``arg H`` in rad, wrapped to ``(-π, π]``; positive = output leads input.
    """
    h = np.asarray(H)
    gain = np.abs(h)
    phase = wrap_phase(np.angle(h))
    if gain.ndim == 0:
        return float(gain), float(phase)
    return gain, phase


def lead_time(phase, omega):
    """Time (a.u.) by which the output leads the input, ``phase / ω``.

    Negative values are lags. Only meaningful modulo one period ``2π/ω``; with a phase wrapped to
    ``(-π, π]`` it is the shift of smallest magnitude (lead preferred at exactly half a period).

    Parameters
    ----------
    phase : array_like of float
        Phase in rad (positive = output leads).
    omega : array_like of float
        Angular frequency (rad per a.u.), non-zero.
    """
    w = _check_omega(omega)
    if np.any(w == 0.0):
        raise GLEParameterError("omega", 0.0, "non-zero finite values (rad per a.u.)",
                                "A time shift is undefined at ω = 0.")
    res = np.asarray(phase, dtype=float) / w
    return res if res.ndim else float(res)


def phase_inversion_mismatch(phase_forward, phase_error):
    """How far a (forward, error) pair of phases is from the ideal GLE phase inversion.

    GLE's forward rates lag by exactly the phase that its errors lead by (docs/model.md
    "Closed-form checks" 3), so ``phase_forward + phase_error = 0``. This returns
    ``wrap(phase_forward + phase_error)`` in rad: 0 for perfect inversion; for the
    instantaneous-error baseline (error phase 0) it is the uncompensated forward lag.
    """
    return wrap_phase(np.asarray(phase_forward, dtype=float) + np.asarray(phase_error, dtype=float))


# ------------------------------------------------------------------------- measurement

@dataclass(frozen=True)
class GainPhaseFit:
    """Result of :func:`measure_gain_phase`.

    Attributes
    ----------
    gain : float
        ``|Y|/|X|`` (NaN if the fit could not be made, see ``reason``).
    phase : float
        ``arg(Y/X)`` in rad, wrapped to ``(-π, π]``; positive = output leads (NaN on failure).
    residual : float
        Relative RMS residual of the worse of the two fits,
        ``‖x - fit‖ / ‖x - mean(x)‖`` (0 = perfectly sinusoidal, ~1 = nothing at ω). NaN on failure.
    omega : float
        Angular frequency used (rad per a.u.).
    amp_in, amp_out : complex
        Complex amplitudes ``X``, ``Y`` referred to the window's last sample time ``t_end``:
        ``x(t) ≈ offset_in + Re(X e^{iω (t - t_end)})``.
    offset_in, offset_out : float
        Fitted DC offsets.
    periods : int
        Whole periods fitted (0 if the window is shorter than one period).
    n_samples : int
        Samples used in the fit.
    t_start, t_end : float
        Time span of the samples used.
    reason : str or None
        ``None`` if the fit is trustworthy, else why not.
    """

    gain: float
    phase: float
    residual: float
    omega: float
    amp_in: complex = complex("nan+nanj")
    amp_out: complex = complex("nan+nanj")
    offset_in: float = float("nan")
    offset_out: float = float("nan")
    periods: int = 0
    n_samples: int = 0
    t_start: float = float("nan")
    t_end: float = float("nan")
    reason: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True if the fit is trustworthy (``reason is None``)."""
        return self.reason is None

    @property
    def lead_time(self) -> float:
        """``phase / ω``: a.u. by which the output leads the input (negative = lag)."""
        return self.phase / self.omega


def _failed(omega, reason, **kw) -> GainPhaseFit:
    nan = float("nan")
    return GainPhaseFit(gain=nan, phase=nan, residual=nan, omega=float(omega), reason=reason, **kw)


def _as_trace(a, name: str) -> np.ndarray:
    if np.iscomplexobj(a):
        raise GLEParameterError(name, "complex array", "a 1-D array of real samples")
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        raise GLEParameterError(name, type(a).__name__, "a 1-D array of real samples") from None
    if arr.ndim != 1:
        raise GLEParameterError(name, f"array of shape {arr.shape}", "a 1-D array of samples")
    return arr


def measure_gain_phase(t, x_in, y_out, omega, *, max_periods=None, max_residual=1e-3,
                       min_samples_per_period=4.0):
    """Measure gain and phase of a sinusoidally driven system from sampled traces.

    Both traces are least-squares fitted by ``a cos ωt + b sin ωt + c`` over the largest whole
    number of periods ``2π/ω`` that fit at the *end* of the window (the most recent samples;
    earlier samples, e.g. transients, are ignored). The window need not start at ``t = 0`` and the
    sampling need not be uniform. With complex amplitudes ``X = a_x - i b_x`` and ``Y = a_y - i b_y``
    the result is ``gain = |Y|/|X|`` and ``phase = arg(Y/X)`` wrapped to ``(-π, π]``;
    **positive phase = the output leads the input**. For a linear system in its steady state,
    ``Y/X`` is its transfer function at ω (the discrete one, :func:`transfer` with ``dt``, for
    Euler-simulated traces).

    The 3×3 normal equations are formed from dot products shared by both signals (times are
    taken relative to the last sample, which keeps the fit accurate at large ``t``), so a call
    costs a few tens of µs for thousands of samples (see ``benchmarks/bench_fourier.py``).

    Failure policy
    --------------
    *Caller errors* (wrong shapes, non-increasing ``t``, ``omega`` not positive and finite, bad
    options) raise :class:`ValueError` naming the parameter. *Data that cannot (yet) be measured*
    does not raise -- a dashboard calls this every frame on a sliding window that is empty at
    first -- but returns a :class:`GainPhaseFit` with ``ok == False`` and a ``reason``:

    * window shorter than one period, too few samples per period, non-finite samples, a
      singular fit (sampling aliased to ω) or no input oscillation at ω: ``gain`` and ``phase`` are
      NaN;
    * ``residual > max_residual`` (the signals are not (yet) sinusoidal at ω -- transients, noise,
      a non-linearity, a different frequency): ``gain`` and ``phase`` are still reported (they
      are those of the component at ω) but flagged.

    Parameters
    ----------
    t : array_like of float, shape (N,)
        Strictly increasing sample times (a.u.).
    x_in, y_out : array_like of float, shape (N,)
        Input and output samples at ``t``.
    omega : float
        Drive angular frequency (rad per a.u.), > 0.
    max_periods : int, optional
        Fit at most this many (most recent) whole periods. Default: as many as fit.
    max_residual : float, optional
        Largest acceptable relative residual (default 1e-3).
    min_samples_per_period : float, optional
        Reject windows sampled more coarsely than this (default 4; the fit itself needs
        fewer than 2 samples per period to become singular).

    Returns
    -------
    GainPhaseFit

    Raises
    ------
    ValueError (:class:`~gle_core.errors.GLEParameterError`)
        For invalid arguments, see above.
    """
    # ---- argument checks (caller errors)
    if np.ndim(omega) != 0 or np.iscomplexobj(omega):
        raise GLEParameterError("omega", omega, "a real scalar in (0, inf) rad per a.u.")
    w = float(omega)
    if not (np.isfinite(w) and w > 0.0):
        raise GLEParameterError("omega", w, "(0, inf) rad per a.u.",
                                "The drive frequency must be positive and finite.")
    t = _as_trace(t, "t")
    x = _as_trace(x_in, "x_in")
    y = _as_trace(y_out, "y_out")
    if x.shape != t.shape:
        raise GLEParameterError("x_in", f"{x.size} samples", f"{t.size} samples (same as t)")
    if y.shape != t.shape:
        raise GLEParameterError("y_out", f"{y.size} samples", f"{t.size} samples (same as t)")
    if max_periods is not None:
        if (isinstance(max_periods, (bool, np.bool_))
                or not isinstance(max_periods, (int, np.integer)) or max_periods < 1):
            raise GLEParameterError("max_periods", max_periods, "None or an integer ≥ 1")
    try:
        mr = float(max_residual)
        msp = float(min_samples_per_period)
    except (TypeError, ValueError):
        raise GLEParameterError("max_residual / min_samples_per_period",
                                (max_residual, min_samples_per_period), "real numbers") from None
    if not (mr >= 0.0):
        raise GLEParameterError("max_residual", max_residual, "[0, inf]")
    if not (np.isfinite(msp) and msp >= 2.0):
        raise GLEParameterError("min_samples_per_period", min_samples_per_period, "[2, inf)")

    n_all = t.size
    if n_all < 2:
        return _failed(w, f"only {n_all} sample(s); need at least one full period", n_samples=n_all)
    if not np.isfinite(t[0]) or not np.isfinite(t[-1]):
        raise GLEParameterError("t", "non-finite times", "finite, strictly increasing times")
    if not np.all(t[1:] > t[:-1]):
        raise GLEParameterError("t", "non-increasing times", "strictly increasing times (a.u.)")

    # ---- choose the window: the largest whole number of periods at the end
    period = _TWO_PI / w
    span = t[-1] - t[0]
    periods = int(np.floor(span / period * (1.0 + 1e-12)))
    if max_periods is not None:
        periods = min(periods, int(max_periods))
    if periods < 1:
        return _failed(w, f"window of {span:.4g} a.u. is shorter than one period "
                          f"(2π/ω = {period:.4g} a.u.)",
                       n_samples=n_all, t_start=float(t[0]), t_end=float(t[-1]))
    t_lo = t[-1] - periods * period
    i0 = int(np.searchsorted(t, t_lo - 1e-9 * period, side="left"))
    tw = t[i0:]
    xw = x[i0:]
    yw = y[i0:]
    n = tw.size
    info = dict(periods=periods, n_samples=n, t_start=float(tw[0]), t_end=float(tw[-1]))
    if n < msp * periods or n < 4:
        return _failed(w, f"{n} samples over {periods} period(s) is below "
                          f"{msp:g} samples per period", **info)

    # ---- fit both signals (normal equations, shared design matrix)
    phi = tw - tw[-1]
    phi *= w
    c = np.cos(phi)
    s = np.sin(phi)
    fn = float(n)
    sc = float(c.sum())
    ss = float(s.sum())
    cc = float(c @ c)
    cs = float(c @ s)
    sss = fn - cc  # Σ sin² = N - Σ cos²
    # symmetric 3×3 Gram matrix [[cc, cs, sc], [cs, sss, ss], [sc, ss, N]]: explicit inverse
    # (cofactors) -- an order of magnitude cheaper than np.linalg.solve for one small system
    k00 = sss * fn - ss * ss
    k01 = sc * ss - cs * fn
    k02 = cs * ss - sss * sc
    k11 = cc * fn - sc * sc
    k12 = cs * sc - cc * ss
    k22 = cc * sss - cs * cs
    det = cc * k00 + cs * k01 + sc * k02
    # well-sampled whole periods give det ≈ N³/4
    if not (det > 1e-9 * 0.25 * fn ** 3):
        return _failed(w, "singular fit: the sampling is aliased to ω (ω·dt near a multiple of π)",
                       **info)
    coefs = []
    for sig in (xw, yw):
        r0 = float(sig @ c)
        r1 = float(sig @ s)
        r2 = float(sig.sum())
        if not (np.isfinite(r0) and np.isfinite(r1) and np.isfinite(r2)):
            return _failed(w, "non-finite samples in the fitted window", **info)
        a = (k00 * r0 + k01 * r1 + k02 * r2) / det
        b = (k01 * r0 + k11 * r1 + k12 * r2) / det
        off = (k02 * r0 + k12 * r1 + k22 * r2) / det
        # relative residual: ‖x - fit‖ / ‖x - mean‖, using the exact split
        # Σ(x - x̄)² = Σ(x - fit)² + vᵀ G v with v = (a, b, off - x̄) (orthogonality of the fit)
        res = sig - off
        res -= a * c
        res -= b * s
        ss_res = float(res @ res)
        d = off - r2 / fn
        ss_fit = (a * (cc * a + cs * b + sc * d) + b * (cs * a + sss * b + ss * d)
                  + d * (sc * a + ss * b + fn * d))
        ss_tot = ss_res + max(ss_fit, 0.0)
        rel = np.sqrt(ss_res / ss_tot) if ss_tot > 0.0 else 0.0
        coefs.append((complex(a, -b), off, rel, ss_tot))
    (X, off_x, rel_x, tot_x), (Y, off_y, rel_y, _) = coefs
    residual = float(max(rel_x, rel_y))

    info.update(amp_in=X, amp_out=Y, offset_in=off_x, offset_out=off_y)
    ax = abs(X)
    if not ax > 1e-12 * max(abs(off_x), np.sqrt(tot_x / fn)):
        nan = float("nan")
        return GainPhaseFit(gain=nan, phase=nan, residual=residual, omega=w,
                            reason="the input has no oscillation at ω (amplitude ~0)", **info)
    ratio = Y / X
    gain = abs(ratio)
    phase = float(np.angle(ratio))
    if phase <= -np.pi:  # np.angle returns -π only for a -0.0 imaginary part
        phase = float(np.pi)
    reason = None
    if residual > mr:
        reason = (f"relative residual {residual:.3g} exceeds max_residual {mr:g}: the traces are "
                  "not sinusoidal at ω (transient, noise, non-linearity or other frequencies)")
    return GainPhaseFit(gain=gain, phase=phase, residual=residual, omega=w, reason=reason, **info)
