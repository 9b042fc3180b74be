"""A training step split between two threads (gle_core._kernel.run, two parts).

Within one Euler step the layers are independent (layer ℓ reads only the old state of its
neighbours), so the kernel can step some layers in a second thread: their products,
elementwise loops, gradients and optimizer updates, the two threads meeting once per step
to combine their verdicts before anything is committed. Every number is computed by the
same code on the same values as with one thread, so the results must be *identical*, bit
for bit: states, parameters, optimizer moments, probes, losses, divergence errors. Also:
any split of the layers, a run on one CPU (no deadlock), the thread-count defaults, the
pace-based choice between one and two threads, and the MNIST-1D driver's ``threads``.
"""
import copy
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from gle_core import GLENetwork, SimulationDiverged, Simulator, inputs  # noqa: E402
from gle_core import _kernel  # noqa: E402
from gle_core.network import PARAMETER_KINDS, STATE_NAMES  # noqa: E402
from gle_core.optimizers import SGD  # noqa: E402
from test_kernel import CASES, make_pair  # noqa: E402


@pytest.fixture
def split(monkeypatch):
    """Every kernel call with two or more layers runs on two parts (fixed)."""
    monkeypatch.setattr(_kernel, "parts_for",
                        lambda plan, n: (2 if plan.student.net.n_layers > 1 else 1, True))


def numba_pair(case, seed=0):
    """Two identical compiled simulators of a test_kernel case."""
    return make_pair(case, seed)[1], make_pair(case, seed)[1]


def _same(x, y, what):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    assert x.shape == y.shape, what
    assert np.array_equal(x, y, equal_nan=True), \
        f"{what}: max difference {np.nanmax(np.abs(x - y))}"


def assert_identical(a, b):
    """Everything a user can see of two simulators is equal, bit for bit."""
    assert a.n_steps == b.n_steps and a.t == b.t
    for na, nb, who in ((a.network, b.network, "net"), (a.teacher, b.teacher, "teacher")):
        if na is None:
            assert nb is None
            continue
        assert na.steps == nb.steps
        for name in STATE_NAMES + ("feedback", "presynaptic") + PARAMETER_KINDS:
            for l, (x, y) in enumerate(zip(getattr(na, name), getattr(nb, name))):
                _same(x, y, f"{who}.{name}[{l}]")
        _same(na.output_drive, nb.output_drive, f"{who}.output_drive")
    _same(a._loss_acc, b._loss_acc, "loss_acc")
    assert a._loss_n == b._loss_n
    _same(a.last_loss, b.last_loss, "last_loss")
    assert set(a.probes) == set(b.probes)
    for name in a.probes:
        assert a.probes[name].total == b.probes[name].total, name
        _same(a.probes[name].data, b.probes[name].data, f"probe {name}")
    assert set(a.optimizer.state) == set(b.optimizer.state)
    for key, sa in a.optimizer.state.items():
        sb = b.optimizer.state[key]
        if isinstance(sa, list):
            _same(sa[0], sb[0], f"m {key}")
            _same(sa[1], sb[1], f"v {key}")
            assert sa[2] == sb[2]
        else:
            _same(sa, sb, f"momentum {key}")


def _run_both(one, two, monkeypatch, n):
    """``one.run_steps(n)`` on one part, ``two.run_steps(n)`` on two."""
    with monkeypatch.context() as m:
        m.setattr(_kernel, "parts_for", lambda plan, n: (1, True))
        one.run_steps(n)
    with monkeypatch.context() as m:
        m.setattr(_kernel, "parts_for",
                  lambda plan, n: (2 if plan.student.net.n_layers > 1 else 1, True))
        calls = []
        real = _kernel._run
        m.setattr(_kernel, "_run", lambda *args: calls.append(args[-3]) or real(*args))
        two.run_steps(n)
    return calls


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_threads_give_the_numbers_of_one_bit_for_bit(case, monkeypatch):
    one, two = numba_pair(case)
    for n in (1, 99, 300, 211):
        parts = _run_both(one, two, monkeypatch, n)
        assert_identical(one, two)
        want = 2 if one.network.n_layers > 1 else 1
        assert parts and set(parts) == {want}


@pytest.mark.parametrize("case", ["chain-softplus-lagline-like", "hardtanh-ce-labels-adam"])
def test_two_threads_under_the_windowed_rule(case, monkeypatch):
    one, two = numba_pair(case, seed=5)
    for s in (one, two):
        s.set_rule("am", window=0.37, method="exact")
    for n in (30, 100, 211, 5):
        _run_both(one, two, monkeypatch, n)
        assert_identical(one, two)
        assert one.rule.n_updates == two.rule.n_updates
    assert one.rule.n_updates >= 5


