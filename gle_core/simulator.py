"""The simulator: a GLE network, its input, an optional teacher, learning and probes.

In the spirit of nengo: ``sim.step()``, ``sim.run_steps(n)``, ``sim.run(T)``,
``sim.reset(seed)``; recorded signals live in fixed-size :class:`~gle_core.probes.RingBuffer`
probes, so memory is bounded whatever the run length. Parameters of ``sim.network`` (and
the learning settings here) may be changed between steps.
"""
from __future__ import annotations

import numbers

import numpy as np

from .errors import GLEParameterError, SimulationDiverged
from .inputs import as_stimulus
from .network import PARAMETER_KINDS, STATE_NAMES, GLENetwork
from .optimizers import make_optimizer
from .probes import RingBuffer

__all__ = ["Simulator", "RECORDABLE"]

#: everything a simulator can record (per-layer states are concatenated over layers)
RECORDABLE = ("t", "input", "output", "target", "loss") + STATE_NAMES + PARAMETER_KINDS
DEFAULT_RECORD = ("t", "input", "output", "target", "loss", "prospective_voltage", "r",
                  "inst_error", "error", "W", "b", "tau_m", "tau_r")
#: states larger than this are treated as a divergence even while still finite
DIVERGENCE_LIMIT = 1e12
#: values of Simulator.backend
BACKENDS = ("auto", "numpy", "numba")


def check_inputs(network, stimulus, teacher, target):
    """Validate a student, its stimulus and its teacher or target (shared by the trainers).

    Returns ``(stimulus, target)`` as :class:`~gle_core.inputs.Stimulus` objects.
    """
    if not isinstance(network, GLENetwork):
        raise GLEParameterError("network", type(network).__name__, "a GLENetwork")
    stimulus = as_stimulus(stimulus, network.dt)
    if stimulus.n_channels != network.layer_sizes[0]:
        raise GLEParameterError("stimulus channels", stimulus.n_channels,
                                f"{network.layer_sizes[0]} (the network's input size)")
    if teacher is not None:
        if not isinstance(teacher, GLENetwork):
            raise GLEParameterError("teacher", type(teacher).__name__, "a GLENetwork")
        if teacher.layer_sizes[0] != network.layer_sizes[0] or \
                teacher.layer_sizes[-1] != network.layer_sizes[-1]:
            raise GLEParameterError("teacher.layer_sizes", teacher.layer_sizes,
                                    "the student's input and output sizes")
        if teacher.dt != network.dt:
            raise GLEParameterError("teacher.dt", teacher.dt, f"the student's dt = "
                                    f"{network.dt}")
        if target is not None:
            raise GLEParameterError("target", "given with a teacher", "either one, not both")
    return stimulus, (None if target is None else as_stimulus(target, network.dt))


def parse_learning_rates(value):
    """``{kind: rate}`` from one rate or a per-kind dict (missing kinds: 0), validated."""
    if isinstance(value, dict):
        bad = [k for k in value if k not in PARAMETER_KINDS]
        if bad:
            raise GLEParameterError("lr", bad, "keys from " + ", ".join(PARAMETER_KINDS))
        lrs = {k: value.get(k, 0.0) for k in PARAMETER_KINDS}
    else:
        lrs = {k: value for k in PARAMETER_KINDS}
    for k, v in lrs.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) \
                or v < 0:
            raise GLEParameterError(f"lr[{k}]", v, "a finite number ≥ 0")
    return {k: float(v) for k, v in lrs.items()}


def parse_learn(value, n_layers):
    """The active ``(kind, layer)`` pairs of a ``learn`` dict (kind -> True/False/layers)."""
    active = []
    for kind, which in dict(value).items():
        if kind not in PARAMETER_KINDS:
            raise GLEParameterError("learn", kind, "keys from " + ", ".join(PARAMETER_KINDS))
        if which is True:
            layers = range(n_layers)
        elif which is False or which is None:
            layers = []
        else:
            layers = list(which)
            if not all(isinstance(i, numbers.Integral) and 0 <= i < n_layers for i in layers):
                raise GLEParameterError(f"learn[{kind}]", which,
                                        f"True, False or layer indices in [0, {n_layers - 1}]")
        active += [(kind, int(i)) for i in layers]
    return active


