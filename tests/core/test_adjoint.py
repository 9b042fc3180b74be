"""Exact gradients (paper Eq. 9; docs/model.md "Exact gradients"): reverse mode, the Eq. 9
adjoint, the windowed rule (truncated BPTT) of the Simulator, LagNet AM."""
import numpy as np
import pytest

from gle_core import inputs
from gle_core.adjoint import (adjoint_traces, backward_adjoint, backward_exact,
                              energy_loss_scale, exact_gradients, get_state, record_window,
                              set_state)
from gle_core.config import build_simulator
from gle_core.protocols import LAGNET_AM, run_lagnet_am, student_config
from gle_core.errors import GLEParameterError
from gle_core.network import PARAMETER_KINDS, GLENetwork
from gle_core.simulator import Simulator


# ----------------------------------------------------------------------------- helpers

def _random_network(seed, activations, gamma, mode, loss, sizes=(2, 3, 3, 2), batch=3,
                    dt=0.05, warmup=15, K=30):
    """A random small network after ``warmup`` steps (non-zero state), and a window's data."""
    rng = np.random.default_rng(seed)
    L = len(sizes) - 1
    tm = [rng.uniform(0.1, 0.6, n) for n in sizes[1:]]
    tr = [rng.uniform(0.06, 0.6, n) for n in sizes[1:]]
    W = [rng.normal(0.0, 1.0, (sizes[i + 1], sizes[i])) for i in range(L)]
    b = [rng.normal(0.0, 0.3, sizes[i + 1]) for i in range(L)]
    net = GLENetwork(sizes, activations, tm, tr, W, b, dt=dt, gamma=gamma, beta=0.7, loss=loss,
                     error_mode=mode, batch_size=batch)
    x = rng.normal(0.0, 1.0, (warmup + K, batch, sizes[0]))
    if loss == "mse":
        y = rng.normal(0.0, 1.0, (warmup + K, batch, sizes[-1]))
    else:
        y = rng.integers(0, sizes[-1], (warmup + K, batch))
    for k in range(warmup):
        net.step(x[k], y[k])
    return net, x[warmup:], y[warmup:]


def _window_loss(net, x, y):
    """L = Σ_k loss_k by plain simulation of a copy (the engine's own step and loss)."""
    n = net.copy()
    return sum(n.loss_value(n.step(x[k], y[k]), y[k]) for k in range(len(x)))


def _fd_gradient(net, x, y, kind, layer, h=1e-5):
    """Fourth-order central finite differences of the window loss."""
    p = net.parameters(kind)[layer]
    out = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        orig = p[idx]
        step = h * max(1.0, abs(orig))
        vals = []
        for m in (2, 1, -1, -2):
            p[idx] = orig + m * step
            vals.append(_window_loss(net, x, y))
        p[idx] = orig
        out[idx] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * step)
    return out


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ----------------------------------------------------------------------------- exactness

CASES = [
    # activations,                          gamma, mode,  loss
    (["tanh", "sigmoid", "linear"],           0.8, "gle", "mse"),
    (["softplus", "tanh", "linear"],          1.0, "ie",  "cross_entropy"),
    (["relu", "hard_tanh", "sigmoid"],        0.5, "gle", "mse"),
    (["hard_sigmoid", "softplus", "linear"],  0.3, "gle", "cross_entropy"),
    (["sigmoid", "tanh", "softplus"],         1.0, "ie",  "mse"),
    (["tanh", "tanh", "tanh"],                0.0, "gle", "mse"),
]


@pytest.mark.parametrize("acts,gamma,mode,loss", CASES)
def test_exact_gradients_match_finite_differences(acts, gamma, mode, loss):
    net, x, y = _random_network(1, acts, gamma, mode, loss)
    before = get_state(net)
    res = exact_gradients(net, x, y)
    # the network is untouched and the recorded loss is the plain simulation's
    assert np.array_equal(net.r[-1], before["r"][-1]) and net.steps == before["steps"]
    assert res.loss == pytest.approx(_window_loss(net, x, y), rel=1e-14, abs=0)
    for kind in PARAMETER_KINDS:               # W, b, tau_m and tau_r of every layer
        for layer in range(net.n_layers):
            fd = _fd_gradient(net, x, y, kind, layer)
            assert _rel(res.grads[kind][layer], fd) <= 1e-6, (kind, layer)


