"""Spec "Closed-form checks" closed-form checks 4-9 on the engine (1-3 are in
test_transfer_functions.py)."""
import numpy as np
import pytest

from gle_core import GLENetwork, GLEParameterError, Simulator, inputs


def random_net(rng, sizes=(2, 3, 3, 2), acts=("tanh", "softplus", "linear"), **kw):
    L = len(sizes) - 1
    tau_m = [rng.uniform(0.3, 2.0, sizes[i + 1]) for i in range(L)]
    tau_r = kw.pop("tau_r", None) or [rng.uniform(0.05, 1.5, sizes[i + 1]) for i in range(L)]
    W = [rng.normal(0, 1, (sizes[i + 1], sizes[i])) for i in range(L)]
    b = [rng.normal(0, 0.3, sizes[i + 1]) for i in range(L)]
    return GLENetwork(list(sizes), list(acts), tau_m, tau_r, W, b, **kw)


def drive(net, rng, n, target=True):
    """Run n steps with random smooth input and target, yielding after every step."""
    B, n_in, n_out = net.batch_size, net.layer_sizes[0], net.layer_sizes[-1]
    om = rng.uniform(0.3, 3, (n_in,))
    om_y = rng.uniform(0.3, 3, (n_out,))
    for k in range(n):
        t = k * net.dt
        x = np.sin(om * t + np.arange(B)[:, None])
        y = 0.5 * np.cos(om_y * t + np.arange(B)[:, None]) if target else None
        yield k, x, y


def test_le_limit_prospective_voltage_is_instantaneous_and_errors_are_bp():
    """check 4: τm = τr ⇒ ŭ = W r + b + γ e at every step, and e = ε (GLE errors = BP errors)."""
    rng = np.random.default_rng(1)
    sizes = (2, 4, 3, 2)
    tau = [rng.uniform(0.3, 2.0, n) for n in sizes[1:]]
    net = GLENetwork(list(sizes), ["tanh", "sigmoid", "linear"], tau, [t.copy() for t in tau],
                     [rng.normal(0, 1, (sizes[i + 1], sizes[i])) for i in range(3)],
                     [rng.normal(0, .3, n) for n in sizes[1:]], dt=0.01, gamma=0.7, beta=0.5,
                     batch_size=3)
    worst_u = worst_e = 0.0
    for k, x, y in drive(net, rng, 400):
        pre = [x] + [r.copy() for r in net.r[:-1]]
        net.step(x, y)
        for l in range(3):
            s = pre[l] @ net.W[l].T + net.b[l]
            expected = s + net.gamma * net.error[l]
            worst_u = max(worst_u, np.max(np.abs(net.prospective_voltage[l] - expected)))
            worst_e = max(worst_e, np.max(np.abs(net.error[l] - net.inst_error[l])))
    assert worst_u < 1e-12
    assert worst_e < 1e-12
    # and errors actually flowed through every layer
    assert all(np.max(np.abs(e)) > 1e-3 for e in net.error)


def test_tau_r_equal_dt_is_a_leaky_integrator_read_one_step_ahead():
    """check 5: τr = dt ⇒ ŭ_k = u_{k+1}: the plain leaky integrator, read one step ahead."""
    net = GLENetwork([1, 1], "linear", tau_m=0.7, tau_r=0.01, weights=[[[1.3]]], dt=0.01,
                     gamma=0.0)
    worst = 0.0
    for k in range(500):
        net.step(np.array([[np.sin(0.01 * k * 2.0)]]))
        worst = max(worst, abs(net.prospective_voltage[0][0, 0] - net.u[0][0, 0]))
    assert worst < 1e-15
    # ... which is the recursion u_{k+1} = u_k + a (s_k - u_k), i.e. a leaky integrator
    u = 0.0
    net.reset_state()
    for k in range(500):
        s = 1.3 * np.sin(0.01 * k * 2.0)
        u = u + 0.01 / 0.7 * (s - u)
        net.step(np.array([[np.sin(0.01 * k * 2.0)]]))
    assert net.u[0][0, 0] == pytest.approx(u, abs=1e-14)


@pytest.mark.parametrize("tau_m,tau_r", [(1.0, 0.1), (1.0, 1.0), (0.5, 2.0)])
def test_step_response(tau_m, tau_r):
    """check 6: s: 0 → 1 ⇒ ŭ_k = 1 - (1 - τr/τm)(1 - a_m)^k; the output jumps to τr/τm at once."""
    dt = 0.01
    net = GLENetwork([1, 1], "linear", tau_m=tau_m, tau_r=tau_r, weights=[[[1.0]]], dt=dt,
                     gamma=0.0)
    k = np.arange(300)
    got = []
    for _ in k:
        net.step(np.ones((1, 1)))
        got.append(net.prospective_voltage[0][0, 0])
    expected = 1 - (1 - tau_r / tau_m) * (1 - dt / tau_m) ** k
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)
    assert got[0] == pytest.approx(tau_r / tau_m, abs=1e-15)
    # the rate is the output of the *next* step (one dt of latency)
    assert net.step(np.ones((1, 1)))[0, 0] == pytest.approx(expected[-1], abs=1e-13)


