"""Labelled sequences streamed to a batch of streams; the read-out and the evaluation pass.

Small synthetic sets whose answer is known by hand: sample ``i`` has values that name it
(``100 i + point``), so every number the source produces says which sample and which point
it came from.
"""
import numpy as np
import pytest

from gle_core import GLENetwork, GLEParameterError, Simulator
from gle_core.datasets import LabelledSequences, evaluate, tile_state

DT = 0.5


def _named_set(n=6, length=4):
    x = 100.0 * np.arange(n)[:, None] + np.arange(length)[None, :]
    labels = np.arange(n) % 3
    return x, labels


def test_unshuffled_streams_show_samples_one_after_another_with_their_label():
    x, labels = _named_set()
    src = LabelledSequences(x, labels, 3, DT, batch_size=2, shuffle=False)
    assert (src.steps_per_sample, src.samples_per_stream, src.steps_per_epoch) == (4, 3, 12)
    steps = np.arange(12)
    xs = src.inputs.sample(steps * DT)
    ys = src.targets.sample(steps * DT)
    assert xs.shape == (12, 2, 1) and ys.shape == (12, 2, 3)
    for k in steps:
        for b in range(2):
            sample = 2 * (k // 4) + b                 # minibatch k // 4, stream b
            assert xs[k, b, 0] == 100 * sample + k % 4
            assert np.array_equal(ys[k, b], np.eye(3)[labels[sample]])


def test_shuffled_epochs_show_every_sample_once_in_a_seeded_order():
    x, labels = _named_set(n=8)
    src = LabelledSequences(x, labels, 3, DT, batch_size=2, seed=5)
    spe = src.steps_per_epoch
    seen = []
    for epoch in range(3):
        first_points = src.inputs.sample((epoch * spe + np.arange(0, spe, 4)) * DT)[:, :, 0]
        seen.append(sorted((first_points // 100).astype(int).ravel()))
        # every point of a sample is shown in order on its stream, with its label
        block = src.inputs.sample((epoch * spe + np.arange(spe)) * DT)[:, :, 0]
        assert np.array_equal(block % 100, np.broadcast_to((np.arange(spe) % 4)[:, None],
                                                           block.shape))
        tgt = src.targets.sample((epoch * spe + np.arange(spe)) * DT).argmax(axis=2)
        assert np.array_equal(tgt, labels[(block // 100).astype(int)])
    assert all(s == list(range(8)) for s in seen)
    assert not np.array_equal(src.permutation(0), src.permutation(1))
    again = LabelledSequences(x, labels, 3, DT, batch_size=2, seed=5)
    assert np.array_equal(again.permutation(2), src.permutation(2))


def test_blocks_across_epoch_boundaries_and_start_step_continue_the_stream():
    x, labels = _named_set(n=6, length=5)
    src = LabelledSequences(x, labels, 3, DT, batch_size=3, seed=1)
    t = np.arange(37) * DT                        # crosses epochs (10 steps each) 3 times
    block = src.inputs.sample(t)
    one_by_one = np.concatenate([src.inputs.sample(ti) for ti in t])
    assert np.array_equal(block, one_by_one)
    resumed = LabelledSequences(x, labels, 3, DT, batch_size=3, seed=1, start_step=20)
    assert np.array_equal(resumed.inputs.sample(t[:17]), block[20:])
    assert np.array_equal(resumed.targets.sample(t[:17]), src.targets.sample(t)[20:])


def test_bad_sets_are_rejected_with_the_parameter_named():
    x, labels = _named_set()
    with pytest.raises(GLEParameterError, match="labels"):
        LabelledSequences(x, labels + 3, 3, DT, 2)
    with pytest.raises(GLEParameterError, match="batch_size"):
        LabelledSequences(x, labels, 3, DT, 7)
    with pytest.raises(GLEParameterError, match="x"):
        LabelledSequences(x[0], labels, 3, DT, 2)


def _readout_net(batch):
    # one linear LE layer (τm = τr): ŭ = W x exactly (spec §6.4), so the output at step k is
    # W x_{k-1} (one dt of latency): output 0 reads +x, output 1 reads -x
    return GLENetwork([1, 2], "linear", DT, DT, weights=[[[1.0], [-1.0]]], dt=DT, gamma=0.0,
                      loss="cross_entropy", batch_size=batch)


def test_readout_sums_exactly_the_samples_steps_and_takes_the_argmax():
    # constant samples: +2 (label 0) or -1 (label 1), 5 points each; 2 streams x 2 samples
    values = np.array([2.0, -1.0, -1.0, 2.0])
    x = np.repeat(values[:, None], 5, axis=1)
    labels = np.array([0, 1, 1, 0])
    src = LabelledSequences(x, labels, 2, DT, batch_size=2, shuffle=False)
    res = evaluate(_readout_net(2), src, tile=False)
    # stream 0 shows samples 0 then 2, stream 1 samples 1 then 3; the output at a sample's
    # first step still reads the previous sample's last point (0 before the first sample)
    prev_last = np.array([0.0, 0.0, 2.0, -1.0])
    expected = prev_last + 4 * values
    assert np.allclose(res["summed_output"][:, 0], expected, atol=1e-12)
    assert np.allclose(res["summed_output"][:, 1], -expected, atol=1e-12)
    assert np.array_equal(res["predictions"], [0, 1, 1, 0])
    assert res["accuracy"] == 1.0
    # loss: per-step cross-entropy of outputs (±v) against the label, averaged over steps
    per_step = np.zeros((4, 5))
    for i in range(4):
        outs = [prev_last[i]] + [values[i]] * 4
        for k, v in enumerate(outs):
            logits = np.array([v, -v])
            logp = logits - np.log(np.exp(logits).sum())
            per_step[i, k] = -logp[labels[i]]
    assert res["loss"] == pytest.approx(per_step.mean(axis=1).mean(), abs=1e-12)


def test_training_feeds_the_label_as_target_at_every_step():
    # the simulator's per-step loss on the named set equals the cross-entropy of the
    # output against the one-hot label of the sample shown on each stream at that step
    x, labels = _named_set(n=4, length=3)
    x = x / 100.0
    src = LabelledSequences(x, labels, 3, DT, batch_size=2, shuffle=False)
    net = GLENetwork([1, 3], "linear", DT, DT, dt=DT, gamma=0.0, loss="cross_entropy",
                     batch_size=2, seed=0)
    ref = net.copy()
    sim = Simulator(net, src.inputs, target=src.targets, learn={}, record=("loss",),
                    backend="numpy")
    sim.run_steps(6)
    expected = []
    for k in range(6):
        xk = src.inputs.sample(k * DT)[0]
        out = ref.step(xk, None)
        yk = labels[[2 * (k // 3), 2 * (k // 3) + 1]]
        z = out - out.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        expected.append(-np.mean(logp[[0, 1], yk]))
    assert np.allclose(sim.trace("loss"), expected, atol=1e-12)


def test_evaluation_tiles_the_training_state_and_does_not_learn():
    rng = np.random.default_rng(0)
    net = GLENetwork([1, 4, 2], ["tanh", "linear"], [0.6, 1.0], [0.5, 1.0], dt=DT, gamma=0.0,
                     loss="cross_entropy", batch_size=2, seed=3)
    for _ in range(7):                                 # a non-zero training state
        net.step(rng.standard_normal((2, 1)), np.array([0, 1]))
    params = {k: [a.copy() for a in net.parameters(k)] for k in ("W", "b", "tau_m", "tau_r")}
    state = [a.copy() for a in net.u + net.r + net.error]
    tiled = tile_state(net, 6)
    assert tiled.batch_size == 6
    for a, t in zip(net.u + net.r + net.error, tiled.u + tiled.r + tiled.error):
        assert np.array_equal(t, a[[0, 1, 0, 1, 0, 1]])
    assert not np.shares_memory(tiled.W[0], net.W[0])

    # 4 samples [a, b, a, b] on 4 streams: streams 2, 3 start from the state of 0, 1
    xs = rng.standard_normal((2, 6))
    x4 = np.concatenate([xs, xs])
    src4 = LabelledSequences(x4, np.array([0, 1, 0, 1]), 2, DT, 4, shuffle=False)
    src2 = LabelledSequences(xs, np.array([0, 1]), 2, DT, 2, shuffle=False)
    r4 = evaluate(net, src4)
    r2 = evaluate(net, src2)
    assert np.array_equal(r4["summed_output"][:2], r4["summed_output"][2:])
    assert np.allclose(r4["summed_output"][:2], r2["summed_output"], atol=1e-13)
    cold = evaluate(net, src2, tile=False)
    assert not np.allclose(cold["summed_output"], r2["summed_output"])
    # nothing learned, the training state untouched
    for k, arrs in params.items():
        for a, b in zip(arrs, net.parameters(k)):
            assert np.array_equal(a, b)
    for a, b in zip(state, net.u + net.r + net.error):
        assert np.array_equal(a, b)
