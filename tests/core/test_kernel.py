"""The compiled backend (gle_core._kernel, numba) against the numpy reference.

Both backends run the same Simulator loop (docs/model.md "The discrete scheme", teacher, loss,
probes); after
every run the simulator's public state must agree to 1e-12 (relative): network states and
parameters, teacher states, optimizer moments, probes, t, last_loss. Parameter changes and
backend swaps between run_steps calls must be picked up, and a divergence must be raised at
the same step by both.
"""
import copy

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from gle_core import (GLENetwork, GLEParameterError, SimulationDiverged,  # noqa: E402
                      Simulator, inputs)
from gle_core import _kernel  # noqa: E402
from gle_core.network import PARAMETER_KINDS, STATE_NAMES  # noqa: E402
from gle_core.optimizers import SGD  # noqa: E402
from gle_core.plan import ACTIVATION_CODES  # noqa: E402
from gle_core.rules import LocalRule  # noqa: E402
from gle_core.simulator import RECORDABLE  # noqa: E402

RTOL = 1e-12


def random_net(rng, sizes, acts, *, B=3, mode="gle", loss="mse", gamma=0.7, beta=0.5,
               tau_floor=0.05, biases=True, dt=0.01):
    L = len(sizes) - 1
    tau_m = [rng.uniform(0.3, 2.0, sizes[i + 1]) for i in range(L)]
    tau_r = [rng.uniform(max(0.05, tau_floor), 1.0, sizes[i + 1]) for i in range(L)]
    W = [rng.normal(0, 0.6, (sizes[i + 1], sizes[i])) for i in range(L)]
    b = [rng.normal(0, 0.3, sizes[i + 1]) if biases else np.zeros(sizes[i + 1])
         for i in range(L)]
    return GLENetwork(list(sizes), list(acts), tau_m, tau_r, W, b, dt=dt, gamma=gamma,
                      beta=beta, loss=loss, error_mode=mode, tau_floor=tau_floor,
                      batch_size=B)


class IntLabels(inputs.Stimulus):
    """Integer class labels (batch,) per step: exercises the one-hot path."""

    def __init__(self, n_classes):
        self.n_classes = n_classes

    def sample(self, t):
        t = np.atleast_1d(t)
        B = self.batch_size
        return ((np.floor(t[:, None] / 0.37) + np.arange(B)[None, :]) % self.n_classes
                ).astype(np.int64)


class StreamSines(inputs.Stimulus):
    """A different sum of sines per stream and channel."""

    def __init__(self, n_channels, seed=0):
        rng = np.random.default_rng(seed)
        self.n_channels = n_channels
        self.om = rng.uniform(0.5, 4.0, (3, n_channels))
        self.ph = rng.uniform(0, 6.28, (3, n_channels))

    def sample(self, t):
        t = np.atleast_1d(t)
        B = self.batch_size
        s = np.arange(B)[None, :, None] * 0.7
        return sum(np.sin(self.om[q] * (t[:, None, None] + s) + self.ph[q]) for q in range(3))