def test_every_split_of_the_layers_gives_the_same_numbers(split):
    ref = numba_pair("deep-mixed-no-target", seed=2)[0]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_kernel, "parts_for", lambda plan, n: (1, True))
        ref.run_steps(500)
    L = ref.network.n_layers
    for mask in range(1 << (L - 1)):
        own = np.array([(mask >> l) & 1 for l in range(L - 1)] + [0], np.int64)
        sim = numba_pair("deep-mixed-no-target", seed=2)[0]
        sim.kernel_plan()._split[2] = own
        sim.run_steps(500)
        assert_identical(ref, sim)


def _diverge(sim, n):
    with pytest.raises(SimulationDiverged) as exc:
        sim.run_steps(n)
    return exc.value


@pytest.mark.parametrize("opt", ["sgd", "momentum"])
def test_a_divergence_is_raised_at_the_same_step_with_the_same_state(opt, monkeypatch):
    one, two = numba_pair("tanh-softplus-gle-adam", seed=1)
    for s in (one, two):
        if opt == "sgd":
            s.optimizer = SGD(1.0)
            s.lr = 1e6
        else:
            s.optimizer = __import__("gle_core").Momentum(1.0, 0.9)
            s.lr = {"W": 3e5}
    _run_both(one, two, monkeypatch, 3)
    errs = []
    for s, parts in ((one, 1), (two, 2)):
        with monkeypatch.context() as m:
            m.setattr(_kernel, "parts_for", lambda plan, n, p=parts: (p, True))
            errs.append(_diverge(s, 5000))
    assert (errs[0].t, errs[0].variable, errs[0].layer) == \
        (errs[1].t, errs[1].variable, errs[1].layer)
    assert str(errs[0]) == str(errs[1])
    assert_identical(one, two)


def test_the_bound_check_is_raised_at_the_same_step(split):
    sims = []
    for threads in (1, 2):
        net = GLENetwork([1, 3, 3, 1], ["tanh", "tanh", "linear"], 1.0, 0.5, dt=0.01,
                         gamma=0.0, seed=0, batch_size=2)
        teacher = GLENetwork([1, 3, 1], ["tanh", "linear"], 1.0, 0.5, dt=0.01, seed=1)
        sim = Simulator(net, inputs.Sine(omega=2.0), teacher, learn={"W": [1, 2]}, lr=1e10,
                        optimizer="adam", backend="numba", window=10)
        sim.kernel_plan().threads = threads
        sims.append(sim)
    with pytest.MonkeyPatch.context() as m:     # plan.threads decides, not the fixture
        m.setattr(_kernel, "parts_for", lambda plan, n: (plan.threads, True))
        errs = [_diverge(s, 2000) for s in sims]
    assert errs[0].t == errs[1].t == 2.56 and str(errs[0]) == str(errs[1])
    assert sims[0].n_steps == sims[1].n_steps == 256
    assert_identical(*sims)


def test_the_layer_split_keeps_the_output_layer_on_part_0_and_balances():
    net = GLENetwork([1] + [53] * 6 + [10], ["linear"] + ["tanh"] * 5 + ["linear"], 1.0,
                     0.5, dt=0.2, batch_size=100, seed=0)
    sim = Simulator(net, inputs.Sine(), target=inputs.Sine(), learn={"W": True},
                    backend="numba")
    plan = sim.kernel_plan()
    assert list(plan.layer_owner(1)) == [0] * 7
    own = plan.layer_owner(2)
    assert own[-1] == 0 and set(own) == {0, 1}
    cost = plan.layer_costs()
    loads = [cost[own == p].sum() for p in (0, 1)]
    assert max(loads) < 0.6 * cost.sum()
    one_layer = Simulator(GLENetwork([1, 3], ["tanh"], 1.0, 0.5), inputs.Sine(),
                          backend="numba").kernel_plan()
    assert list(one_layer.layer_owner(2)) == [0]


def test_a_forced_split_on_one_cpu_finishes_with_the_same_numbers(tmp_path):
    """Both threads on one CPU: the waiting one yields, nothing deadlocks."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    child = r"""
import os, sys, numpy as np
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
sys.path.insert(0, sys.argv[1])
from gle_core import _kernel
from test_kernel import make_pair
out = []
for threads in (1, 2):
    sim = make_pair("tanh-softplus-gle-adam", 3)[1]
    sim.kernel_plan().threads = threads
    sim.run_steps(1000)
    assert _kernel.parts_for(sim.kernel_plan(), 1000) == (threads, True)
    out.append(np.concatenate([w.ravel() for w in sim.network.W + sim.network.u]))
