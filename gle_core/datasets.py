"""Labelled datasets streamed as sequences: an input source and a target source for GLE.

A labelled set of sequences ``x`` (shape ``(n_samples, length)`` or ``(n_samples, length,
n_channels)``) with integer labels is presented to a batch of ``batch_size`` parallel
streams. Every stream shows one sample after another, one point per Euler step, and the
sample's label (one-hot) is the target at every one of its steps; nothing is reset between
samples (the network's state carries over, as in the paper's online learning of MNIST-1D,
Fig. 6). One *epoch* shows every sample once: the samples are dealt out in minibatches of
``batch_size`` (a fresh permutation per epoch when ``shuffle``), minibatch ``j`` being shown
during steps ``[j L, (j + 1) L)`` of the epoch (``L`` = steps per sample), sample
``perm[j B + b]`` on stream ``b``.

What is shown at absolute step ``k`` is a pure function of ``k`` (and the seed), so the
source can be sampled in vectorised blocks (``sample(t)`` for an array of times, as
:class:`gle_core.simulator.Simulator` and its compiled kernel do) and a run restarted from a
checkpoint sees exactly the stream an uninterrupted run sees (set :attr:`start_step`).

:func:`evaluate` runs a held-out set once through a copy of a trained network whose state is
the training state tiled to the evaluation batch, learning off, and reads out the class of
every sample as the argmax of the output summed over the sample's steps. With numba it runs
compiled (:func:`gle_core._kernel.run_evaluation`), the streams split between threads; the
numpy loop over :meth:`GLENetwork.step` is the reference.
"""
from __future__ import annotations

import numbers
import os
import threading

import numpy as np

from .errors import GLEParameterError
from .inputs import Stimulus
from .network import GLENetwork

__all__ = ["LabelledSequences", "tile_state", "evaluate", "cross_entropy_per_stream"]


class _View(Stimulus):
    """The input (``kind="input"``) or the one-hot target (``kind="target"``) of a source."""

    def __init__(self, source, kind):
        self.source = source
        self.kind = kind
        self.n_channels = source.n_channels if kind == "input" else source.n_classes
        self.batch_size = source.batch_size

    def reset(self, batch_size=1, seed=None):
        if int(batch_size) != self.source.batch_size:
            raise GLEParameterError("batch_size", batch_size,
                                    f"{self.source.batch_size} (the source's number of streams)")
        self.batch_size = int(batch_size)

    def sample(self, t):
        return self.source.sample(t, self.kind)