def test_forward_is_the_engines_step_bit_for_bit():
    net, x, y = _random_network(2, ["tanh", "softplus", "linear"], 0.7, "gle", "mse")
    plain = net.copy()
    outs = [plain.step(x[k], y[k]) for k in range(len(x))]
    tape = record_window(net, x, y)
    for k, (xk, yk, _) in enumerate(tape.steps):
        assert tape.losses[k] == plain.loss_value(outs[k], y[k])
    for name in ("u", "r", "r_prime", "error_state", "error", "feedback"):
        for a, b in zip(getattr(net, name), getattr(plain, name)):
            assert np.array_equal(a, b), name
    assert len(tape) == len(x) and tape.nbytes > 0


def test_state_round_trip_and_explicit_initial_state():
    net, x, y = _random_network(3, "tanh", 0.5, "gle", "mse")
    state = get_state(net)
    ref = exact_gradients(net, x, y)
    other = net.copy()
    other.reset_state()
    res = exact_gradients(other, x, y, state=state)
    for kind in PARAMETER_KINDS:
        for a, b in zip(res.grads[kind], ref.grads[kind]):
            np.testing.assert_array_equal(a, b)
    set_state(other, state)
    assert np.array_equal(other.error[1], net.error[1])


@pytest.mark.parametrize("loss,shared_tau", [("mse", False), ("cross_entropy", False),
                                              ("mse", True)])
def test_eq9_adjoint_equals_exact_reverse_mode_for_gamma_zero(loss, shared_tau):
    acts = ["tanh", "sigmoid", "linear"]
    net, x, y = _random_network(4, acts, 0.0, "gle", loss, K=60)
    if shared_tau:                      # one (τm, τr) per layer: the lfilter path
        for l in range(net.n_layers):
            net.tau_m[l][...] = 0.3 + 0.2 * l
            net.tau_r[l][...] = 0.1 + 0.1 * l
    ex = backward_exact(record_window(net.copy(), x, y), return_adjoint=True)
    am = backward_adjoint(record_window(net.copy(), x, y))
    for kind in PARAMETER_KINDS:
        for a, b in zip(am.grads[kind], ex.grads[kind]):
            assert _rel(a, b) < 1e-12, kind
    for a, b in zip(am.adjoint + am.alpha, ex.adjoint + ex.alpha):
        assert _rel(a, b) < 1e-12
    np.testing.assert_allclose(am.t, ex.t)


def test_eq9_adjoint_ignores_the_error_feedback_when_gamma_nonzero():
    net, x, y = _random_network(5, "tanh", 1.0, "gle", "mse")
    ex = exact_gradients(net, x, y)
    am = backward_adjoint(record_window(net.copy(), x, y, error_path=False))
    assert _rel(am.grads["W"][0], ex.grads["W"][0]) > 1e-3


def test_lambda_units_at_an_le_output():
    """LE limit (τm = τr): λ_k = α_k = φ′ β (y_{k+1} - r_{k+1}), the GLE output error's form."""
    net, x, y = _random_network(6, "linear", 0.0, "gle", "mse", sizes=(2, 2), batch=2)
    net.tau_r[0][...] = net.tau_m[0]
    res = exact_gradients(net, x, y, return_adjoint=True)
    tape = record_window(net.copy(), x, y)
    r = tape.stacked("r")[0]
    expected = net.beta * (y[1:] - r[:-1])
    np.testing.assert_allclose(res.adjoint[0][:-1], expected, rtol=1e-12, atol=1e-14)
    assert np.all(res.adjoint[0][-1] == 0)
    assert energy_loss_scale(net) == pytest.approx(net.beta * net.dt * 2 / 2)


