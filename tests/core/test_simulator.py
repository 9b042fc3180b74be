"""Simulator contract: bounded probes, reset, determinism, divergence, bad input."""
import numpy as np
import pytest

from gle_core import GLENetwork, GLEParameterError, SimulationDiverged, Simulator, inputs
from gle_core.config import build_simulator
from gle_core.protocols import LAGNET
from gle_core.probes import RingBuffer


def small_sim(**kw):
    net = GLENetwork([1, 2, 1], ["tanh", "linear"], tau_m=1.0, tau_r=[[0.2, 1.0], 0.5],
                     dt=0.01, seed=1, batch_size=2)
    teacher = GLENetwork([1, 2, 1], ["tanh", "linear"], tau_m=1.0, tau_r=0.3, dt=0.01, seed=2)
    return Simulator(net, inputs.Sine(omega=1.3), teacher,
                     learn={"W": True, "tau_m": True}, lr=1e-3, **kw)


def test_ring_buffer_keeps_the_last_samples_in_order():
    rb = RingBuffer(5, (2,))
    for i in range(12):
        rb.append([i, -i])
    np.testing.assert_array_equal(rb.last()[:, 0], [7, 8, 9, 10, 11])
    np.testing.assert_array_equal(rb.since(10)[:, 0], [10, 11])
    rb.extend(np.array([[20, 0], [21, 0], [22, 0]]))
    np.testing.assert_array_equal(rb.last()[:, 0], [10, 11, 20, 21, 22])
    rb.extend(np.arange(16).reshape(8, 2))
    np.testing.assert_array_equal(rb.last()[:, 0], [6, 8, 10, 12, 14])
    assert rb.total == 23


def test_ring_buffer_last_n_matches_a_plain_list_whatever_the_wrap():
    """last(n) against the list of everything appended: every capacity, wrap point and n
    (contiguous slices and wrapped pairs), always a copy."""
    rng = np.random.default_rng(0)
    for cap in (1, 2, 5, 7):
        for shape in ((), (3,)):
            rb, ref = RingBuffer(cap, shape), []
            for _ in range(40):
                vals = rng.standard_normal((int(rng.integers(0, 4)),) + shape)
                rb.extend(vals)
                ref.extend(vals)
                kept = min(len(ref), cap)
                for n in (None, 0, 1, cap, cap + 3, int(rng.integers(0, cap + 1))):
                    want = kept if n is None else min(n, kept)
                    expected = np.array(ref[len(ref) - want:]).reshape((want,) + shape)
                    got = rb.last(n)
                    np.testing.assert_array_equal(got, expected)
                    got[...] = 99.0                      # a copy: the buffer is untouched
                np.testing.assert_array_equal(
                    rb.last(), np.array(ref[len(ref) - kept:]).reshape((kept,) + shape))


def test_ring_buffer_samples_by_number_match_a_plain_list_whatever_the_wrap():
    """samples(start, stop, step): the samples numbered start, start+step, … < stop, as a
    list of everything appended numbers them; refused with the kept range when not kept."""
    rng = np.random.default_rng(1)
    for cap in (1, 3, 8):
        rb, ref = RingBuffer(cap, (2,)), []
        for _ in range(30):
            vals = rng.standard_normal((int(rng.integers(0, 5)), 2))
            rb.extend(vals)
            ref.extend(vals)
            oldest = len(ref) - min(len(ref), cap)
            for start in range(oldest, len(ref) + 1):
                for step in (1, 2, 3):
                    got = rb.samples(start, len(ref), step)
                    want = np.array(ref[start:len(ref):step]).reshape(-1, 2)
                    np.testing.assert_array_equal(got, want)
                    got[...] = 99.0                      # a copy: the buffer is untouched
            np.testing.assert_array_equal(rb.last(), np.array(ref[oldest:]).reshape(-1, 2))
            if oldest > 0:
                with pytest.raises(ValueError, match="not all kept"):
                    rb.samples(oldest - 1, len(ref))
            with pytest.raises(ValueError, match="not all kept"):
                rb.samples(oldest, len(ref) + 1)
    with pytest.raises(ValueError, match="step must be ≥ 1, not 0"):
        rb.samples(rb.total - 1, rb.total, 0)