class LabelledSequences:
    """A labelled set of sequences streamed point by point to ``batch_size`` streams.

    Parameters
    ----------
    x : array
        Samples, shape ``(n_samples, length)`` or ``(n_samples, length, n_channels)``; one
        point per Euler step.
    labels : array of int
        Class of every sample, in ``[0, n_classes)``.
    n_classes : int
        Number of classes (size of the one-hot target).
    dt : float
        The simulator's Euler step (a.u.): time ``t`` is step ``round(t / dt)``.
    batch_size : int
        Number of parallel streams. An epoch uses ``n_samples // batch_size`` samples per
        stream; the remainder of a shuffled set is left out of that epoch.
    seed : int
        Seed of the per-epoch permutations (epoch ``e`` uses ``default_rng([seed, e])``).
    shuffle : bool
        Permute the samples each epoch (training); ``False`` shows them in order
        (evaluation: stream ``b`` shows sample ``b``, then ``b + batch_size``, ...).
    start_step : int
        Absolute step of the simulator's t = 0 (a resumed run starts at a later step).

    Attributes
    ----------
    inputs, targets : Stimulus
        The input r_0(t) (shape ``(len(t), batch, n_channels)``) and the one-hot target
        (``(len(t), batch, n_classes)``), to pass as ``stimulus`` and ``target`` of a
        Simulator.
    """

    def __init__(self, x, labels, n_classes, dt, batch_size, *, seed=0, shuffle=True,
                 start_step=0):
        x = np.asarray(x, dtype=float)
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0:
            raise GLEParameterError("x", f"shape {np.shape(x)}",
                                    "(n_samples, length) or (n_samples, length, n_channels)")
        if not np.all(np.isfinite(x)):
            raise GLEParameterError("x", "non-finite values", "finite numbers")
        labels = np.asarray(labels)
        if labels.shape != (x.shape[0],) or labels.dtype.kind not in "iu":
            raise GLEParameterError("labels", f"shape {labels.shape}, dtype {labels.dtype}",
                                    f"integers of shape ({x.shape[0]},)")
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) \
                or n_classes < 1:
            raise GLEParameterError("n_classes", n_classes, "an integer ≥ 1")
        if labels.min() < 0 or labels.max() >= n_classes:
            raise GLEParameterError("labels", f"[{labels.min()}, {labels.max()}]",
                                    f"[0, {n_classes - 1}]")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or not 1 <= batch_size <= x.shape[0]:
            raise GLEParameterError("batch_size", batch_size,
                                    f"an integer in [1, {x.shape[0]}] (the number of samples)")
        if not (isinstance(dt, numbers.Real) and np.isfinite(dt) and dt > 0):
            raise GLEParameterError("dt", dt, "a finite number > 0")
        self.x = x
        self.labels = labels.astype(np.int64)
        self.n_classes = int(n_classes)
        self.n_channels = x.shape[2]
        self.dt = float(dt)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.start_step = int(start_step)
        self._onehot = np.eye(self.n_classes)
        self._perms = {}
        self.inputs = _View(self, "input")
        self.targets = _View(self, "target")

    # ------------------------------------------------------------------ geometry
    @property
    def n_samples(self):
        return self.x.shape[0]

    @property
    def steps_per_sample(self):
        """L: Euler steps per sample (one per point)."""
        return self.x.shape[1]

    @property
    def samples_per_stream(self):
        """Samples each stream shows per epoch."""
        return self.n_samples // self.batch_size

    @property
    def steps_per_epoch(self):
        return self.steps_per_sample * self.samples_per_stream

    def permutation(self, epoch):
        """Order of the samples in ``epoch`` (0-based)."""
        perm = self._perms.get(epoch)
        if perm is None:
            if self.shuffle:
                perm = np.random.default_rng([self.seed, int(epoch)]).permutation(
                    self.n_samples)
            else:
                perm = np.arange(self.n_samples)
            if len(self._perms) > 4:          # a block touches at most two epochs
                self._perms.clear()
            self._perms[epoch] = perm
        return perm

    def sample_index(self, steps):
        """Sample shown on every stream at absolute steps ``steps``: shape (len, batch),
        and the point of that sample shown (shape (len,))."""
        steps = np.asarray(steps, dtype=np.int64)
        L, spe, B = self.steps_per_sample, self.steps_per_epoch, self.batch_size
        epoch, within = np.divmod(steps, spe)
        j, point = np.divmod(within, L)
        idx = np.empty((len(steps), B), dtype=np.int64)
        cols = np.arange(B)
        for e in np.unique(epoch):
            sel = epoch == e
            idx[sel] = self.permutation(int(e))[j[sel, None] * B + cols[None, :]]
        return idx, point

    def sample(self, t, kind="input"):
        """Input or one-hot target at times ``t`` (a.u.): shape (len(t), batch, channels)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        steps = np.rint(t / self.dt).astype(np.int64) + self.start_step
        if np.any(steps < 0):
            raise GLEParameterError("t", float(t.min()), "times ≥ 0")
        idx, point = self.sample_index(steps)
        if kind == "input":
            return self.x[idx, point[:, None]]
        return self._onehot[self.labels[idx]]


def tile_state(network, batch_size):
    """A copy of ``network`` with ``batch_size`` streams whose state is the network's state
    tiled (stream ``i`` of the copy starts from stream ``i mod B`` of the original).

    Parameters are copied, not shared. Every state the engine keeps
    (:meth:`GLENetwork.get_state`) is carried over.
    """
    if not isinstance(network, GLENetwork):
        raise GLEParameterError("network", type(network).__name__, "a GLENetwork")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise GLEParameterError("batch_size", batch_size, "an integer ≥ 1")
    return _take_rows(network, np.arange(int(batch_size)) % network.batch_size)


def _take_rows(network, rows):
    """A copy of ``network`` whose stream ``i`` starts from stream ``rows[i]``."""
    tiled = {}
    for name, val in network.get_state().items():
        if isinstance(val, list):
            tiled[name] = [a[rows] for a in val]
        elif isinstance(val, np.ndarray) and val.ndim >= 1:
            tiled[name] = val[rows]
        else:
            tiled[name] = val
    new = network.copy()
    new.set_state(tiled)
    return new


def cross_entropy_per_stream(output, onehot):
    """-Σ y log softmax(r) for every stream: shape (batch,)."""
    z = output - output.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.sum(onehot * logp, axis=-1)


def evaluate(network, source, *, tile=True, backend="auto", threads=None):
    """Run a held-out set once through ``network`` with learning off (paper Fig. 6 read-out).

    Parameters
    ----------
    network : GLENetwork
        The trained network; it is not changed. Its state, tiled to ``source.batch_size``
        streams (:func:`tile_state`), is the evaluation's starting state (``tile=False``:
        start from zero state).
    source : LabelledSequences
        The held-out set, unshuffled; ``samples_per_stream`` samples are shown on every
        stream one after another (1 for the paper's validation: 1000 samples at batch 1000).
    backend : {"auto", "numpy", "numba"}
        ``"numpy"`` steps :meth:`GLENetwork.step` (the reference); ``"numba"`` runs the
        compiled evaluation pass (:func:`gle_core._kernel.run_evaluation`: the same
        numbers up to rounding, ≤ 1e-12 relative); ``"auto"`` uses it when numba is
        installed and the network is supported.
    threads : int, optional
        Compiled pass only: the streams are split into this many contiguous parts run in
        parallel threads (streams are independent, so the result does not depend on the
        split beyond rounding). Default: the number of CPUs this process may run on.

    Returns
    -------
    dict
        ``accuracy`` (fraction), ``loss`` (mean over samples of the per-step cross-entropy
        averaged over the sample's steps), ``losses`` (that average per sample),
        ``predictions`` and ``labels`` (per sample, in the source's order),
        ``summed_output`` (per sample, the output summed over its steps; its argmax is the
        prediction), ``order`` (the samples' indices in the source).

    Notes
    -----
    The network is stepped without a target, so no output error is injected (β C = 0) and
    nothing learns; with γ = 0 the outputs are those of the training dynamics exactly. The
    output at a step is the output layer's rate read at the start of that step (the value
    :meth:`GLENetwork.step` returns), as in training.
    """
    if not isinstance(source, LabelledSequences):
        raise GLEParameterError("source", type(source).__name__, "a LabelledSequences")
    if threads is not None and (isinstance(threads, bool) or
                                not isinstance(threads, numbers.Integral) or threads < 1):
        raise GLEParameterError("threads", threads, "an integer ≥ 1 or None")
    if network.layer_sizes[-1] != source.n_classes:
        raise GLEParameterError("source.n_classes", source.n_classes,
                                f"{network.layer_sizes[-1]} (the network's output size)")
    if tile:
        net = tile_state(network, source.batch_size)
    else:
        net = network.copy()
        net.reset_state(source.batch_size)
    B, L = source.batch_size, source.steps_per_sample
    n = source.samples_per_stream
    order = source.permutation(0)[:n * B]
    labels = source.labels[order]
    onehot = source._onehot[labels]
    if _use_kernel(network, backend):
        summed, losses = _evaluate_kernel(net, source, onehot, threads)
        pred = np.argmax(summed, axis=1)
        return {"accuracy": float(np.mean(pred == labels)), "loss": float(np.mean(losses)),
                "predictions": pred, "labels": labels, "summed_output": summed,
                "losses": losses, "order": order}
    summed = np.zeros((n * B, source.n_classes))
    losses = np.zeros(n * B)
    dt = network.dt
    for j in range(n):
        steps = np.arange(j * L, (j + 1) * L)
        x = source.sample(steps * dt)
        rows = slice(j * B, (j + 1) * B)
        acc = np.zeros((B, source.n_classes))
        loss = np.zeros(B)
        for k in range(L):
            out = net.step(x[k], None)
            acc += out
            loss += cross_entropy_per_stream(out, onehot[rows])
        summed[rows] = acc
        losses[rows] = loss / L
    pred = np.argmax(summed, axis=1)
    return {"accuracy": float(np.mean(pred == labels)), "loss": float(np.mean(losses)),
            "predictions": pred, "labels": labels, "summed_output": summed, "losses": losses,
            "order": order}


def _use_kernel(net, backend):
    """Whether :func:`evaluate` runs the compiled pass (``backend="numba"``: or says why
    not)."""
    if backend not in ("auto", "numpy", "numba"):
        raise GLEParameterError("backend", backend, "one of auto, numpy, numba")
    if backend == "numpy":
        return False
    from . import _kernel
    from .plan import network_support
    why = "numba is not installed" if not _kernel.HAVE_NUMBA else \
        network_support(net, "network")
    if why is None:
        return True
    if backend == "numba":
        raise GLEParameterError("backend", "numba", "'auto' or 'numpy'", why)
    return False


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):          # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: the compiled evaluation steps at most this many streams at a time per thread
EVAL_BLOCK = 125


def _evaluate_kernel(net, source, onehot, threads):
    """The compiled evaluation pass of :func:`evaluate` on ``net`` (already tiled or reset
    to ``source.batch_size`` streams): per sample the summed output and the mean loss."""
    from . import _kernel
    from .plan import PackedNetwork, kernel_layout
    if threads is None:
        threads = _cpus()
    B, L, n = source.batch_size, source.steps_per_sample, source.samples_per_stream
    nin, nc = net.layer_sizes[0], source.n_classes
    threads = min(threads, B)
    # every thread steps its blocks of streams one after another: a block's state stays in
    # the core's cache (MNIST-1D 15k, 1000 streams on one thread: 0.88 s at once, 0.49 s
    # in blocks of 100-250; 15k at batch 1000 on two threads: median 0.63 -> 0.53 s)
    n_blocks = threads * max(1, -(-B // (EVAL_BLOCK * threads)))
    n_blocks = min(n_blocks, B)
    edges = [B * p // n_blocks for p in range(n_blocks + 1)]
    parts = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
    packs = [PackedNetwork(_take_rows(net, np.arange(p.start, p.stop))) for p in parts]
    owner = [p * threads // n_blocks for p in range(n_blocks)]
    summed = np.zeros((n * B, nc))
    losses = np.zeros(n * B)
    dt = net.dt

    def run_blocks(blocks):
        for job in blocks:
            _kernel.run_evaluation(*job)

    for j in range(n):
        x = source.sample(np.arange(j * L, (j + 1) * L) * dt)
        jobs = [[] for _ in range(threads)]
        for pk, p, t in zip(packs, parts, owner):
            b = p.stop - p.start
            X = kernel_layout(x[:, p], "input", nin, b)
            Yo = kernel_layout(onehot[j * B + p.start:j * B + p.stop][None], "target", nc,
                               b)[0]
            jobs[t].append((pk, X, Yo, summed[j * B + p.start:j * B + p.stop],
                            losses[j * B + p.start:j * B + p.stop]))
        _run_parallel(run_blocks, [(blocks,) for blocks in jobs])
        losses[j * B:(j + 1) * B] /= L
    return summed, losses


def _run_parallel(fn, jobs):
    """``fn(*job)`` for every job, the first in this thread and the others in threads (fn
    releases the GIL); re-raises the first exception."""
    errors = []

    def call(job):
        try:
            fn(*job)
        except BaseException as exc:          # pragma: no cover - re-raised below
            errors.append(exc)

    workers = [threading.Thread(target=call, args=(job,), daemon=True) for job in jobs[1:]]
    for w in workers:
        w.start()
    call(jobs[0])
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