CASES = {
    # name: (sizes, activations, net kwargs, teacher sizes or None, target kind, sim kwargs)
    "tanh-softplus-gle-adam": (
        [2, 4, 3, 2], ["tanh", "softplus", "linear"], dict(B=3, gamma=1.0),
        [2, 5, 2], None,
        dict(optimizer="adam", lr={"W": 1e-3, "tau_m": 5e-4},
             learn={"W": True, "tau_m": True}, record_every=1)),
    "sigmoid-relu-ie-momentum": (
        [1, 3, 4, 1], ["sigmoid", "relu", "linear"], dict(B=4, mode="ie", gamma=0.5),
        [1, 3, 4, 1], None,
        dict(optimizer="momentum", lr={"W": 5e-4, "tau_m": 5e-4, "tau_r": 2e-5},
             optimizer_kwargs={"momentum": 0.8},
             learn={"W": [1, 2], "tau_r": [0, 1], "tau_m": [0]}, record_every=3,
             learn_from=0.5)),
    "hard-ce-sgd-target": (
        [3, 5, 4], ["hard_sigmoid", "linear"], dict(B=5, loss="cross_entropy", gamma=0.3,
                                                     beta=1.0),
        None, "sines",
        dict(optimizer="sgd", lr=2e-2, learn={"W": True, "b": True, "tau_m": True,
                                              "tau_r": True},
             record_every=7, record_stream=2)),
    "hardtanh-ce-labels-adam": (
        [2, 6, 3], ["hard_tanh", "linear"], dict(B=4, loss="cross_entropy", gamma=0.0,
                                                 beta=1.0),
        None, "labels",
        dict(optimizer="adam", lr=1e-2, learn={"W": True, "b": [1]}, record_every=2,
             learn_from=1.0)),
    "chain-softplus-lagline-like": (
        [1, 1, 1], ["softplus", "softplus"], dict(B=6, gamma=1.0, beta=0.01, biases=False,
                                                  tau_floor=0.1),
        [1, 1, 1], None,
        dict(optimizer="adam", lr=1e-2, learn={"W": True, "tau_m": True}, record_every=5,
             learn_from=0.3)),
    "deep-mixed-no-target": (
        [2, 3, 3, 3, 2], ["tanh", "sigmoid", "softplus", "linear"], dict(B=2, gamma=1.0),
        None, None,
        dict(optimizer="adam", lr=1e-3, learn={"W": True}, record_every=4)),
    "single-layer-ie-relu": (
        [3, 2], ["relu"], dict(B=3, mode="ie", gamma=0.2),
        [3, 2], None,
        dict(optimizer="sgd", lr=1e-2, learn={"W": True, "b": True, "tau_m": True},
             record_every=1)),
}


def make_pair(case, seed=0):
    sizes, acts, net_kw, t_sizes, target, sim_kw = CASES[case]
    rng = np.random.default_rng(seed)
    net = random_net(rng, sizes, acts, **net_kw)
    teacher = None
    if t_sizes is not None:
        t_acts = (["softplus"] * (len(t_sizes) - 1) if acts[0] == "softplus"
                  else ["tanh"] * (len(t_sizes) - 2) + [acts[-1]])
        teacher = random_net(rng, t_sizes, t_acts, B=net.batch_size, gamma=0.4)
    stim = StreamSines(sizes[0], seed)
    tgt = None
    if target == "sines":
        tgt = StreamSines(sizes[-1], seed + 1)
    elif target == "labels":
        tgt = IntLabels(sizes[-1])
    kw = dict(record=RECORDABLE, window=97, seed=seed, **sim_kw)
    a = Simulator(net, stim, teacher, target=tgt, backend="numpy", **kw)
    b = Simulator(copy.deepcopy(net), copy.deepcopy(stim), copy.deepcopy(teacher),
                  target=copy.deepcopy(tgt), backend="numba", **kw)
    return a, b


def _close(x, y, what):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    assert x.shape == y.shape, what
    assert np.array_equal(np.isnan(x), np.isnan(y)), what
    scale = max(1.0, float(np.nanmax(np.abs(x)))) if x.size and not np.all(np.isnan(x)) else 1.0
    np.testing.assert_allclose(y, x, rtol=RTOL, atol=RTOL * scale, err_msg=what,
                               equal_nan=True)