def test_discrete_adjoint_operator_has_the_gle_phase_and_inverse_gain():
    """Paper Eq. 13 for the discrete scheme: λ/α = conj of the forward operator's inverse."""
    dt, tm, tr, om = 0.01, 1.0, 0.1, 1.0
    net = GLENetwork([1, 1], "linear", tm, tr, [[[1.0]]], dt=dt, gamma=0.0)
    K = 6000
    t = dt * np.arange(K)
    y = np.sin(om * t)[:, None, None]
    r = np.zeros((K, 1))
    rp = np.ones((K, 1))
    tt, lam, alpha = adjoint_traces(net, r, rp, y[:, 0])
    s = slice(1000, 3000)                            # away from both window ends
    A = np.column_stack([np.cos(om * tt[s]), np.sin(om * tt[s])])
    ca, *_ = np.linalg.lstsq(A, alpha[0][s, 0, 0], rcond=None)
    cl, *_ = np.linalg.lstsq(A, lam[0][s, 0, 0], rcond=None)
    H = complex(cl[0], -cl[1]) / complex(ca[0], -ca[1])
    z = np.exp(1j * om * dt)
    sig = (z - 1) / dt
    gle_error = (1 + tm * sig) / (1 + tr * sig)     # discrete GLE error operator (model.md check 2)
    am_adjoint = (1 + tr * np.conj(sig)) / (1 + tm * np.conj(sig))   # I⁺_τm D⁻_τr, σ → σ*
    assert abs(H - am_adjoint) < 1e-9
    assert np.angle(H) == pytest.approx(np.angle(gle_error), abs=1e-9)   # equal phase
    assert abs(H) * abs(gle_error) == pytest.approx(1.0, abs=1e-9)       # inverse gain
    assert np.angle(H) == pytest.approx(0.6882, abs=1e-4)     # model.md check 2's example phase
    assert abs(H) == pytest.approx(1 / 1.4044, abs=1e-4)       # and its inverse gain
    # continuous Eq. 11: (1 - iωτr)/(1 - iωτm), to O(ω dt)
    assert np.angle(H) == pytest.approx(np.arctan(om * tm) - np.arctan(om * tr), abs=5e-3)


# ----------------------------------------------------------------------------- alignment

def _xcorr_lag(a, b, start, stop, max_lag):
    """Lag (steps) maximising the normalised correlation of a[k] with b[k - lag]."""
    a = a[start:stop] - a[start:stop].mean()
    best, best_c = 0, -np.inf
    for lag in range(-max_lag, max_lag + 1):
        bb = b[start - lag:stop - lag]
        bb = bb - bb.mean()
        c = a @ bb / np.sqrt((a @ a) * (bb @ bb))
        if c > best_c:
            best, best_c = lag, c
    return best


def _chain_errors_and_adjoint(activation, mode, omega=1.0, K=8000, dt=0.01):
    """Chain input → n1 → n2 (docs/model.md "Published protocols" teacher), student off the
    teacher, γ = 0, no learning."""
    t = dt * np.arange(K)
    x = np.sin(omega * t)[:, None, None]
    teacher = GLENetwork([1, 1, 1], activation, [1.0, 2.0], 0.1, [[[1.0]], [[2.0]]], dt=dt,
                         gamma=0.0)
    y = np.stack([teacher.step(x[k]) for k in range(K)])
    student = GLENetwork([1, 1, 1], activation, [0.5, 1.5], 0.1, [[[0.5]], [[1.0]]], dt=dt,
                         gamma=0.0, beta=1.0, error_mode=mode)
    tape = record_window(student, x, y, error_path=True)
    res = backward_exact(tape, return_adjoint=True)
    e = tape.stacked("error")
    return [a[:, 0, 0] for a in e], [a[:, 0, 0] for a in res.adjoint]


def _lags(activation, mode, K=8000):
    e, lam = _chain_errors_and_adjoint(activation, mode, K=K)
    return [_xcorr_lag(e[l], lam[l], 2000, K - 1500, 250) for l in range(2)]


