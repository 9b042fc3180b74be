"""Tests for gle_core.fourier: transfer functions (docs/model.md "Operators", "Closed-form checks";
paper Eqs. 11-13) and the gain/phase measurement used by the dashboard."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gle_core import fourier as F
from gle_core.fourier import (
    KINDS,
    am_adjoint,
    forward_neuron,
    gain_phase,
    gle_error,
    lead_time,
    measure_gain_phase,
    phase_inversion_mismatch,
    prospective,
    prospective_adjoint,
    retrospective,
    retrospective_adjoint,
    step_delay,
    transfer,
    wrap_phase,
)

TAUS = [0.05, 0.3, 1.0, 4.0]
OMEGAS = np.logspace(-2, 2, 41)


# ------------------------------------------------------------------------ simulators

def simulate_soma(s, tau_m, tau_r, dt):
    """Spec "The discrete scheme" step 4 with γ = 0, linear φ: returns ŭ_k for drive s_k."""
    u = 0.0
    out = np.empty_like(s)
    for k, sk in enumerate(s):
        udot = (sk - u) / tau_m
        out[k] = u + tau_r * udot
        u = u + dt * udot
    return out


def simulate_error_neuron(eps, tau_m, tau_r, dt):
    """Spec "The discrete scheme" step 3 (GLE mode): returns e_k for input ε_k."""
    v = 0.0
    out = np.empty_like(eps)
    for k, ek in enumerate(eps):
        vdot = (ek - v) / tau_r
        out[k] = v + tau_m * vdot
        v = v + dt * vdot
    return out


def simulate_soma_adjoint(alpha, tau_m, tau_r, dt):
    """Reverse-mode (exact transpose) of simulate_soma: ∂(Σ α_k ŭ_k)/∂s_k."""
    a = dt / tau_m
    p = 1.0 - a
    c = tau_r / tau_m
    d = 1.0 - c
    lam_next = 0.0
    out = np.empty_like(alpha)
    for k in range(alpha.size - 1, -1, -1):
        out[k] = c * alpha[k] + a * lam_next
        lam_next = d * alpha[k] + p * lam_next
    return out


def n_transient(tau, dt, decay=1e-13):
    """Steps until (1 - dt/τ)^k < decay."""
    return int(math.ceil(math.log(decay) / math.log(abs(1.0 - dt / tau)))) + 1


# ------------------------------------------------------------ docs/model.md "Closed-form checks" 1
# / check 2 example

def test_spec_example_numbers_are_the_discrete_ones():
    # Spec check 1/6.2 example: tau_m = 1, tau_r = 0.1, dt = 0.01, omega = 1.
    # Finding: the quoted numbers (0.7121, -0.6882; 1.4044, +0.6882) are those of the EXACT
    # DISCRETE (Euler) transfer functions. The continuous formula gives 0.7106 / -0.6857 and
    # 1.4072 / +0.6857, which do NOT match to 4 decimals (an O(omega dt) = 1 % difference).
    g, p = gain_phase(forward_neuron(1.0, 1.0, 0.1, dt=0.01))
    assert round(g, 4) == 0.7121
    assert round(p, 4) == -0.6882
    g, p = gain_phase(gle_error(1.0, 1.0, 0.1, dt=0.01))
    assert round(g, 4) == 1.4044
    assert round(p, 4) == 0.6882

    gc, pc = gain_phase(forward_neuron(1.0, 1.0, 0.1))
    assert round(gc, 4) == 0.7106 and round(pc, 4) == -0.6857
    assert gc == pytest.approx(math.sqrt(1.01 / 2.0), abs=1e-15)
    assert pc == pytest.approx(math.atan(0.1) - math.atan(1.0), abs=1e-15)
    gc, pc = gain_phase(gle_error(1.0, 1.0, 0.1))
    assert round(gc, 4) == 1.4072 and round(pc, 4) == 0.6857


def test_discrete_matches_spec_literal_formulas():
    w = np.concatenate([-OMEGAS[::-1], OMEGAS, [0.0, 150.0, 314.0]])
    for tm in TAUS:
        for tr in TAUS:
            for dt in (0.001, 0.01, 0.049):
                z = np.exp(1j * w * dt)
                am, ar = dt / tm, dt / tr
                fwd = tr / tm + (1 - tr / tm) * am / (z - (1 - am))
                err = tm / tr + (1 - tm / tr) * ar / (z - (1 - ar))
                np.testing.assert_allclose(forward_neuron(w, tm, tr, dt=dt), fwd,
                                           rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(gle_error(w, tm, tr, dt=dt), err,
                                           rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(retrospective(w, tm, dt=dt), am / (z - (1 - am)),
                                           rtol=1e-12, atol=1e-12)


def test_continuous_closed_forms():
    w = OMEGAS
    tm, tr = 1.7, 0.23
    np.testing.assert_allclose(retrospective(w, tm), 1 / (1 + 1j * w * tm), rtol=1e-15)
    np.testing.assert_allclose(prospective(w, tm), 1 + 1j * w * tm, rtol=1e-15)
    np.testing.assert_allclose(retrospective_adjoint(w, tm), 1 / (1 - 1j * w * tm), rtol=1e-15)
    np.testing.assert_allclose(prospective_adjoint(w, tm), 1 - 1j * w * tm, rtol=1e-15)
    np.testing.assert_allclose(forward_neuron(w, tm, tr),
                               (1 + 1j * w * tr) / (1 + 1j * w * tm), rtol=1e-14)
    np.testing.assert_allclose(gle_error(w, tm, tr),
                               (1 + 1j * w * tm) / (1 + 1j * w * tr), rtol=1e-14)
    np.testing.assert_allclose(am_adjoint(w, tm, tr),
                               (1 - 1j * w * tr) / (1 - 1j * w * tm), rtol=1e-14)
    # low-pass lags, prospective leads
    assert np.all(gain_phase(retrospective(w, tm))[1] < 0)
    assert np.all(gain_phase(prospective(w, tm))[1] > 0)


@pytest.mark.parametrize("dt", [None, 0.01])
def test_compositions_of_elementary_operators(dt):
    w = OMEGAS
    tm, tr = 1.3, 0.2
    np.testing.assert_allclose(forward_neuron(w, tm, tr, dt),
                               prospective(w, tr, dt) * retrospective(w, tm, dt), rtol=1e-13)
    np.testing.assert_allclose(gle_error(w, tm, tr, dt),
                               prospective(w, tm, dt) * retrospective(w, tr, dt), rtol=1e-13)
    np.testing.assert_allclose(am_adjoint(w, tm, tr, dt),
                               retrospective_adjoint(w, tm, dt) * prospective_adjoint(w, tr, dt),
                               rtol=1e-13)
    # the adjoint is the complex conjugate on the unit circle / real axis
    np.testing.assert_allclose(am_adjoint(w, tm, tr, dt), np.conj(forward_neuron(w, tm, tr, dt)),
                               rtol=1e-14)
    # D⁺_τ is the exact inverse of I⁻_τ (also for the Euler scheme)
    np.testing.assert_allclose(prospective(w, tm, dt) * retrospective(w, tm, dt), 1.0, rtol=1e-14)
    np.testing.assert_allclose(prospective_adjoint(w, tm, dt) * retrospective_adjoint(w, tm, dt),
                               1.0, rtol=1e-14)


# -------------------------------------------------------------------- paper Eq. 13

@pytest.mark.parametrize("dt", [None, 0.01])
def test_eq13_phase_equal_gain_inverse_and_phase_inversion(dt):
    # Continuous: paper Eq. 13. Discrete: holds exactly too, because the Euler error operator is
    # exactly 1/forward and the discrete adjoint is conj(forward).
    for tm in TAUS:
        for tr in TAUS:
            g_err, p_err = gain_phase(gle_error(OMEGAS, tm, tr, dt))
            g_am, p_am = gain_phase(am_adjoint(OMEGAS, tm, tr, dt))
            g_fwd, p_fwd = gain_phase(forward_neuron(OMEGAS, tm, tr, dt))
            np.testing.assert_allclose(p_err, p_am, rtol=0, atol=1e-12)
            np.testing.assert_allclose(g_err * g_am, 1.0, rtol=0, atol=1e-12)
            np.testing.assert_allclose(p_fwd, -p_err, rtol=0, atol=1e-12)
            np.testing.assert_allclose(phase_inversion_mismatch(p_fwd, p_err), 0.0, atol=1e-12)
            if tr < tm:  # retrospective neuron: rates lag, errors lead
                assert np.all(p_fwd < 0) and np.all(p_err > 0)
            elif tr > tm:
                assert np.all(p_fwd > 0) and np.all(p_err < 0)


def test_gle_error_gain_limits():
    for tm in TAUS:
        for tr in TAUS:
            g_dc, p_dc = gain_phase(gle_error(0.0, tm, tr))
            assert g_dc == 1.0 and p_dc == 0.0
            g_hf, _ = gain_phase(gle_error(1e7, tm, tr))
            assert g_hf == pytest.approx(tm / tr, rel=1e-9)
    # monotone approach for a retrospective neuron: errors amplify fast components
    g, _ = gain_phase(gle_error(OMEGAS, 1.0, 0.1))
    assert np.all(np.diff(g) > 0) and g[-1] < 10.0 and g[-1] > 9.9


@pytest.mark.parametrize("dt", [None, 0.01, 0.3])
def test_le_limit_is_identity(dt):
    for tau in (0.2, 1.0, 3.0):
        for kind in ("forward", "gle_error", "am_adjoint"):
            H = transfer(kind, OMEGAS, tau, tau, dt=dt)
            np.testing.assert_allclose(H, 1.0, rtol=0, atol=1e-15)


def test_ie_error_is_identity():
    H = transfer("ie_error", OMEGAS, 1.0, 0.1, dt=0.01)
    assert H.shape == OMEGAS.shape and np.all(H == 1.0)


def test_transfer_dispatch_and_broadcasting():
    tm = np.array([[0.5], [1.0], [2.0]])
    for kind, fn in (("forward", forward_neuron), ("gle_error", gle_error),
                     ("am_adjoint", am_adjoint)):
        H = transfer(kind, OMEGAS, tm, 0.1, dt=0.01)
        assert H.shape == (3, OMEGAS.size)
        np.testing.assert_array_equal(H[1], fn(OMEGAS, 1.0, 0.1, dt=0.01))
    assert set(KINDS) == {"forward", "gle_error", "am_adjoint", "ie_error"}


# -------------------------------------------------------------- discrete -> continuous

@pytest.mark.parametrize("kind", ["forward", "gle_error", "am_adjoint"])
def test_discrete_converges_to_continuous_first_order(kind):
    tm, tr = 1.0, 0.1
    w = np.array([0.1, 1.0, 5.0])
    errs = []
    for dt in (1e-2, 1e-3, 1e-4):
        e = np.abs(transfer(kind, w, tm, tr, dt=dt) - transfer(kind, w, tm, tr))
        # O(ω dt) with a modest constant (here the constant is ≤ max(τm/τr, 1) · 1/2)
        assert np.all(e <= 5.0 * w * dt)
        errs.append(e)
    ratio = errs[1] / errs[2]
    assert np.all((ratio > 9.0) & (ratio < 11.0))  # first order, not better


@pytest.mark.parametrize("op", [retrospective, prospective, retrospective_adjoint,
                                prospective_adjoint])
def test_elementary_discrete_converges(op):
    w = np.array([0.3, 3.0])
    hc = op(w, 0.7)
    e3 = np.abs(op(w, 0.7, dt=1e-3) - hc) / np.abs(hc)  # relative error
    e4 = np.abs(op(w, 0.7, dt=1e-4) - hc) / np.abs(hc)
    assert np.all(e3 <= w * 1e-3) and np.all(e4 <= w * 1e-4)
    assert np.all((e3 / e4 > 9.0) & (e3 / e4 < 11.0))


# ----------------------------------------------- exact discrete vs simulated recursion

FWD_CASES = [  # tau_m, tau_r, omega, dt
    (1.0, 0.1, 1.0, 0.01),     # model.md check 1 example
    (2.0, 0.1, 0.5, 0.01),     # chain teacher's second neuron
    (0.5, 1.5, 3.0, 0.05),     # prospective neuron (tau_r > tau_m)
    (1.0, 0.1, 20.0, 0.04),    # omega dt = 0.8: far from continuous
    (1.0, 0.01, 5.0, 0.01),    # tau_r = dt (model.md check 5)
]


@pytest.mark.parametrize("tm,tr,w,dt", FWD_CASES)
def test_forward_formula_matches_simulation(tm, tr, w, dt):
    period_steps = int(math.ceil(2 * math.pi / w / dt))
    k = np.arange(n_transient(tm, dt) + 3 * period_steps)
    t = k * dt
    s = np.cos(w * t)
    uh = simulate_soma(s, tm, tr, dt)
    win = slice(n_transient(tm, dt), None)
    fit = measure_gain_phase(t[win], s[win], uh[win], w)
    assert fit.ok, fit.reason
    assert fit.periods >= 2
    # docs/model.md "Closed-form checks" 1 promises agreement to ~1e-12; observed ~1e-14 (transient
    # decayed below 1e-13)
    g, p = gain_phase(forward_neuron(w, tm, tr, dt=dt))
    assert abs(fit.gain - g) <= 1e-12
    assert abs(fit.phase - p) <= 1e-12
    # and the continuous formula is measurably different (except at small omega dt)
    gc, pc = gain_phase(forward_neuron(w, tm, tr))
    if w * dt >= 0.01:
        assert abs(fit.phase - pc) > 1e-4


ERR_CASES = [
    (1.0, 0.1, 1.0, 0.01),     # model.md check 2 example
    (2.0, 0.5, 0.7, 0.05),
    (0.5, 1.5, 3.0, 0.05),
    (1.0, 0.1, 10.0, 0.05),    # a_r = 0.5
]


@pytest.mark.parametrize("tm,tr,w,dt", ERR_CASES)
def test_error_formula_matches_simulation(tm, tr, w, dt):
    period_steps = int(math.ceil(2 * math.pi / w / dt))
    ntr = n_transient(tr, dt)
    k = np.arange(ntr + 3 * period_steps)
    t = 3.7 + k * dt  # a time origin that is not zero
    eps = np.cos(w * t + 0.4)
    e = simulate_error_neuron(eps, tm, tr, dt)
    fit = measure_gain_phase(t[ntr:], eps[ntr:], e[ntr:], w)
    assert fit.ok, fit.reason
    g, p = gain_phase(gle_error(w, tm, tr, dt=dt))
    assert abs(fit.gain - g) <= 1e-12
    assert abs(fit.phase - p) <= 1e-12


def test_retrospective_formula_matches_simulation():
    tau, w, dt = 0.8, 2.0, 0.02
    ntr = n_transient(tau, dt)
    k = np.arange(ntr + 600)
    t = k * dt
    x = np.sin(w * t)
    y = np.empty_like(x)
    yk = 0.0
    for i, xi in enumerate(x):
        y[i] = yk  # start-of-step read-out, as in the engine
        yk += dt * (xi - yk) / tau
    fit = measure_gain_phase(t[ntr:], x[ntr:], y[ntr:], w)
    g, p = gain_phase(retrospective(w, tau, dt=dt))
    assert fit.ok and abs(fit.gain - g) < 1e-9 and abs(fit.phase - p) < 1e-9


def test_adjoint_recursion_is_the_transpose():
    tm, tr, dt, n = 1.0, 0.1, 0.05, 120
    A = np.column_stack([simulate_soma(np.eye(n)[j], tm, tr, dt) for j in range(n)])
    alpha = np.random.default_rng(1).standard_normal(n)
    np.testing.assert_allclose(simulate_soma_adjoint(alpha, tm, tr, dt), A.T @ alpha,
                               rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("tm,tr,w,dt", FWD_CASES[:4])
def test_discrete_am_adjoint_matches_reverse_mode(tm, tr, w, dt):
    # The exact adjoint of the Euler forward recursion has transfer function
    # H_fwd(1/z) = conj(H_fwd(z)) with no extra shift at the single-neuron level.
    period_steps = int(math.ceil(2 * math.pi / w / dt))
    ntr = n_transient(tm, dt)
    k = np.arange(ntr + 3 * period_steps)
    t = k * dt
    alpha = np.cos(w * t)
    g_s = simulate_soma_adjoint(alpha, tm, tr, dt)
    keep = slice(0, k.size - ntr)  # the transient of the backward pass sits at the end
    fit = measure_gain_phase(t[keep], alpha[keep], g_s[keep], w)
    assert fit.ok, fit.reason
    g, p = gain_phase(am_adjoint(w, tm, tr, dt=dt))
    assert abs(fit.gain - g) <= 1e-12
    assert abs(fit.phase - p) <= 1e-12
    # the adjoint leads where the forward path lags
    assert (p > 0) == (tr < tm)


def test_step_delay():
    w = OMEGAS
    g, p = gain_phase(step_delay(w, 0.01, 3))
    np.testing.assert_allclose(g, 1.0, rtol=1e-15)
    np.testing.assert_allclose(p, wrap_phase(-0.03 * w), atol=1e-13)
    np.testing.assert_allclose(step_delay(w, 0.01, -1), np.conj(step_delay(w, 0.01, 1)),
                               rtol=1e-15)


# ----------------------------------------------------------- phase conventions helpers

def test_wrap_phase_half_open_interval():
    assert wrap_phase(np.pi) == np.pi
    assert wrap_phase(-np.pi) == np.pi
    assert wrap_phase(3 * np.pi) == pytest.approx(np.pi, abs=1e-15)
    assert wrap_phase(-3 * np.pi) == pytest.approx(np.pi, abs=1e-15)
    assert wrap_phase(2 * np.pi) == pytest.approx(0.0, abs=1e-15)
    assert wrap_phase(0.5) == 0.5
    assert wrap_phase(-0.5 - 4 * np.pi) == pytest.approx(-0.5, abs=1e-14)
    arr = wrap_phase(np.linspace(-20, 20, 1001))
    assert np.all(arr > -np.pi) and np.all(arr <= np.pi)
    assert gain_phase(-1.0) == (1.0, np.pi)
    assert gain_phase(complex(-1.0, -0.0)) == (1.0, np.pi)


def test_lead_time_and_mismatch():
    assert lead_time(0.5, 2.0) == 0.25
    assert lead_time(-0.5, 2.0) == -0.25
    with pytest.raises(ValueError, match="omega"):
        lead_time(0.5, 0.0)
    assert phase_inversion_mismatch(-0.3, 0.3) == 0.0
    # IE baseline: error phase 0 -> the whole forward lag is left uncompensated
    assert phase_inversion_mismatch(-0.6882, 0.0) == pytest.approx(-0.6882)
    assert phase_inversion_mismatch(3.0, 3.0) == pytest.approx(6.0 - 2 * np.pi)


# ----------------------------------------------------------------- measure_gain_phase

@pytest.mark.parametrize("gain,phase", [(2.5, 0.0), (0.3, -0.6882), (1.7, 1.2), (4.0, np.pi),
                                        (1.0, -np.pi + 1e-3), (0.01, 3.1)])
def test_measure_exact_synthetic(gain, phase):
    w, dt, t0 = 1.3, 0.013, 17.3
    t = t0 + dt * np.arange(2500)
    x = 3.0 + 2.0 * np.cos(w * t + 0.3)
    y = -1.0 + 2.0 * gain * np.cos(w * t + 0.3 + phase)
    fit = measure_gain_phase(t, x, y, w)
    assert fit.ok and fit.reason is None
    assert abs(fit.gain - gain) <= 1e-10
    expected = wrap_phase(phase)
    assert abs(wrap_phase(fit.phase - expected)) <= 1e-10
    assert -np.pi < fit.phase <= np.pi
    assert abs(fit.offset_in - 3.0) <= 1e-10 and abs(fit.offset_out + 1.0) <= 1e-10
    assert fit.residual <= 1e-10
    period = 2 * np.pi / w
    assert fit.periods == int((t[-1] - t[0]) // period) == 6
    assert fit.t_end == t[-1]
    assert fit.t_end - fit.t_start <= fit.periods * period + 1e-12
    assert fit.t_end - fit.t_start > fit.periods * period - dt
    # complex amplitudes are referred to t_end
    assert abs(fit.amp_in - 2.0 * np.exp(1j * (w * t[-1] + 0.3))) <= 1e-10


def test_measure_phase_convention_output_leads():
    w, delta = 0.9, 0.4
    t = np.linspace(0.0, 40.0, 3001)
    x = np.sin(w * t)
    y = np.sin(w * (t + delta))  # y is x shifted EARLIER by delta: output leads
    fit = measure_gain_phase(t, x, y, w)
    assert fit.phase == pytest.approx(w * delta, abs=1e-10)
    assert fit.lead_time == pytest.approx(delta, abs=1e-10)
    fit = measure_gain_phase(t, x, np.sin(w * (t - delta)), w)
    assert fit.lead_time == pytest.approx(-delta, abs=1e-10)


def test_measure_nonuniform_sampling_and_large_times():
    rng = np.random.default_rng(7)
    w = 2.2
    t = np.sort(1.0e4 + rng.uniform(0.0, 30.0, 4000))
    x = 0.5 * np.cos(w * t - 1.0)
    y = 0.2 + 0.5 * 0.8 * np.cos(w * t - 1.0 - 2.0)
    fit = measure_gain_phase(t, x, y, w)
    assert fit.ok
    assert fit.gain == pytest.approx(0.8, abs=1e-9)
    assert fit.phase == pytest.approx(-2.0, abs=1e-9)


def test_measure_uses_the_most_recent_periods():
    w, dt = 1.0, 0.01
    t = 5.0 + dt * np.arange(6000)
    x = np.cos(w * t)
    y = 0.5 * np.cos(w * t - 0.7)
    # garbage (another frequency, a jump) in the first half only
    junk = t < t[-1] - 2 * 2 * np.pi / w - 0.5
    x_bad = np.where(junk, x + np.sin(3.3 * t) + 2.0, x)
    y_bad = np.where(junk, y - 5.0 * np.cos(0.37 * t), y)
    fit = measure_gain_phase(t, x_bad, y_bad, w, max_periods=2)
    assert fit.ok and fit.periods == 2
    assert fit.gain == pytest.approx(0.5, abs=1e-10)
    assert fit.phase == pytest.approx(-0.7, abs=1e-10)
    full = measure_gain_phase(t, x_bad, y_bad, w)
    assert full.periods == 9
    assert not full.ok and "residual" in full.reason and full.residual > 0.1


def test_measure_too_short_window_returns_nan_with_reason():
    w = 1.0
    t = np.arange(0.0, 6.0, 0.01)  # 6 a.u. < 2π
    fit = measure_gain_phase(t, np.cos(t), np.sin(t), w)
    assert not fit.ok
    assert math.isnan(fit.gain) and math.isnan(fit.phase)
    assert fit.periods == 0
    assert "shorter than one period" in fit.reason
    for n in (0, 1):
        fit = measure_gain_phase(t[:n], t[:n], t[:n], w)
        assert not fit.ok and math.isnan(fit.gain) and "sample" in fit.reason


def test_measure_non_sinusoidal_is_flagged():
    w = 2 * np.pi / 4.0
    t = np.arange(0.0, 40.0, 0.01)
    x = np.cos(w * t)
    y = np.sign(np.cos(w * t - 0.5))  # square wave: fundamental gain 4/π, phase -0.5
    fit = measure_gain_phase(t, x, y, w)
    assert not fit.ok and "residual" in fit.reason
    assert 0.3 < fit.residual < 0.6
    assert fit.gain == pytest.approx(4 / np.pi, rel=5e-3)
    # (the sampled square wave's edges are quantised to dt: phase error up to ω dt / 2)
    assert fit.phase == pytest.approx(-0.5, abs=1e-2)
    relaxed = measure_gain_phase(t, x, y, w, max_residual=1.0)
    assert relaxed.ok and relaxed.gain == fit.gain


def test_measure_noise_gives_small_but_nonzero_residual():
    rng = np.random.default_rng(3)
    w = 1.0
    t = np.arange(0.0, 60.0, 0.01)
    x = np.cos(w * t)
    y = 0.7 * np.cos(w * t - 0.2) + 1e-3 * rng.standard_normal(t.size)
    fit = measure_gain_phase(t, x, y, w)
    assert 5e-4 < fit.residual < 5e-3
    assert fit.gain == pytest.approx(0.7, abs=1e-4)
    assert fit.phase == pytest.approx(-0.2, abs=1e-3)


def test_measure_degenerate_data():
    w = 1.0
    t = np.arange(0.0, 20.0, 0.01)
    # no input oscillation
    fit = measure_gain_phase(t, np.full_like(t, 3.0), np.cos(t), w)
    assert not fit.ok and math.isnan(fit.gain) and "no oscillation" in fit.reason
    # zero output is a valid measurement: gain 0
    fit = measure_gain_phase(t, np.cos(t), np.zeros_like(t), w)
    assert fit.ok and fit.gain == 0.0
    # non-finite samples in the window
    y = np.cos(t)
    y[-5] = np.nan
    fit = measure_gain_phase(t, np.cos(t), y, w)
    assert not fit.ok and math.isnan(fit.gain) and "non-finite" in fit.reason
    # sampled exactly at Nyquist: sin(ω t_k) ≡ 0
    tn = np.arange(200) * np.pi
    fit = measure_gain_phase(tn, np.cos(tn), np.cos(tn), 1.0)
    assert not fit.ok and "samples per period" in fit.reason
    fit = measure_gain_phase(tn, np.cos(tn), np.cos(tn), 1.0, min_samples_per_period=2)
    assert not fit.ok and "singular" in fit.reason


# ----------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
@pytest.mark.parametrize("kind", ["forward", "gle_error", "am_adjoint", "ie_error"])
def test_bad_tau_raises(kind, bad):
    with pytest.raises(ValueError, match=r"tau_m = .*allowed: \(0, inf\)"):
        transfer(kind, 1.0, bad, 0.1)
    with pytest.raises(ValueError, match=r"tau_r = .*allowed: \(0, inf\)"):
        transfer(kind, 1.0, 1.0, bad, dt=0.01)


def test_bad_tau_message_names_value():
    with pytest.raises(ValueError, match=r"tau_m = -2\.0 is out of range"):
        forward_neuron(1.0, [1.0, -2.0], 0.1)
    with pytest.raises(ValueError, match=r"^tau = 0\.0 "):
        retrospective(1.0, 0.0)
    with pytest.raises(F.GLEParameterError):
        prospective(1.0, -1.0)


@pytest.mark.parametrize("bad", [0.0, -0.01, np.nan, np.inf, "x", [0.01, 0.02]])
def test_bad_dt_raises(bad):
    with pytest.raises(ValueError, match=r"^dt = "):
        forward_neuron(1.0, 1.0, 0.1, dt=bad)
    with pytest.raises(ValueError, match=r"^dt = "):
        prospective(1.0, 1.0, dt=bad)


def test_unstable_dt_raises():
    with pytest.raises(ValueError, match=r"dt = 2\.0 .*2·tau_m"):
        forward_neuron(1.0, 1.0, 0.1, dt=2.0)
    with pytest.raises(ValueError, match=r"dt = 0\.2 .*2·tau_r"):
        gle_error(1.0, 1.0, 0.1, dt=0.2)
    with pytest.raises(ValueError, match=r"dt = 0\.25 .*2·tau"):
        retrospective(1.0, 0.1, dt=0.25)
    # prospective alone has no stability limit; just below the limit is accepted
    prospective(1.0, 0.1, dt=0.25)
    forward_neuron(1.0, 1.0, 0.1, dt=1.99)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1j])
def test_bad_omega_raises(bad):
    with pytest.raises(ValueError, match=r"^omega = "):
        forward_neuron([1.0, bad], 1.0, 0.1)
    with pytest.raises(ValueError, match=r"^omega = "):
        measure_gain_phase(np.arange(10.0), np.arange(10.0), np.arange(10.0), bad)


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match=r"kind = 'adjoint'.*forward, gle_error"):
        transfer("adjoint", 1.0, 1.0, 0.1)


def test_measure_bad_arguments_raise():
    t = np.arange(0.0, 20.0, 0.01)
    x = np.cos(t)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"^omega = "):
            measure_gain_phase(t, x, x, bad)
    with pytest.raises(ValueError, match=r"^x_in = "):
        measure_gain_phase(t, x[:-1], x, 1.0)
    with pytest.raises(ValueError, match=r"^y_out = "):
        measure_gain_phase(t, x, x[:-1], 1.0)
    with pytest.raises(ValueError, match=r"^x_in = "):
        measure_gain_phase(t, np.vstack([x, x]), x, 1.0)
    with pytest.raises(ValueError, match=r"^t = .*increasing"):
        measure_gain_phase(t[::-1], x, x, 1.0)
    with pytest.raises(ValueError, match=r"^t = .*increasing"):
        measure_gain_phase(np.r_[t[:5], t[4:-1]], x, x, 1.0)
    with pytest.raises(ValueError, match=r"^max_periods = "):
        measure_gain_phase(t, x, x, 1.0, max_periods=0)
    with pytest.raises(ValueError, match=r"^max_residual = "):
        measure_gain_phase(t, x, x, 1.0, max_residual=-1.0)
    with pytest.raises(ValueError, match=r"^min_samples_per_period = "):
        measure_gain_phase(t, x, x, 1.0, min_samples_per_period=1.0)