def assert_same(a, b):
    """Everything a user can see of two simulators agrees to RTOL."""
    assert a.n_steps == b.n_steps and a.t == b.t
    for na, nb, who in ((a.network, b.network, "net"), (a.teacher, b.teacher, "teacher")):
        if na is None:
            assert nb is None
            continue
        assert na.steps == nb.steps
        for name in STATE_NAMES + ("feedback", "presynaptic") + PARAMETER_KINDS:
            la, lb = getattr(na, name), getattr(nb, name)
            assert len(la) == len(lb)
            for l, (x, y) in enumerate(zip(la, lb)):
                _close(x, y, f"{who}.{name}[{l}]")
                if name in STATE_NAMES:
                    assert y.shape == x.shape
        _close(na.output_drive, nb.output_drive, f"{who}.output_drive")
    _close(a._loss_acc, b._loss_acc, "loss_acc")
    assert a._loss_n == b._loss_n
    _close(a.last_loss, b.last_loss, "last_loss")
    assert set(a.probes) == set(b.probes)
    for name in a.probes:
        assert a.probes[name].total == b.probes[name].total, name
        _close(a.probes[name].data, b.probes[name].data, f"probe {name}")
    oa, ob = a.optimizer, b.optimizer
    assert type(oa) is type(ob) and oa.lr == ob.lr
    assert set(oa.state) == set(ob.state)
    for key in oa.state:
        sa, sb = oa.state[key], ob.state[key]
        if isinstance(sa, list):
            _close(sa[0], sb[0], f"adam m {key}")
            _close(sa[1], sb[1], f"adam v {key}")
            assert sa[2] == sb[2]
        else:
            _close(sa, sb, f"momentum {key}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_numba_matches_numpy_over_several_calls(case):
    a, b = make_pair(case)
    for n in (1, 99, 300, 211):
        a.run_steps(n)
        b.run_steps(n)
        assert_same(a, b)
    assert a.last_loss == a.last_loss or CASES[case][3] is None and CASES[case][4] is None


@pytest.mark.parametrize("case", ["tanh-softplus-gle-adam", "sigmoid-relu-ie-momentum",
                                  "hard-ce-sgd-target"])
def test_parameter_changes_between_calls_are_picked_up(case):
    a, b = make_pair(case, seed=1)
    changes = [
        lambda s: s.network.set_parameter("W", 0, 0.3, index=(0, 0)),
        lambda s: s.network.set_parameter("tau_m", s.network.n_layers - 1, 0.8),
        lambda s: s.network.set_error_mode("ie" if s.network.error_mode == "gle" else "gle"),
        lambda s: setattr(s, "lr", {"W": 1e-3, "b": 1e-4, "tau_r": 1e-5}),
        lambda s: setattr(s, "learn", {"W": [0], "b": True}),
        lambda s: s.network.set_parameter("b", 0, -0.2),
        lambda s: setattr(s, "learn_from", s.t + 0.55),
        lambda s: setattr(s, "learn", {"tau_r": True, "W": True}),
    ]
    for change in changes:
        for s in (a, b):
            change(s)
        a.run_steps(101)
        b.run_steps(101)
        assert_same(a, b)


def test_backends_can_be_swapped_between_calls():
    a, b = make_pair("tanh-softplus-gle-adam", seed=2)
    for i, n in enumerate((50, 213, 1, 100, 150)):    # across a stimulus block (512)
        b.backend = "numba" if i % 2 else "numpy"
        a.run_steps(n)
        b.run_steps(n)
        assert_same(a, b)


def test_reset_then_rerun_agrees():
    a, b = make_pair("chain-softplus-lagline-like", seed=2)
    a.run_steps(400)
    b.run_steps(400)
    a.reset()
    b.reset()
    assert_same(a, b)
    a.run_steps(333)
    b.run_steps(333)
    assert_same(a, b)


def test_lagline_protocol_prefix_agrees():
    """The published chain setup (batch 100, smoothed square input, Adam)."""
    from gle_core.protocols import make_protocol
    a = make_protocol("lagline", seed=1)
    b = make_protocol("lagline", seed=1)
    a.backend, b.backend = "numpy", "numba"
    for n in (5100, 1234):          # across learn_from = 50 a.u. and several input blocks
        a.run_steps(n)
        b.run_steps(n)
        assert_same(a, b)


def test_progress_is_reported_for_every_step():
    a, b = make_pair("chain-softplus-lagline-like")
    counts = {"a": [], "b": []}
    a.run_steps(2600, progress=counts["a"].append)
    b.run_steps(2600, progress=counts["b"].append)
    assert sum(counts["a"]) == sum(counts["b"]) == 2600
    assert_same(a, b)


def _diverge(sim, n):
    with pytest.raises(SimulationDiverged) as exc:
        sim.run_steps(n)
    return exc.value


@pytest.mark.parametrize("opt", ["sgd", "momentum"])
def test_overflow_is_raised_at_the_same_step(opt):
    a, b = make_pair("tanh-softplus-gle-adam", seed=1)
    for s in (a, b):
        if opt == "sgd":
            s.optimizer = SGD(1.0)
            s.lr = 1e6
        else:
            s.optimizer = __import__("gle_core").Momentum(1.0, 0.9)
            s.lr = {"W": 3e5}
    a.run_steps(3)
    b.run_steps(3)
    ea, eb = _diverge(a, 5000), _diverge(b, 5000)
    assert ea.t == eb.t > 0.03 and a.n_steps == b.n_steps == round(eb.t / 0.01)
    assert 1 <= eb.layer <= 3
    assert "diverged" in str(eb) and f"layer {eb.layer}" in str(eb)
    # the compiled path keeps the last finite state of everything ...
    for name in STATE_NAMES + PARAMETER_KINDS:
        for arr in getattr(b.network, name) + getattr(b.teacher, name):
            assert np.all(np.isfinite(arr)), name
    # ... and fails again at once, at the same step
    assert _diverge(b, 10).t == eb.t
    assert b.n_steps == a.n_steps


def test_bound_check_is_raised_at_the_same_step():
    """Adam moves a weight by about lr per step: |W|, |u| pass 1e12 without overflowing,
    and the periodic check (every 256 steps) raises the same error on both paths."""
    sims = []
    for backend in ("numpy", "numba"):
        net = GLENetwork([1, 3, 1], ["tanh", "linear"], 1.0, 0.5, dt=0.01, gamma=0.0,
                         seed=0, batch_size=2)
        teacher = GLENetwork([1, 3, 1], ["tanh", "linear"], 1.0, 0.5, dt=0.01, seed=1)
        sims.append(Simulator(net, inputs.Sine(omega=2.0), teacher, learn={"W": [1]},
                              lr=1e10, optimizer="adam", backend=backend, window=10))
    errs = [_diverge(s, 2000) for s in sims]
    assert errs[0].t == errs[1].t == 2.56
    assert (errs[0].variable, errs[0].layer) == (errs[1].variable, errs[1].layer)
    assert errs[1].value == pytest.approx(errs[0].value, rel=1e-12)
    assert sims[0].n_steps == sims[1].n_steps == 256
    for x, y in zip(sims[0].network.W + sims[0].network.u, sims[1].network.W + sims[1].network.u):
        np.testing.assert_allclose(y, x, rtol=1e-9)


def test_auto_backend_falls_back_and_explicit_numba_refuses():
    class MyNet(GLENetwork):
        pass

    net = MyNet([1, 2, 1], "tanh", 1.0, 0.5, dt=0.01, seed=0)
    sim = Simulator(net, inputs.Sine(), record=("r",), window=10)
    assert sim.backend == "auto"
    assert "subclass" in sim.kernel_unsupported_reason()
    sim.run_steps(20)                 # numpy path
    assert sim.n_steps == 20
    sim.backend = "numba"
    with pytest.raises(GLEParameterError, match="backend"):
        sim.run_steps(1)
    with pytest.raises(GLEParameterError, match="backend"):
        sim.backend = "cuda"
    # a duplicated (kind, layer) in learn is applied twice by the numpy path: not compiled
    net2 = GLENetwork([1, 2, 1], "tanh", 1.0, 0.5, dt=0.01, seed=0)
    sim2 = Simulator(net2, inputs.Sine(), learn={"W": [0, 0]})
    assert "twice" in sim2.kernel_unsupported_reason()
    # a teacher whose weights are the student's (the numpy path sees the student's updates
    # at once; the kernel packs copies)
    teacher = net2.copy()
    teacher.W = net2.W
    sim3 = Simulator(net2, inputs.Sine(), teacher, learn={"W": True})
    assert "shares" in sim3.kernel_unsupported_reason()

    class LoggingRule(LocalRule):                     # a rule hooking the loop
        name = "logging"

        def after_step(self, learning):
            super().after_step(learning)

    sim4 = Simulator(GLENetwork([1, 2, 1], "tanh", 1.0, 0.5, dt=0.01, seed=0),
                     inputs.Sine(), learn={"W": True}, rule=LoggingRule())
    assert "logging rule runs in numpy" in sim4.kernel_unsupported_reason()
    sim4.run_steps(5)


def test_zero_steps_and_zero_learning_rate():
    a, b = make_pair("sigmoid-relu-ie-momentum")
    a.run_steps(0)
    b.run_steps(0)
    assert_same(a, b)
    for s in (a, b):
        s.lr = {"W": 0.0, "tau_r": 1e-3}
    a.run_steps(300)
    b.run_steps(300)
    assert_same(a, b)


@pytest.mark.parametrize("name", sorted(ACTIVATION_CODES))
def test_compiled_activations_match_numpy(name):
    """φ and φ′ of the kernel against gle_core.activations, including extreme inputs."""
    from gle_core.activations import ACTIVATIONS
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 3, 20000), np.linspace(-4, 4, 8001),
                        np.logspace(-300, 3, 400), -np.logspace(-300, 3, 400),
                        [0.0, -0.0, 1e300, -1e300, 19.0, 20.0, 36.0, 709.0, -745.0]])
    r, rp = np.empty_like(x), np.empty_like(x)
    _kernel._activate(ACTIVATION_CODES[name], x, r, rp)
    phi, dphi = ACTIVATIONS[name]
    np.testing.assert_allclose(r, phi(x), rtol=1e-15, atol=1e-300)
    # φ′ = 1 - tanh² (or s (1 - s)) inherits the ~1e-16 absolute rounding of φ
    np.testing.assert_allclose(rp, dphi(x), rtol=1e-15, atol=1e-15)