def test_gle_error_is_aligned_with_the_adjoint_and_ie_error_is_not():
    """Linear chain, ω = 1: e(GLE) lags λ only by the Jacobi latency (3 dt, 1 dt); e(IE) lags
    by the adjoint's phase lead atan(ωτm) - atan(ωτr) per layer (paper Eq. 13)."""
    gle = _lags("linear", "gle")
    ie = _lags("linear", "ie")
    assert gle == [3, 1]
    dt, tr = 0.01, 0.1
    lead = [np.arctan(tm) - np.arctan(tr) for tm in (0.5, 1.5)]   # student τm, ω = 1
    expected_ie = [(lead[0] + lead[1]) / dt + 3, lead[1] / dt + 1]
    assert ie[0] == pytest.approx(expected_ie[0], abs=3)          # ≈ 128 steps
    assert ie[1] == pytest.approx(expected_ie[1], abs=3)          # ≈ 89 steps


def test_alignment_on_the_softplus_chain():
    """The published chain (softplus): harmonics shift the peak a little, IE stays far off."""
    gle = _lags("softplus", "gle")
    ie = _lags("softplus", "ie")
    assert all(abs(g) <= 20 for g in gle)        # within 0.2 a.u.
    assert all(i >= 80 for i in ie)
    assert all(abs(g) * 4 < i for g, i in zip(gle, ie))


def test_adjoint_traces_from_a_simulator_recording_match_the_exact_adjoint():
    """Dashboard path: λ from the Simulator's records, on the same t axis as its e."""
    dt, K = 0.01, 1500
    mk = lambda: GLENetwork([1, 2, 1], ["tanh", "linear"], [[1.0, 0.5], [1.0]],  # noqa: E731
                            [[0.1, 0.5], [0.2]], [[[0.8], [-0.6]], [[1.0, 0.7]]], dt=dt,
                            gamma=0.0, batch_size=2)
    teacher = mk()
    teacher.W[0][...] = [[1.0], [-1.0]]
    sim = Simulator(mk(), inputs.Sine(omega=1.3), teacher,
                    record=("t", "r", "r_prime", "target", "error", "input"), window=K)
    sim.run_steps(K)
    t, lam, alpha = adjoint_traces(sim.network, sim.trace("r"), sim.trace("r_prime"),
                                   sim.trace("target"), sim.trace("t"))
    assert lam[0].shape == (K, 1, 2) and lam[1].shape == (K, 1, 1)
    np.testing.assert_array_equal(t, sim.trace("t"))
    # the same window through the exact reverse mode
    x = inputs.Sine(omega=1.3)
    x.reset(2)
    xs = x.sample(dt * np.arange(K))
    teacher2 = mk()
    teacher2.W[0][...] = [[1.0], [-1.0]]
    ys = np.stack([teacher2.step(xs[k]) for k in range(K)])
    res = exact_gradients(mk(), xs, ys, return_adjoint=True)
    for l in range(2):
        np.testing.assert_allclose(lam[l][:, 0], res.adjoint[l][:, 0], rtol=1e-10,
                                   atol=1e-13)


# ----------------------------------------------------------------------------- BPTT

def _chain_trainer(window, lr, method="exact", gamma=0.5, batch=2, learn=None):
    student = GLENetwork([1, 2, 1], ["softplus", "linear"], [[0.6, 1.2], [0.8]], 0.15,
                         [[[0.4], [0.9]], [[0.7, -0.3]]], [[0.1, -0.1], [0.05]], dt=0.01,
                         gamma=gamma, beta=0.5, batch_size=batch, tau_floor=0.1)
    teacher = GLENetwork([1, 2, 1], ["softplus", "linear"], [[1.0, 2.0], [1.0]], 0.1,
                         [[[1.0], [2.0]], [[1.0, -1.0]]], dt=0.01, gamma=gamma)
    stim = inputs.SmoothedSquare(period=4.0, sigma=0.05, max_shift=2.0)
    learn = learn or {"W": True, "b": True, "tau_m": True, "tau_r": True}
    return Simulator(student, stim, teacher, rule="am",
                     rule_options={"window": window, "method": method}, optimizer="sgd",
                     lr=lr, learn=learn, seed=3, record=("t", "loss", "W"), window=1000,
                     backend="numpy")     # the reference; tests/core/test_kernel.py compares