assert np.array_equal(out[0], out[1])
assert _kernel.default_threads() == 1
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", child, os.path.dirname(__file__)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_thread_count_defaults_and_the_per_thread_setting(monkeypatch):
    monkeypatch.delenv(_kernel.THREADS_ENV, raising=False)
    monkeypatch.setattr(_kernel, "_cpus", lambda: 2)
    assert _kernel.default_threads() == 2
    monkeypatch.setattr(_kernel, "_cpus", lambda: 1)
    assert _kernel.default_threads() == 1
    monkeypatch.setattr(_kernel, "_cpus", lambda: 8)
    assert _kernel.default_threads() == 2
    monkeypatch.setenv(_kernel.THREADS_ENV, "1")
    assert _kernel.default_threads() == 1
    monkeypatch.delenv(_kernel.THREADS_ENV)
    seen = {}
    with _kernel.kernel_threads(1):
        assert _kernel.default_threads() == 1
        with _kernel.kernel_threads(None):           # None: no change
            assert _kernel.default_threads() == 1
        t = threading.Thread(target=lambda: seen.update(other=_kernel.default_threads()))
        t.start()
        t.join()
    assert seen["other"] == 2                          # per thread
    assert _kernel.default_threads() == 2
    with pytest.raises(ValueError):
        _kernel.kernel_threads(0)


def test_who_decides_the_number_of_parts(monkeypatch):
    monkeypatch.delenv(_kernel.THREADS_ENV, raising=False)
    monkeypatch.setattr(_kernel, "_cpus", lambda: 2)
    big = Simulator(GLENetwork([1, 53, 53, 10], ["tanh", "tanh", "linear"], 1.0, 0.5,
                               batch_size=100), inputs.Sine(), target=inputs.Sine(),
                    learn={"W": True}, backend="numba").kernel_plan()
    small = Simulator(GLENetwork([1, 4, 1], ["tanh", "linear"], 1.0, 0.5), inputs.Sine(),
                      backend="numba").kernel_plan()
    assert _kernel.parts_for(big, 360) == (2, False)      # chosen by pace
    assert _kernel.parts_for(big, 1) == (1, True)         # a short call: not worth a thread
    assert _kernel.parts_for(small, 10 ** 6) == (1, True)  # a cheap step: not worth it
    with _kernel.kernel_threads(1):
        assert _kernel.parts_for(big, 360) == (1, True)
    big.threads = 2
    small.threads = 2
    assert _kernel.parts_for(big, 1) == (2, True) and _kernel.parts_for(small, 1) == (2, True)
    big.threads = 1
    assert _kernel.parts_for(big, 360) == (1, True)


def test_the_pace_runs_the_faster_and_probes_the_other():
    pace = _kernel._Pace()
    first = [pace.choose(), None]
    pace.record(first[0], 2.0)
    first[1] = pace.choose()
    pace.record(first[1], 1.0)
    assert first == [2, 1] and pace.current == 1      # both measured first
    every, most = _kernel.PROBE_EVERY, _kernel.PROBE_MAX

    def calls(n, pace_of):
        picks = []
        for _ in range(n):
            p = pace.choose()
            picks.append(p)
            pace.record(p, pace_of[p])
        return picks

    # one thread faster: two tried after 4, 8, 16, 32, 32 ... calls (each probe lost)
    picks = calls(every[1] * 3 + most * 2, {1: 1.0, 2: 2.0})
    probes = [i for i, p in enumerate(picks) if p == 2]
    gaps = np.diff([-1] + probes)
    assert list(gaps[:4]) == [every[1], 2 * every[1], 4 * every[1], 8 * every[1]]
    assert max(gaps) == most
    # a probe only a little faster does not switch
    picks = calls(most, {1: 1.0, 2: 0.97})
    assert pace.current == 1 and picks.count(2) == 1
    # two became clearly faster: the next probe switches, and the interval starts over
    picks = calls(most, {1: 1.0, 2: 0.5})
    switch = picks.index(2)
    assert picks[switch:switch + every[2]] == [2] * every[2] and pace.current == 2
    assert pace.every[1] == every[1]
    picks = calls(4 * most, {1: 1.0, 2: 0.5})        # on two: 1 tried rarely, then rarer
    gaps = np.diff([i for i, p in enumerate(picks) if p == 1])
    assert len(gaps) >= 2 and min(gaps) >= every[2] and max(gaps) == most
    # the current choice's pace is a running mean: one slow call does not switch
    pace.record(pace.choose(), 5.0)
    assert pace.current == 2 and pace.last[2] < 5.0


def test_a_waiting_part_gives_up_when_told():
    sync = np.zeros(_kernel.SYNC_SIZE, np.int64)
    sync[_kernel.SYNC_ABORT] = 1
    assert _kernel._barrier(sync, 0, 1) is False
    sync[:] = 0
    sync[8] = 1                                       # the other part already there
    assert _kernel._barrier(sync, 0, 1) is True and sync[0] == 1