def test_memory_is_bounded_whatever_the_run_length():
    sim = small_sim(window=300)
    before = sim.memory_bytes
    sim.run_steps(2000)
    assert sim.memory_bytes == before
    assert len(sim.trace("r")) == 300
    np.testing.assert_allclose(sim.trace("t")[-1], 1999 * 0.01)


def test_reset_reproduces_the_run_exactly_and_restores_parameters():
    sim = small_sim(window=500)
    w0 = [w.copy() for w in sim.network.W]
    sim.run_steps(400)
    first = sim.trace("r").copy()
    assert not np.allclose(sim.network.W[0], w0[0])      # it learned
    sim.reset()
    assert sim.t == 0 and len(sim.trace("r")) == 0
    np.testing.assert_array_equal(sim.network.W[0], w0[0])
    sim.run_steps(400)
    np.testing.assert_array_equal(sim.trace("r"), first)


def test_run_in_pieces_equals_run_at_once():
    a, b = small_sim(window=1000), small_sim(window=1000)
    a.run_steps(700)
    for n in (1, 99, 300, 300):
        b.run_steps(n)
    np.testing.assert_array_equal(a.trace("error"), b.trace("error"))
    np.testing.assert_array_equal(a.network.W[1], b.network.W[1])


def test_seeded_stimulus_shifts_are_reproducible():
    cfg_sim = lambda seed: build_simulator(  # noqa: E731
        {"network": {"layer_sizes": [1, 1], "activations": "linear"}, "batch_size": 4,
         "stimulus": {"type": "smoothed_square", "max_shift": 2.0}}, seed=seed)
    s1, s2, s3 = cfg_sim(5), cfg_sim(5), cfg_sim(6)
    np.testing.assert_array_equal(s1.stimulus.shifts, s2.stimulus.shifts)
    assert not np.allclose(s1.stimulus.shifts, s3.stimulus.shifts)
    assert np.all((s1.stimulus.shifts >= 0) & (s1.stimulus.shifts <= 2))