@pytest.mark.parametrize("mode", ["gle", "ie"])
def test_energy_identity(mode):
    """check 7: u_old + τm u̇ - (W r + b) = γ e holds exactly at every step."""
    rng = np.random.default_rng(7)
    net = random_net(rng, dt=0.01, gamma=0.8, beta=0.3, batch_size=4, error_mode=mode)
    worst = 0.0
    for k, x, y in drive(net, rng, 300):
        u_old = [u.copy() for u in net.u]
        pre = [x] + [r.copy() for r in net.r[:-1]]
        net.step(x, y)
        for l in range(net.n_layers):
            lhs = u_old[l] + net.tau_m[l] * net.u_dot[l] - (pre[l] @ net.W[l].T + net.b[l])
            worst = max(worst, np.max(np.abs(lhs - net.gamma * net.error[l])))
    assert worst < 1e-12
    assert np.max(np.abs(net.error[0])) > 1e-4


def test_constant_input_equilibrium():
    """check 8: constant input, γ = 0 ⇒ u → W r + b; errors e → ε (DC gain 1)."""
    rng = np.random.default_rng(3)
    net = random_net(rng, dt=0.02, gamma=0.0, beta=0.5, batch_size=2)
    x = np.array([[0.3, -0.7], [1.0, 0.2]])
    y = np.array([[0.1, -0.2], [0.4, 0.0]])
    for _ in range(4000):
        net.step(x, y)
    pre = [x] + net.r[:-1]
    for l in range(net.n_layers):
        np.testing.assert_allclose(net.u[l], pre[l] @ net.W[l].T + net.b[l], atol=1e-9)
        np.testing.assert_allclose(net.error[l], net.inst_error[l], atol=1e-9)
    # a real error is flowing (output not equal to the target)
    assert np.max(np.abs(net.error[-1])) > 1e-3


@pytest.mark.parametrize("kind", ["tau_m", "tau_r"])
@pytest.mark.parametrize("bad", [0.0, -1.0, 0.004])
def test_unstable_time_constants_are_rejected(kind, bad):
    """check 9: explicit Euler needs τ ≥ dt here (stable for dt < 2τ, oscillation-free ≥ dt)."""
    kw = {"tau_m": 1.0, "tau_r": 0.1}
    kw[kind] = [1.0, bad]
    with pytest.raises(GLEParameterError) as exc:
        GLENetwork([1, 1, 1], "tanh", dt=0.01, **kw)
    msg = str(exc.value)
    assert f"{kind}[layer 2, neuron 0]" in msg and "dt = 0.01" in msg and repr(bad) in msg


def test_time_constant_change_between_steps_is_validated():
    net = GLENetwork([1, 2], "tanh", tau_m=1.0, tau_r=0.5, dt=0.01)
    net.set_parameter("tau_r", 0, 2.0, index=1)
    assert net.tau_r[0].tolist() == [0.5, 2.0]
    with pytest.raises(GLEParameterError, match=r"tau_m\[layer 1, neuron 0\] = 0.001"):
        net.set_parameter("tau_m", 0, 0.001)
    assert net.tau_m[0].tolist() == [1.0, 1.0]  # unchanged after a rejected change


def test_first_step_has_no_error_flow():
    """Spec "The discrete scheme": all states start at zero, so r' = 0 and no error flows in the
    first step."""
    net = GLENetwork([1, 2, 1], "tanh", tau_m=1.0, tau_r=0.3, dt=0.01, seed=0)
    net.step(np.ones((1, 1)), np.ones((1, 1)))
    assert np.all(net.inst_error[-1] == 0) and np.all(net.error[-1] == 0)
    net.step(np.ones((1, 1)), np.ones((1, 1)))
    assert np.all(net.inst_error[-1] != 0)   # output error after one step ...
    assert np.all(net.error[0] == 0)         # ... reaches the hidden layer one dt later
    net.step(np.ones((1, 1)), np.ones((1, 1)))
    assert np.all(net.error[0] != 0)


def test_simulator_output_is_previous_step_rate():
    net = GLENetwork([1, 1], "linear", tau_m=1.0, tau_r=1.0, weights=[[[2.0]]], dt=0.01)
    sim = Simulator(net, inputs.Constant(1.5), record=("output", "r"), window=10)
    sim.run_steps(3)
    out, r = sim.trace("output")[:, 0], sim.trace("r")[:, 0]
    assert out[0] == 0.0
    np.testing.assert_allclose(out[1:], r[:-1], atol=0)
    assert r[0] == pytest.approx(3.0)  # LE limit: instantaneous W x


def test_time_constants_below_the_tau_floor_are_rejected():
    """The τ floor (chain: 0.1 = 10 dt) is the lower bound of every τ, not only after learning."""
    with pytest.raises(GLEParameterError, match=r"tau_r\[layer 1, neuron 0\] = 0.05.*tau floor"):
        GLENetwork([1, 1], "tanh", tau_m=1.0, tau_r=0.05, dt=0.01, tau_floor=0.1)
    net = GLENetwork([1, 1], "tanh", tau_m=1.0, tau_r=0.1, dt=0.01, tau_floor=0.1)
    with pytest.raises(GLEParameterError, match="0.1, inf"):
        net.set_parameter("tau_m", 0, 0.09)