# ----------------------------------------------------------------------------- input sources

def _labelled_pair(seed=0):
    """A small synthetic labelled set (3 classes of noisy sine shapes), streamed as in
    MNIST-1D: one point per step, the label as target at every step, cross-entropy."""
    datasets = pytest.importorskip("gle_core.datasets")
    rng = np.random.default_rng(seed)
    n, length = 24, 17
    labels = rng.integers(0, 3, n)
    grid = np.linspace(0, 1, length)
    x = np.sin(2 * np.pi * (labels[:, None] + 1) * grid) + 0.1 * rng.normal(size=(n, length))
    sims = []
    for backend in ("numpy", "numba"):
        src = datasets.LabelledSequences(x, labels, 3, 0.2, 4, seed=seed)
        net = random_net(np.random.default_rng(seed), [1, 6, 3], ["tanh", "linear"], B=4,
                         loss="cross_entropy", gamma=0.0, beta=1.0, dt=0.2, tau_floor=0.2)
        sims.append(Simulator(net, src.inputs, target=src.targets, optimizer="adam",
                              lr=1e-2, learn={"W": True, "b": True}, record=RECORDABLE,
                              window=50, backend=backend))
    return sims


def test_numba_matches_numpy_on_a_labelled_dataset_source():
    a, b = _labelled_pair()
    for n in (5, 17 * 3, 300):          # across sample boundaries and epochs
        a.run_steps(n)
        b.run_steps(n)
        assert_same(a, b)