def _window_data(steps, batch=2, gamma=0.5, start=0):
    stim = inputs.SmoothedSquare(period=4.0, sigma=0.05, max_shift=2.0)
    stim.reset(batch, 3)
    xs = stim.sample(0.01 * np.arange(start + steps))
    teacher = _chain_trainer(1.0, 0.0, gamma=gamma).teacher
    teacher.reset_state(batch)
    ys = np.stack([teacher.step(xs[k]) for k in range(start + steps)])
    return xs, ys


def test_bptt_with_one_window_over_the_whole_run_is_the_exact_gradient():
    """The windowed rule with TW = the whole run takes one step along the exact gradient."""
    n = 400
    tr = _chain_trainer(window=n * 0.01, lr=1e-3)
    init = {k: [a.copy() for a in tr.network.parameters(k)] for k in PARAMETER_KINDS}
    fresh = tr.network.copy()
    tr.run_steps(n)
    assert tr.rule.n_updates == 1
    xs, ys = _window_data(n)
    ref = exact_gradients(fresh, xs, ys)
    kappa = energy_loss_scale(fresh)
    assert kappa == pytest.approx(0.5 * 0.01 * 1 / 2)
    for kind in PARAMETER_KINDS:
        for layer in range(2):
            np.testing.assert_allclose(tr.rule.last_gradients[kind][layer],
                                       kappa * ref.grads[kind][layer], rtol=1e-12, atol=0)
            # one SGD step θ ← θ - lr κ dL/dθ (no τ hit the floor here)
            np.testing.assert_allclose(tr.network.parameters(kind)[layer],
                                       init[kind][layer] - 1e-3 * kappa * ref.grads[kind][layer],
                                       rtol=1e-13, atol=1e-15)
    assert tr.rule.last_window_loss == pytest.approx(ref.loss, rel=1e-13)


def test_bptt_forward_equals_the_simulator_and_gradients_are_cut_at_window_ends():
    n, w = 300, 100
    tr = _chain_trainer(window=w * 0.01, lr=0.0)          # lr 0: parameters stay put
    tr.run_steps(n)
    assert tr.rule.n_updates == 3
    # the trajectory is the engine's step, bit for bit, and the Simulator's (any backend)
    xs, ys = _window_data(n)
    plain = tr.network.copy()
    plain.reset_state()
    losses = [plain.loss_value(plain.step(xs[k], ys[k]), ys[k]) for k in range(n)]
    np.testing.assert_array_equal(tr.trace("loss"), losses)
    sim = Simulator(tr.network.copy(), inputs.SmoothedSquare(period=4.0, sigma=0.05,
                                                             max_shift=2.0),
                    _chain_trainer(1.0, 0.0).teacher, record=("t", "loss"), window=1000,
                    seed=3)
    sim.run_steps(n)
    np.testing.assert_allclose(tr.trace("loss"), sim.trace("loss"), rtol=1e-10, atol=1e-15)
    # the last window's gradient starts from the carried-over state, nothing flows back
    net = tr.network.copy()
    net.reset_state()
    for k in range(n - w):
        net.step(xs[k], ys[k])
    ref = exact_gradients(net, xs[n - w:], ys[n - w:])
    kappa = energy_loss_scale(net)
    for kind in PARAMETER_KINDS:
        for layer in range(2):
            np.testing.assert_allclose(tr.rule.last_gradients[kind][layer],
                                       kappa * ref.grads[kind][layer], rtol=1e-12, atol=0)