def test_mnist1d_epochs_do_not_depend_on_the_threads(tmp_path, monkeypatch):
    """A short MNIST-1D run (small hidden layers so that it is quick): threads=1 and
    threads=2 (every call split, thresholds off) write the same epoch rows."""
    from gle_core.mnist1d import RunConfig, read_epochs, train
    rng = np.random.default_rng(0)
    data = {"x_train": rng.normal(size=(40, 30)), "y_train": rng.integers(0, 10, 40),
            "x_val": rng.normal(size=(20, 30)), "y_val": rng.integers(0, 10, 20)}
    monkeypatch.setattr(_kernel, "SPLIT_MIN_STEP_NS", 0.0)
    monkeypatch.setattr(_kernel, "SPLIT_MIN_CALL_NS", 0.0)
    used = []
    real = _kernel._run
    monkeypatch.setattr(_kernel, "_run", lambda *a: used.append(a[-3]) or real(*a))
    rows = {}
    for threads in (1, 2):
        cfg = RunConfig(seed=3, epochs=2, train_samples=40, val_samples=20, batch_size=10,
                        hidden=5, backend="numba", threads=threads)
        used.clear()
        train(cfg, str(tmp_path / f"t{threads}"), data=copy.deepcopy(data))
        rows[threads] = read_epochs(str(tmp_path / f"t{threads}" / "seed-3" / "epochs.csv"))
        assert set(used) == ({1} if threads == 1 else {1, 2})   # 2: the pace tries both
    for col in ("val_acc", "val_loss", "train_loss", "lr"):
        np.testing.assert_array_equal(rows[1][col], rows[2][col], err_msg=col)
    with pytest.raises(Exception, match="threads"):
        RunConfig(threads=0)
    assert RunConfig(threads=1).identity() == RunConfig(threads=None).identity()


class _FakeClient:
    def __init__(self, workers, cpus):
        self.workers, self.cpus = workers, cpus

    def scheduler_info(self):
        return {"workers": self.workers}

    def run(self, fn):
        return self.cpus


def test_dask_tasks_get_the_cpus_their_workers_leave():
    from gle_core.distributed import threads_per_task
    two_on_two = _FakeClient({"a": {"host": "h", "nthreads": 1},
                              "b": {"host": "h", "nthreads": 1}}, {"a": 2, "b": 2})
    assert threads_per_task(two_on_two) == 1
    one_on_two = _FakeClient({"a": {"host": "h", "nthreads": 1}}, {"a": 2})
    assert threads_per_task(one_on_two) == 2
    big = _FakeClient({"a": {"host": "h", "nthreads": 2}}, {"a": 16})
    assert threads_per_task(big) == 2
    mixed = _FakeClient({"a": {"host": "h", "nthreads": 1}, "b": {"host": "g", "nthreads": 4}},
                        {"a": 8, "b": 4})
    assert threads_per_task(mixed) == 1

    class Broken:
        def scheduler_info(self):
            raise OSError("gone")
    assert threads_per_task(Broken()) == 1


def test_without_a_second_thread_the_call_runs_on_one(monkeypatch):
    import types

    class NoStart(threading.Thread):
        def start(self):
            raise RuntimeError("can't start new thread")

    one, two = numba_pair("deep-mixed-no-target", seed=4)
    _run_both(one, two, monkeypatch, 50)
    monkeypatch.setattr(_kernel, "threading", types.SimpleNamespace(Thread=NoStart))
    _run_both(one, two, monkeypatch, 300)
    assert_identical(one, two)


@pytest.mark.parametrize("net_name", ["15k", "42k"])
def test_the_published_networks_split_give_the_numbers_of_one_thread(net_name):
    """The MNIST-1D networks at batch 100: their products run through BLAS (the small
    networks above use the kernel's own loops), in both threads at once."""
    from gle_core.datasets import LabelledSequences
    from gle_core.mnist1d import DT, N_CLASSES, make_network
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 360)), rng.integers(0, 10, 200)
    sims = []
    for threads in (1, 2):
        src = LabelledSequences(x, y, N_CLASSES, DT, 100, seed=0)
        sim = Simulator(make_network(net_name, "gle", 0, 100), src.inputs,
                        target=src.targets, optimizer="adam", lr=1e-3,
                        learn={"W": True, "b": True}, record=("output", "loss"),
                        record_every=1, backend="numba", window=360)
        sim.kernel_plan().threads = threads
        assert _kernel.parts_for(sim.kernel_plan(), 360) == (threads, True)
        for _ in range(2):
            sim.run_steps(360)
        sims.append(sim)
    assert sims[1].kernel_plan().layer_owner(2).any()
    assert_identical(*sims)