def test_numba_matches_numpy_under_a_learning_rate_schedule():
    from gle_core.schedules import ReduceOnPlateau
    a, b = make_pair("chain-softplus-lagline-like", seed=3)
    scheds = [ReduceOnPlateau(lr=1e-3, factor=0.5, patience=1) for _ in (a, b)]
    for _ in range(6):
        for s, sch in zip((a, b), scheds):
            s.run_steps(120)
            s.lr = sch.step(1.0)       # a plateau: the rate halves every other call
        assert a.lr == b.lr
        assert_same(a, b)
    assert a.lr < 1e-3


STIMULI = {"smoothed_square": lambda: inputs.SmoothedSquare(period=0.8, sigma=0.02,
                                                           max_shift=0.5),
           "constant": lambda: inputs.Constant(0.7),
           "array": lambda: inputs.ArrayInput(np.sin(np.arange(37) * 0.3), 0.01),
           "sine": lambda: inputs.Sine(omega=1.3, amplitude=0.8, phase=0.2),
           "sum_of_sines": lambda: inputs.SumOfSines([0.49, 1.07, 1.98]),
           "callable": lambda: inputs.CallableInput(lambda t: np.cos(2.0 * t) ** 2)}
TABULATED = ("smoothed_square", "constant", "array")


@pytest.mark.parametrize("stimulus", sorted(STIMULI))
def test_numba_matches_numpy_on_every_built_in_input(stimulus):
    """Periodic inputs are read from a one-period table, the others sampled in blocks, by
    both backends alike."""
    stims = STIMULI
    sims = []
    for backend in ("numpy", "numba"):
        net = random_net(np.random.default_rng(5), [1, 3, 1], ["softplus", "linear"], B=3)
        teacher = random_net(np.random.default_rng(6), [1, 2, 1], ["tanh", "linear"], B=3)
        sims.append(Simulator(net, stims[stimulus](), teacher, optimizer="momentum", lr=1e-3,
                              learn={"W": True, "tau_m": True}, record=RECORDABLE, window=64,
                              seed=4, backend=backend))
    a, b = sims
    assert (a.stimulus.step_table(0.01) is not None) == (stimulus in TABULATED)
    for n in (3, 250, 700):
        a.run_steps(n)
        b.run_steps(n)
        assert_same(a, b)


