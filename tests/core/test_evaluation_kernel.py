"""The compiled evaluation pass (``evaluate(..., backend="numba")``) against the numpy
reference (``backend="numpy"``, :meth:`GLENetwork.step` step by step).

Networks are put in a non-zero training state first (a few steps with a target), so the
tiled starting state, the error states (γ ≠ 0) and every activation matter. Agreement:
the same predictions, summed outputs and per-sample losses within 1e-12 relative to their
largest magnitude, whatever the number of threads the streams are split into.
"""
import numpy as np
import pytest

from gle_core import GLENetwork, GLEParameterError
from gle_core._kernel import HAVE_NUMBA
from gle_core.datasets import LabelledSequences, evaluate

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
DT = 0.2
RTOL = 1e-12


def _trained(sizes, acts, gamma=0.0, mode="gle", batch=3, seed=0, steps=25):
    rng = np.random.default_rng(seed)
    n = len(sizes) - 1
    tau_m = [rng.uniform(0.4, 1.5, k) for k in sizes[1:]]
    tau_r = [rng.uniform(0.2, 1.5, k) for k in sizes[1:]]
    net = GLENetwork(sizes, acts, tau_m, tau_r, dt=DT, gamma=gamma, beta=1.0,
                     loss="cross_entropy", error_mode=mode, batch_size=batch, seed=seed)
    for l in range(n):
        net.W[l] *= 3.0                          # outputs that depend on the input
        net.b[l][...] = rng.uniform(-0.3, 0.3, sizes[l + 1])
    for _ in range(steps):                       # a non-zero state, errors included
        net.step(rng.standard_normal((batch, sizes[0])), rng.integers(0, sizes[-1], batch))
    return net


def _set(n, length, channels, classes, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, length, channels)), rng.integers(0, classes, n)


def _rel(a, b):
    scale = float(np.max(np.abs(b))) or 1.0
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) / scale


def _assert_agree(net, src, tile=True, threads=(1, 2, 3)):
    ref = evaluate(net, src, tile=tile, backend="numpy")
    for th in threads:
        got = evaluate(net, src, tile=tile, backend="numba", threads=th)
        assert np.array_equal(got["predictions"], ref["predictions"]), th
        assert np.array_equal(got["labels"], ref["labels"])
        assert np.array_equal(got["order"], ref["order"])
        assert _rel(got["summed_output"], ref["summed_output"]) <= RTOL, th
        assert _rel(got["losses"], ref["losses"]) <= RTOL, th
        assert got["loss"] == pytest.approx(ref["loss"], rel=RTOL, abs=0)
        assert got["accuracy"] == ref["accuracy"]
    return ref


@needs_numba
@pytest.mark.parametrize("tile", [True, False])
def test_forward_pass_gamma_zero_agrees_with_numpy_for_several_samples_per_stream(tile):
    # 12 samples on 4 streams: 3 samples one after another, the state carried over
    net = _trained([2, 6, 5, 4], ["tanh", "tanh", "linear"], batch=3)
    x, y = _set(12, 9, 2, 4)
    src = LabelledSequences(x, y, 4, DT, 4, shuffle=False)
    ref = _assert_agree(net, src, tile=tile, threads=(1, 2, 3, 4, 7))
    assert len(set(ref["predictions"])) > 1          # not a trivial read-out


@needs_numba
@pytest.mark.parametrize("mode", ["gle", "ie"])
@pytest.mark.parametrize("acts", [["sigmoid", "relu", "linear"], ["softplus", "tanh", "linear"],
                                  ["hard_sigmoid", "hard_tanh", "linear"]])
def test_full_step_with_gamma_agrees_with_numpy(mode, acts):
    # γ ≠ 0: the error states left by training still drive the soma during evaluation
    net = _trained([1, 5, 4, 3], acts, gamma=0.3, mode=mode, batch=2, seed=4)
    x, y = _set(6, 7, 1, 3, seed=2)
    _assert_agree(net, LabelledSequences(x, y, 3, DT, 3, shuffle=False))


@needs_numba
def test_blas_sized_layers_agree_with_numpy():
    # 24 x 24 x 100 streams ≥ the kernel's BLAS threshold: np.dot on both thread halves
    net = _trained([1, 24, 24, 10], ["linear", "tanh", "linear"], batch=7, seed=5)
    x, y = _set(100, 12, 1, 10, seed=3)
    _assert_agree(net, LabelledSequences(x, y, 10, DT, 100, shuffle=False), threads=(1, 2))


@needs_numba
def test_the_compiled_pass_changes_nothing_in_the_network():
    net = _trained([1, 4, 3], ["tanh", "linear"], batch=2)
    before = net.copy()
    x, y = _set(4, 5, 1, 3)
    evaluate(net, LabelledSequences(x, y, 3, DT, 4, shuffle=False), backend="numba",
             threads=2)
    for kind in ("W", "b", "tau_m", "tau_r"):
        for a, b in zip(net.parameters(kind), before.parameters(kind)):
            assert np.array_equal(a, b)
    for name, val in before.get_state().items():
        now = net.get_state()[name]
        if isinstance(val, list):
            assert all(np.array_equal(a, b) for a, b in zip(now, val)), name
        else:
            assert np.array_equal(now, val), name


def test_bad_backend_and_threads_are_named():
    net = _trained([1, 3, 2], ["tanh", "linear"], batch=2)
    x, y = _set(2, 3, 1, 2)
    src = LabelledSequences(x, y, 2, DT, 2, shuffle=False)
    with pytest.raises(GLEParameterError, match="backend"):
        evaluate(net, src, backend="cuda")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(GLEParameterError, match="threads"):
            evaluate(net, src, threads=bad)


def test_auto_falls_back_to_numpy_for_a_network_the_kernel_cannot_run():
    class Custom(GLENetwork):
        pass
    net = _trained([1, 3, 2], ["tanh", "linear"], batch=2)
    sub = Custom.__new__(Custom)
    sub.__dict__.update(net.copy().__dict__)
    x, y = _set(4, 3, 1, 2)
    src = LabelledSequences(x, y, 2, DT, 2, shuffle=False)
    ref = evaluate(net, src, backend="numpy")
    got = evaluate(sub, src)
    assert np.array_equal(got["summed_output"], ref["summed_output"])
    if HAVE_NUMBA:
        with pytest.raises(GLEParameterError, match="backend"):
            evaluate(sub, src, backend="numba")
