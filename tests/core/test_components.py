"""Activations, optimizers, cross-entropy output and the local plasticity signals."""
import numpy as np
import pytest

from gle_core import Adam, GLENetwork, Momentum, SGD
from gle_core.activations import ACTIVATIONS


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(name):
    phi, dphi = ACTIVATIONS[name]
    x = np.linspace(-4.3, 4.1, 97)          # avoids the kinks at 0, ±1, ±3 exactly
    h = 1e-6
    num = (phi(x + h) - phi(x - h)) / (2 * h)
    np.testing.assert_allclose(dphi(x), num, atol=1e-7)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # as the engine runs
        big = np.array([-1e6, -800.0, 800.0, 1e6])
        assert np.all(np.isfinite(phi(big))) and np.all(np.isfinite(dphi(big)))


def test_activation_values():
    x = np.array([-2.0, 0.0, 2.0])
    np.testing.assert_allclose(ACTIVATIONS["softplus"][0](x), np.log1p(np.exp(x)))
    np.testing.assert_allclose(ACTIVATIONS["hard_sigmoid"][0](x), [1 / 6, 0.5, 5 / 6])
    np.testing.assert_allclose(ACTIVATIONS["relu"][0](x), [0, 0, 2])


def test_optimizers():
    p = np.array([1.0, -2.0])
    g = np.array([0.5, -4.0])
    SGD(0.1).update("k", p, g)
    np.testing.assert_allclose(p, [0.95, -1.6])
    m = Momentum(0.1, momentum=0.9)
    p = np.zeros(2)
    m.update("k", p, g)
    m.update("k", p, g)                   # m = g, then 0.9 g + g
    np.testing.assert_allclose(p, -0.1 * (g + 1.9 * g))
    a = Adam(0.01)
    p = np.zeros(2)
    a.update("k", p, g)                   # first bias-corrected Adam step = lr · sign(g)
    np.testing.assert_allclose(p, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    p1 = p.copy()
    a.update("k", p, 0 * g)
    m1, v1 = 0.9 * 0.1 * g, 0.999 * 0.001 * g * g
    step2 = 0.01 * (m1 / (1 - 0.81)) / (np.sqrt(v1 / (1 - 0.999 ** 2)) + 1e-8)
    np.testing.assert_allclose(p, p1 - step2, rtol=1e-12)


def test_cross_entropy_output_drive_and_loss():
    net = GLENetwork([2, 3], "linear", 1.0, 1.0, loss="cross_entropy", beta=2.0, batch_size=2)
    r = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    y = np.array([1, 2])
    sm = np.exp(r) / np.exp(r).sum(1, keepdims=True)
    np.testing.assert_allclose(net.output_error_drive(r, y), 2.0 * (np.eye(3)[y] - sm))
    assert net.loss_value(r, y) == pytest.approx(-np.mean(np.log(sm[[0, 1], [1, 2]])))
    with pytest.raises(ValueError, match="linear"):
        GLENetwork([2, 3], "tanh", 1.0, 1.0, loss="cross_entropy")


def test_local_gradients_are_the_papers_plasticity_signals():
    """ΔW = η⟨e r_inᵀ⟩, Δb = η⟨e⟩, Δτm = -η⟨e u̇⟩, Δτr = +η⟨ε u̇⟩ (docs/model.md "The network"), as
    gradients."""
    rng = np.random.default_rng(0)
    net = GLENetwork([2, 3, 2], ["tanh", "linear"], 1.0, [0.3, 0.5], dt=0.01, seed=0,
                     batch_size=4, gamma=0.5)
    for k in range(50):
        net.step(rng.normal(size=(4, 2)), rng.normal(size=(4, 2)))
    e, ud, eps, rin = net.error[1], net.u_dot[1], net.inst_error[1], net.presynaptic[1]
    np.testing.assert_allclose(net.local_gradients("W", 1),
                               -np.einsum("bi,bj->ij", e, rin) / 4, atol=1e-15)
    np.testing.assert_allclose(net.local_gradients("b", 1), -e.mean(0), atol=1e-15)
    np.testing.assert_allclose(net.local_gradients("tau_m", 1), (e * ud).mean(0), atol=1e-15)
    np.testing.assert_allclose(net.local_gradients("tau_r", 1), -(eps * ud).mean(0), atol=1e-15)
    assert np.all(np.abs(e) > 0)