def test_smoothed_square_wave_is_the_gaussian_smoothed_square():
    sq = inputs.SmoothedSquare(period=4.0, duty=0.5, sigma=0.05)
    sq.reset(1)
    t = np.array([1.0, 3.0, 0.0, 2.0, 0.05, 4.0 + 1.0])
    v = sq.sample(t)[:, 0, 0]
    np.testing.assert_allclose(v[[0, 1, 5]], [1.0, -1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(v[[2, 3]], [0.0, 0.0], atol=1e-12)   # edges: half-way
    np.testing.assert_allclose(v[4], 2 * 0.8413447460685429 - 1, atol=1e-9)  # Φ(1)


def test_lr_explosion_raises_a_named_divergence_and_keeps_finite_state():
    sim = small_sim(window=100)
    sim.lr = 1e6
    sim.optimizer = __import__("gle_core").SGD(1.0)
    with pytest.raises(SimulationDiverged) as exc:
        sim.run_steps(5000)
    e = exc.value
    assert e.variable in ("u", "u_dot", "prospective_voltage", "r", "error", "W", "b",
                          "tau_m", "error_state", "inst_error", "r_prime")
    assert 1 <= e.layer <= 2 and 0 < e.t < 50
    assert "diverged" in str(e) and f"layer {e.layer}" in str(e)
    for arr in sim.network.u + sim.network.r:
        assert np.all(np.isfinite(arr))
    assert sim.diverged is e
    sim.reset()
    assert sim.diverged is None


def test_bad_inputs_name_the_parameter():
    with pytest.raises(GLEParameterError, match="dt"):
        GLENetwork([1, 1], "tanh", 1.0, 1.0, dt=0.0)
    with pytest.raises(GLEParameterError, match=r"weights\[layer 2\].*shape \(1, 3\)"):
        GLENetwork([2, 3, 1], "tanh", 1.0, 1.0, weights=[np.ones((3, 2)), np.ones((3, 1))])
    with pytest.raises(GLEParameterError, match="activation.*'swish'"):
        GLENetwork([1, 1], "swish", 1.0, 1.0)
    with pytest.raises(GLEParameterError, match="error_mode"):
        GLENetwork([1, 1], "tanh", 1.0, 1.0, error_mode="bp")
    with pytest.raises(GLEParameterError, match="input.*shape"):
        GLENetwork([2, 1], "tanh", 1.0, 1.0, batch_size=3).step(np.ones((2, 2)))
    with pytest.raises(GLEParameterError, match=r"weights\[layer 1\].*non-finite"):
        GLENetwork([1, 1], "tanh", 1.0, 1.0, weights=[[[np.nan]]])
    with pytest.raises(GLEParameterError, match="lr.*-1"):
        small_sim(window=10).lr = -1
    with pytest.raises(GLEParameterError, match="omega"):
        inputs.Sine(omega=float("inf"))
    with pytest.raises(GLEParameterError, match="learn"):
        small_sim(window=10).learn = {"W": [5]}
    net = GLENetwork([1, 1], "tanh", 1.0, 1.0)
    with pytest.raises(GLEParameterError, match="non-finite value at t = 0.03"):
        Simulator(net, lambda t: np.where(t > 0.025, np.nan, 1.0)).run_steps(10)
    with pytest.raises(GLEParameterError, match="tau_m"):
        build_simulator({**LAGNET, "network": {**LAGNET["network"], "tau_m": -1.0}})


def test_learning_only_touches_the_selected_parameters():
    sim = small_sim(window=10)
    sim.learn = {"W": [1]}
    w0, w1, tm = sim.network.W[0].copy(), sim.network.W[1].copy(), sim.network.tau_m[0].copy()
    sim.run_steps(300)
    np.testing.assert_array_equal(sim.network.W[0], w0)
    np.testing.assert_array_equal(sim.network.tau_m[0], tm)
    assert not np.allclose(sim.network.W[1], w1)


def test_tau_floor_is_applied_after_every_update():
    net = GLENetwork([1, 1], "linear", tau_m=0.15, tau_r=0.1, dt=0.01, tau_floor=0.1,
                     weights=[[[1.0]]])
    teacher = GLENetwork([1, 1], "linear", tau_m=0.15, tau_r=0.1, dt=0.01, weights=[[[1.0]]])
    # a target that needs a *shorter* membrane time constant pushes τm down to the floor
    teacher.tau_m[0][:] = 0.01
    sim = Simulator(net, inputs.Sine(omega=3.0), teacher, learn={"tau_m": True}, lr=1e-2,
                    optimizer="sgd", record=("tau_m",), window=4000)
    sim.run_steps(4000)
    assert sim.trace("tau_m").min() >= 0.1
    assert net.tau_m[0][0] == pytest.approx(0.1)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_set_stimulus_swaps_the_input_without_reset(backend):
    sim = small_sim(window=400, backend=backend)
    sim.run_steps(150)
    w = sim.network.W[0].copy()
    sim.set_stimulus(inputs.Constant(0.25))
    sim.run_steps(50)
    x = sim.trace("input")[:, 0]
    np.testing.assert_allclose(x[-50:], 0.25)
    np.testing.assert_allclose(x[:150], np.sin(1.3 * 0.01 * np.arange(150)), atol=1e-12)
    assert sim.t == pytest.approx(2.0) and not np.allclose(sim.network.W[0], w)
    with pytest.raises(GLEParameterError, match="stimulus channels"):
        sim.set_stimulus(inputs.Constant([1.0, 2.0]))


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_teacher_rates_are_recorded_as_the_teacher_run_alone_records_its_rates(backend):
    """``teacher_r``: the teacher's rates of every layer after its step, of the recorded
    stream, while the student learns from it: the rows ``r`` of the same teacher simulated
    on its own. Without a teacher the signal has no columns."""
    sim = small_sim(window=300, backend=backend, record=("t", "r", "teacher_r"),
                    record_stream=1)
    alone = Simulator(sim.teacher.copy(), inputs.Sine(omega=1.3), record=("r",), window=300,
                      record_stream=1, backend=backend)
    assert alone.network.batch_size == sim.network.batch_size == 2
    sim.run_steps(250)
    alone.run_steps(250)
    got, want = sim.trace("teacher_r"), alone.trace("r")
    assert got.shape == want.shape == (250, 3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    assert np.ptp(got[:, 2]) > 5e-3                       # the output rate moves
    assert not np.allclose(got, sim.trace("r"))          # not the student's rates
    # the teacher's output now is the last row's last column
    assert got[-1, 2] == sim.teacher.r[-1][1, 0]
    plain = Simulator(sim.network.copy(), inputs.Sine(omega=1.3), record=("teacher_r",),
                      backend=backend)
    plain.run_steps(3)
    assert plain.trace("teacher_r").shape == (3, 0)


@pytest.mark.parametrize("rule", ["gle", "am"])
@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_copy_runs_on_exactly_like_the_original_and_apart_from_it(backend, rule):
    sim = small_sim(window=600, backend=backend)
    if rule == "am":
        sim.set_rule("am", window=0.37)           # 37 steps: the copy is taken mid-window
    sim.run_steps(250)
    twin = sim.copy()
    assert twin.t == sim.t and twin is not sim and twin.network is not sim.network
    sim.run_steps(300)
    twin.run_steps(300)
    for name in sim.probes:
        np.testing.assert_array_equal(twin.trace(name), sim.trace(name), err_msg=name)
    for kind in ("W", "tau_m"):
        for a, b in zip(twin.network.parameters(kind), sim.network.parameters(kind)):
            np.testing.assert_array_equal(a, b)
    # apart: changing or resetting the copy leaves the original as it was
    w = sim.network.W[0].copy()
    r = sim.trace("r").copy()
    twin.network.set_parameter("W", 0, 5.0, index=(0, 0))
    twin.run_steps(50)
    twin.reset()
    np.testing.assert_array_equal(sim.network.W[0], w)
    np.testing.assert_array_equal(sim.trace("r"), r)
    assert sim.t == 550 * 0.01 and twin.t == 0
    sim.run_steps(10)                             # the original still runs on its own plan
    assert sim.t == 560 * 0.01 and np.isfinite(sim.trace("r")).all()


def test_engine_errors_survive_pickling_and_copying_with_their_fields():
    # a Dask worker's error reaches the client pickled; a diverged simulation is copied
    import copy
    import pickle
    for err in (SimulationDiverged("u", 2, 3.5, 1e16, "explicit Euler"),
                GLEParameterError("tau_m[layer 1]", -1.0, "[0.001, inf) a.u.", "τm > 0")):
        for twin in (pickle.loads(pickle.dumps(err)), copy.deepcopy(err)):
            assert type(twin) is type(err) and str(twin) == str(err)
            assert vars(twin) == vars(err)
    sim = small_sim(window=100)
    sim.network.W[0][...] = 1e200                  # overflows at the first step
    with pytest.raises(SimulationDiverged):
        sim.run_steps(5)
    twin = sim.copy()                              # a diverged simulation copies too
    assert isinstance(sim.diverged, SimulationDiverged)
    assert vars(twin.diverged) == vars(sim.diverged) and twin.t == sim.t