def test_the_plan_is_cached_and_rebuilt_only_on_structural_change():
    a, b = make_pair("tanh-softplus-gle-adam", seed=4)
    a.run_steps(10)
    b.run_steps(10)
    plan = b.kernel_plan()
    assert all(np.shares_memory(w, plan.student.P) for w in b.network.W)
    assert np.shares_memory(b.network.u[0], plan.student.S)     # states are views of it
    for s in (a, b):
        s.network.set_parameter("W", 0, 0.1, index=(0, 0))      # values: the same plan
        s.lr = 1e-4
        s.run_steps(10)
    assert b.kernel_plan() is plan and plan.student.P[0] != 0.1
    assert plan.student.P[0] == b.network.W[0][0, 0]
    for s in (a, b):
        s.learn = {"W": [0]}                                    # structure: a new plan
        s.run_steps(10)
    assert b.kernel_plan() is not plan
    assert_same(a, b)


@pytest.mark.parametrize("case,method", [("chain-softplus-lagline-like", "exact"),
                                         ("sigmoid-relu-ie-momentum", "exact"),
                                         ("hardtanh-ce-labels-adam", "exact"),
                                         ("single-layer-ie-relu", "adjoint")])
def test_numba_matches_numpy_under_the_windowed_rule(case, method):
    """The kernel runs the windows' steps and records them; the exact gradient of each
    window is the numpy one, so the whole run agrees (windows span calls)."""
    a, b = make_pair(case, seed=5)
    for s in (a, b):
        s.set_rule("am", window=0.37, method=method)
    assert b.kernel_unsupported_reason() is None
    for n in (30, 100, 211, 5):
        a.run_steps(n)
        b.run_steps(n)
        assert_same(a, b)
        assert a.rule.n_updates == b.rule.n_updates
        assert (a.rule.tape is None) == (b.rule.tape is None)
    assert a.rule.n_updates >= 5
    for kind in a.rule.last_gradients:
        for x, y in zip(a.rule.last_gradients[kind], b.rule.last_gradients[kind]):
            _close(x, y, f"window gradient {kind}")


def test_a_window_can_change_backend_midway():
    a, b = make_pair("chain-softplus-lagline-like", seed=6)
    for s in (a, b):
        s.set_rule("am", window=0.5)
    for i, n in enumerate((20, 13, 40, 77, 31, 60)):      # windows of 50 steps
        b.backend = "numba" if i % 2 == 0 else "numpy"
        a.run_steps(n)
        b.run_steps(n)
        assert_same(a, b)
    assert a.rule.n_updates == b.rule.n_updates == 4


def test_softmax_exponentials_match_libm_and_keep_nan():
    """The kernel's softmax parts (cross-entropy drive and loss) without libm: per stream the
    maximum, exp(r - max) within 1e-15 of numpy, their sum in neuron order; a gap beyond
    708 gives a denormal-sized value instead of 0; NaN stays NaN."""
    rng = np.random.default_rng(3)
    n, B = 10, 37
    R = rng.normal(0.0, 20.0, (n, B))
    R[3, 5] = R[:, 5].max() + 900.0                 # other outputs of stream 5: exp < 1e-300
    R[7, 9] = np.nan
    mx, tot, ex = np.empty(B), np.empty(B), np.empty(n * B)
    _kernel._softmax_exp(R.ravel(), B, n, mx, ex, tot)
    ex = ex.reshape(n, B)
    ok = np.ones(B, bool)
    ok[9] = False
    assert np.array_equal(mx[ok], R[:, ok].max(axis=0))
    ref = np.exp(R[:, ok] - R[:, ok].max(axis=0))
    big = ref > 1e-300
    np.testing.assert_allclose(ex[:, ok][big], ref[big], rtol=1e-15, atol=0)
    assert np.all(ex[:, ok][~big] <= 1e-307)
    assert np.array_equal(tot[ok], sum(ex[i, ok] for i in range(n)))   # neuron order
    assert np.isnan(tot[9]) and np.isnan(ex[7, 9])
