"""Spec check 1-6.3 on the engine itself: simulated gain/phase equal the exact-discrete
transfer functions of gle_core.fourier (and the continuous ones to O(ω dt))."""
import numpy as np
import pytest

from gle_core import GLENetwork, Simulator, inputs
from gle_core.fourier import gain_phase, measure_gain_phase, transfer

DT = 0.01


def forward_run(tau_m, tau_r, omega, periods=6):
    net = GLENetwork([1, 1], "linear", tau_m=tau_m, tau_r=tau_r, weights=[[[1.0]]], dt=DT,
                     gamma=0.0)
    n = int(round((40 * tau_m + periods * 2 * np.pi / omega) / DT))
    sim = Simulator(net, inputs.Sine(omega=omega), record=("t", "input",
                    "prospective_voltage"), window=int(periods * 2 * np.pi / omega / DT))
    sim.run_steps(n)
    return measure_gain_phase(sim.trace("t"), sim.trace("input")[:, 0],
                              sim.trace("prospective_voltage")[:, 0], omega)


def error_run(tau_m, tau_r, omega, periods=6):
    """Output neuron with W = 0, γ = 0: ε_k = β y_k is a pure sinusoid, e is its filtered copy."""
    net = GLENetwork([1, 1], "linear", tau_m=tau_m, tau_r=tau_r, weights=[[[0.0]]], dt=DT,
                     gamma=0.0, beta=0.5)
    n = int(round((40 * tau_r + periods * 2 * np.pi / omega) / DT))
    sim = Simulator(net, inputs.Constant(0.0), target=inputs.Sine(omega=omega),
                    record=("t", "inst_error", "error"),
                    window=int(periods * 2 * np.pi / omega / DT))
    sim.run_steps(n)
    return measure_gain_phase(sim.trace("t"), sim.trace("inst_error")[:, 0],
                              sim.trace("error")[:, 0], omega)


def test_spec_example_forward_and_error():
    """Closed-form checks 1 and 2: τm = 1, τr = 0.1, dt = 0.01, ω = 1 (docs/model.md quotes
    the discrete scheme's numbers)."""
    f, e = forward_run(1.0, 0.1, 1.0), error_run(1.0, 0.1, 1.0)
    assert f.gain == pytest.approx(0.7121, abs=5e-5) and f.phase == pytest.approx(-0.6882, abs=5e-5)
    assert e.gain == pytest.approx(1.4044, abs=5e-5) and e.phase == pytest.approx(0.6882, abs=5e-5)


@pytest.mark.parametrize("tau_m,tau_r,omega", [(1.0, 0.1, 1.0), (1.0, 0.1, 5.0),
                                               (0.5, 2.0, 0.7), (2.0, 0.3, 2.5)])
def test_engine_matches_exact_discrete_transfer_functions(tau_m, tau_r, omega):
    f, e = forward_run(tau_m, tau_r, omega), error_run(tau_m, tau_r, omega)
    Hf = transfer("forward", omega, tau_m, tau_r, dt=DT)
    He = transfer("gle_error", omega, tau_m, tau_r, dt=DT)
    assert abs(f.gain * np.exp(1j * f.phase) - Hf) < 1e-9
    assert abs(e.gain * np.exp(1j * e.phase) - He) < 1e-9
    # continuous formulas hold to O(ω dt)
    gf, pf = gain_phase(transfer("forward", omega, tau_m, tau_r))
    assert abs(f.phase - pf) < 2 * omega * DT and abs(f.gain / gf - 1) < 2 * omega * DT
    # phase inversion (check 3): error leads by exactly the phase the rate lags
    assert f.phase + e.phase == pytest.approx(0.0, abs=1e-9)
    assert np.sign(f.phase) == np.sign(tau_r - tau_m)