def test_bptt_windows_span_calls_and_memory_is_bounded():
    tr = _chain_trainer(window=0.5, lr=1e-3, method="adjoint", gamma=0.0)
    for _ in range(7):
        tr.run_steps(30)                                   # 210 steps = 4 windows + 10
    assert tr.rule.n_updates == 4 and len(tr.rule.tape) == 10
    m = tr.memory_bytes
    tr.run(5.0)
    assert tr.memory_bytes == m                            # constant in run length
    small = record_window(tr.network.copy(), *_window_data(50, gamma=0.0))
    big = record_window(tr.network.copy(), *_window_data(100, gamma=0.0))
    assert big.nbytes == pytest.approx(2 * small.nbytes, rel=0.05)   # ∝ window


def test_trainer_keeps_the_last_windows_adjoint_for_display():
    tr = _chain_trainer(window=0.5, lr=1e-3, method="adjoint", gamma=0.0)
    tr.rule.keep_adjoint = True
    tr.run_steps(120)
    w = tr.rule.last_window
    assert w.method == "adjoint" and len(w.adjoint) == 2
    assert w.adjoint[0].shape == (50, 2, 2) and w.alpha[1].shape == (50, 2, 1)
    np.testing.assert_allclose(w.t, 0.01 * np.arange(50, 100))   # the second window's steps


def test_trainer_learn_from_and_validation():
    tr = _chain_trainer(window=0.5, lr=1e-3, learn={"W": [0]})
    tr.learn_from = 1.0
    w1 = tr.network.W[1].copy()
    tr.run(0.99)
    assert tr.rule.n_updates == 0 and tr.rule.tape is None
    tr.run(1.01)                                          # windows from t = 1.00 a.u.
    assert tr.rule.n_updates == 2
    np.testing.assert_array_equal(tr.network.W[1], w1)   # only layer 0 learns
    tr.reset()
    assert tr.n_steps == 0 and tr.rule.n_updates == 0
    with pytest.raises(GLEParameterError):
        _chain_trainer(window=0.0, lr=1e-3)
    with pytest.raises(GLEParameterError):
        _chain_trainer(window=1.0, lr=1e-3, method="autodiff")


# ----------------------------------------------------------------------------- LagNet

def test_lagnet_am_definition_reuses_the_gle_protocol():
    from gle_core.protocols import LAGNET, make_protocol
    assert LAGNET_AM["gamma"] == 0.0
    lrn = LAGNET_AM["learning"]
    assert lrn["window"] == 3.0 and lrn["lr"] == 7e-2 and lrn["optimizer"] == "momentum"
    assert lrn["optimizer_kwargs"] == {"momentum": 0.9} and lrn["learn"] == {"W": [0]}
    for key in ("network", "teacher", "stimulus", "dt", "duration"):
        assert LAGNET_AM[key] == LAGNET[key]
    for seed in (0, 1):
        tr = build_simulator(student_config(LAGNET_AM, seed), seed=seed)
        sim = make_protocol("lagnet", seed=seed)
        np.testing.assert_array_equal(tr.network.W[0], sim.network.W[0])  # same student
        assert tr.network.gamma == 0.0 and tr.rule.window_steps == 300


def test_lagnet_am_first_windows():
    """Short run: learning starts at 80 a.u. with one update per 3 a.u."""
    res = run_lagnet_am(seed=0, duration=92.0)
    assert res["n_updates"] == 4
    tr = res["simulator"]
    w = tr.trace("W")[:, :2]
    assert np.all(w[:80] == w[0]) and not np.all(w[-1] == w[0])


def test_lagnet_gle_and_am_students_reach_the_teacher():
    """Paper Fig. 5 (docs/model.md "Published protocols"): both reach W1 = (-0.5, 1) within 1e-2 (≈
    35 s together)."""
    from gle_core.protocols import run_protocol
    gle = run_protocol("lagnet", seed=0)
    am = run_lagnet_am(seed=0)
    target = np.array([-0.5, 1.0])
    assert np.max(np.abs(np.ravel(gle["W"][0]) - target)) < 1e-2
    assert np.max(np.abs(np.asarray(am["W1"]) - target)) < 1e-2
    assert am["n_updates"] == 307