def restart(sim, seed=None):
    """What every trainer's ``reset`` shares: back to t = 0 with the initial parameters.

    Restores ``sim._initial_params`` into ``sim.network``, zeroes the student's and the
    teacher's state, redraws the stimulus' (and target's) random parts from the seed,
    clears the optimizer, the step count, the sampled input block and the loss accumulator.
    """
    if seed is not None:
        sim.seed = seed
    net = sim.network
    for k, arrs in sim._initial_params.items():
        for cur, init in zip(net.parameters(k), arrs):
            cur[...] = init
    net.reset_state()
    if sim.teacher is not None:
        sim.teacher.reset_state(net.batch_size)
    sim.stimulus.reset(net.batch_size, sim.seed)
    if sim.target is not None:
        sim.target.reset(net.batch_size, sim.seed)
    sim.optimizer.reset()
    sim.n_steps = 0
    sim._block_start, sim._block_x, sim._block_y = 0, None, None
    sim._loss_acc, sim._loss_n = 0.0, 0
    sim.last_loss = np.nan


class Simulator:
    """Run a :class:`GLENetwork` on a stimulus, optionally learning from a teacher.

    Parameters
    ----------
    network : GLENetwork
        The (student) network. Its ``batch_size`` sets the number of input streams.
    stimulus : Stimulus, number, array or callable
        The input r_0(t); see :mod:`gle_core.inputs`.
    teacher : GLENetwork, optional
        A network run on the same input whose output (at the same step) is the target.
    target : Stimulus or callable, optional
        Alternatively, the target y(t) directly (shape (batch, n_out) per step, or labels).
    optimizer : {"sgd", "momentum", "adam"}
    lr : float or dict
        Learning rate, or one per parameter kind (``{"W": 1e-3, "tau_m": 1e-4}``); kinds
        missing from such a dict have rate 0 (they do not learn).
    learn : dict, optional
        Which parameters learn: kind -> ``True`` (all layers), ``False``, or a list of
        0-based layer indices. Kinds: ``"W"``, ``"b"``, ``"tau_m"``, ``"tau_r"``
        (τr learning is experimental). Default: nothing learns.
    learn_from : float
        Simulated time (a.u.) from which learning is on (e.g. 50 a.u. of settling).
    record : sequence of str
        Signals to record, from :data:`RECORDABLE`.
    window : int
        Number of recorded samples kept per signal.
    record_every : int
        Record one sample every this many steps (the loss is averaged over them).
    record_stream : int
        Which input stream (batch element) is recorded.
    seed : int, optional
        Seed of the stimulus' random parts (per-stream shifts).
    optimizer_kwargs : dict, optional
        Passed to the optimizer (``momentum=0.9``, ``betas=(0.9, 0.999)``).
    backend : {"auto", "numpy", "numba"}
        How :meth:`run_steps` computes: ``"numpy"`` is the reference implementation,
        ``"numba"`` the compiled kernel of :mod:`gle_core._kernel` (the same results up to
        rounding, 10-50x faster on small networks), ``"auto"`` uses numba when it is
        installed and the configuration is supported. May be changed between calls.
    """

    chunk = 512  # steps sampled from the stimulus at once

    def __init__(self, network, stimulus, teacher=None, *, target=None, optimizer="adam",
                 lr=1e-3, learn=None, learn_from=0.0, record=DEFAULT_RECORD, window=2000,
                 record_every=1, record_stream=0, seed=None, optimizer_kwargs=None,
                 backend="auto"):
        self.stimulus, self.target = check_inputs(network, stimulus, teacher, target)
        self.network = network
        if teacher is not None:
            teacher.reset_state(network.batch_size)
        self.teacher = teacher
        self.optimizer = make_optimizer(optimizer, 1.0, **(optimizer_kwargs or {}))
        self.lr = lr
        self.learn = learn or {}
        self.learn_from = float(learn_from)
        bad = [r for r in record if r not in RECORDABLE]
        if bad:
            raise GLEParameterError("record", bad, "names from " + ", ".join(RECORDABLE))
        self.record = tuple(record)
        if not isinstance(window, numbers.Integral) or window < 1:
            raise GLEParameterError("window", window, "an integer ≥ 1")
        self.window = int(window)
        if not isinstance(record_every, numbers.Integral) or record_every < 1:
            raise GLEParameterError("record_every", record_every, "an integer ≥ 1")
        self.record_every = int(record_every)
        if not 0 <= record_stream < network.batch_size:
            raise GLEParameterError("record_stream", record_stream,
                                    f"[0, {network.batch_size - 1}]")
        self.record_stream = int(record_stream)
        self.seed = seed
        self.backend = backend
        self._initial_params = self._snapshot_params()
        self.reset(seed)

    # ------------------------------------------------------------------ settings
    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lrs = parse_learning_rates(value)
        self._lr = value

    @property
    def backend(self):
        return self._backend

    @backend.setter
    def backend(self, value):
        if value not in BACKENDS:
            raise GLEParameterError("backend", value, "one of " + ", ".join(BACKENDS))
        if value == "numba":
            from . import _kernel
            if not _kernel.HAVE_NUMBA:
                raise GLEParameterError("backend", value, "'auto' or 'numpy'",
                                        "numba is not installed")
        self._backend = value

    @property
    def learn(self):
        return self._learn

    @learn.setter
    def learn(self, value):
        self._active = parse_learn(value, self.network.n_layers)
        self._learn = dict(value)

    @property
    def t(self):
        """Simulated time (a.u.) of the next step."""
        return self.n_steps * self.network.dt

    def _snapshot_params(self):
        return {k: [a.copy() for a in self.network.parameters(k)] for k in PARAMETER_KINDS}

    # ------------------------------------------------------------------ reset
    def reset(self, seed=None):
        """Back to t = 0: initial parameters, zero state, fresh optimizer and probes.

        Parameters
        ----------
        seed : int, optional
            New seed for the stimulus' random parts; default: the seed given at creation.
        """
        restart(self, seed)
        self.diverged = None
        self._make_probes()

    def set_stimulus(self, stimulus):
        """Swap the input stream between steps, without a reset (a waveform control).

        The new stimulus' random parts (per-stream shifts) are drawn from the simulator's
        seed; the state, parameters, optimizer and probes carry on.
        """
        stim = as_stimulus(stimulus, self.network.dt)
        if stim.n_channels != self.network.layer_sizes[0]:
            raise GLEParameterError("stimulus channels", stim.n_channels,
                                    f"{self.network.layer_sizes[0]} (the network's input size)")
        stim.reset(self.network.batch_size, self.seed)
        self.stimulus = stim
        self._block_x = self._block_y = None   # sampled blocks of the old stimulus

    def set_initial_parameters(self):
        """Make the current parameters the ones :meth:`reset` returns to."""
        self._initial_params = self._snapshot_params()

    def _make_probes(self):
        net = self.network
        n_neurons = sum(net.layer_sizes[1:])
        shapes = {"t": (), "loss": (), "input": (net.layer_sizes[0],),
                  "output": (net.layer_sizes[-1],), "target": (net.layer_sizes[-1],)}
        for s in STATE_NAMES:
            shapes[s] = (n_neurons,)
        shapes["W"] = (sum(w.size for w in net.W),)
        for k in ("b", "tau_m", "tau_r"):
            shapes[k] = (n_neurons,)
        self.probes = {name: RingBuffer(self.window, shapes[name]) for name in self.record}

    # ------------------------------------------------------------------ running
    def _inputs_at(self, k):
        """Input (and target) of step k, sampled in blocks of ``chunk`` steps."""
        i = k - self._block_start
        if self._block_x is None or not 0 <= i < len(self._block_x):
            self._block_start = k
            t = (k + np.arange(self.chunk)) * self.network.dt
            self._block_x = self.stimulus.sample(t)
            self._block_y = None if self.target is None else self.target.sample(t)
            i = 0
        y = None if self._block_y is None else self._block_y[i]
        return self._block_x[i], y

    def step(self):
        """One Euler step of teacher and student, then one optimizer step (spec §3)."""
        self.run_steps(1)

    def run(self, duration, progress=None):
        """Simulate ``duration`` a.u. (rounded to whole steps)."""
        self.run_steps(int(round(duration / self.network.dt)), progress=progress)

    def run_steps(self, n, progress=None):
        """Simulate ``n`` steps.

        Parameters
        ----------
        n : int
        progress : callable, optional
            Called as ``progress(steps_done)`` about every 1000 steps (e.g. a tqdm update).

        Raises
        ------
        SimulationDiverged
            On overflow or a non-finite value; the network keeps its last finite state and
            :attr:`diverged` holds the exception until :meth:`reset`.
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise GLEParameterError("n", n, "an integer ≥ 0")
        try:
            self._dispatch_run_steps(n, progress)
        except SimulationDiverged as exc:
            self.diverged = exc
            raise

    def _dispatch_run_steps(self, n, progress):
        if self._backend != "numpy":
            from . import _kernel
            if _kernel.HAVE_NUMBA:
                try:
                    return _kernel.run_steps(self, int(n), progress)
                except _kernel.Unsupported as exc:
                    if self._backend == "numba":
                        raise GLEParameterError("backend", "numba", "'auto' or 'numpy'",
                                                str(exc)) from None
        self._run_steps_numpy(n, progress)

    def _run_steps_numpy(self, n, progress=None):
        """The reference implementation of :meth:`run_steps` (numpy, step by step)."""
        net, teacher = self.network, self.teacher
        dt = net.dt
        rec = self.probes
        rec_state = [s for s in STATE_NAMES if s in rec]
        rec_param = [k for k in PARAMETER_KINDS if k in rec]
        j = self.record_stream
        done_since_report = 0
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                for _ in range(int(n)):
                    k = self.n_steps
                    x, y = self._inputs_at(k)
                    if teacher is not None:
                        y = teacher.step(x)
                    out = net.step(x, y)
                    if y is not None:
                        self._loss_acc += net.loss_value(out, y)
                        self._loss_n += 1
                    if self._active and k * dt >= self.learn_from - 1e-9:
                        self._learn_step()
                    self.n_steps = k + 1
                    if self.n_steps % self.record_every == 0:
                        self._record(rec, rec_state, rec_param, j, k * dt, x, out, y)
                    if self.n_steps % 256 == 0:
                        self._check_bounded()
                    if progress is not None:
                        done_since_report += 1
                        if done_since_report == 1000:
                            progress(done_since_report)
                            done_since_report = 0
        except FloatingPointError as exc:
            if isinstance(exc, SimulationDiverged):
                raise
            raise net.find_divergence(self.t, str(exc)) from None
        if progress is not None and done_since_report:
            progress(done_since_report)
        self._check_bounded()

    def _learn_step(self):
        net, opt, lrs = self.network, self.optimizer, self._lrs
        tau_changed = False
        for kind, layer in self._active:
            lr = lrs[kind]
            if lr == 0.0:
                continue
            opt.lr = lr
            opt.update((kind, layer), net.parameters(kind)[layer],
                       net.local_gradients(kind, layer))
            tau_changed |= kind in ("tau_m", "tau_r")
        if tau_changed:
            net.clamp_time_constants()

    def _check_bounded(self):
        net = self.network
        for name in ("u", "error") + PARAMETER_KINDS:
            for layer, arr in enumerate(getattr(net, name)):
                m = np.max(np.abs(arr))
                if not m <= DIVERGENCE_LIMIT:  # also catches NaN
                    raise SimulationDiverged(name, layer + 1, self.t, float(m),
                                             f"|{name}| exceeded {DIVERGENCE_LIMIT:g}")

    def _record(self, rec, rec_state, rec_param, j, t, x, out, y):
        net = self.network
        if "t" in rec:
            rec["t"].append(t)
        if "input" in rec:
            rec["input"].append(x[j])
        if "output" in rec:
            rec["output"].append(out[j])
        if "target" in rec:
            if y is None:
                rec["target"].append(np.nan)
            else:
                y = np.asarray(y)
                rec["target"].append(net.one_hot(y)[j] if y.ndim == 1 else y[j])
        if "loss" in rec:
            rec["loss"].append(self._loss_acc / self._loss_n if self._loss_n else np.nan)
        if self._loss_n:
            self.last_loss = self._loss_acc / self._loss_n
        self._loss_acc, self._loss_n = 0.0, 0
        for s in rec_state:
            rec[s].append(np.concatenate([a[j] for a in getattr(net, s)]))
        for k in rec_param:
            rec[k].append(np.concatenate([a.ravel() for a in getattr(net, k)]))

    # ------------------------------------------------------------------ access
    def trace(self, name, layer=None):
        """Recorded signal ``name`` (oldest first), optionally one layer's neurons only.

        Returns an array of shape (n_samples, ...) for the last ``window`` samples.
        """
        if name not in self.probes:
            raise GLEParameterError("name", name, "a recorded signal: " + ", ".join(self.probes))
        data = self.probes[name].last()
        if layer is None:
            return data
        if name in STATE_NAMES or name in ("b", "tau_m", "tau_r"):
            edges = np.cumsum([0] + self.network.layer_sizes[1:])
        elif name == "W":
            edges = np.cumsum([0] + [w.size for w in self.network.W])
        else:
            raise GLEParameterError("layer", layer, f"None for signal {name!r}")
        return data[:, edges[layer]:edges[layer + 1]]

    @property
    def memory_bytes(self):
        """Bytes held by the probes (constant in run length)."""
        return sum(p.nbytes for p in self.probes.values())
