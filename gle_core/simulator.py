"""The simulator: a GLE network, its input, a teacher or target, a learning rule and probes.

In the spirit of nengo: ``sim.step()``, ``sim.run_steps(n)``, ``sim.run(T)``,
``sim.reset(seed)``; recorded signals live in fixed-size :class:`~gle_core.probes.RingBuffer`
probes, so memory is bounded whatever the run length. Parameters of ``sim.network`` (and
the learning settings here) may be changed between steps.

There is one simulation loop. What differs between GLE, instantaneous errors and the exact
windowed rule (truncated BPTT / the adjoint method) is the *learning rule*
(:mod:`gle_core.rules`), a part of the simulator that :meth:`Simulator.set_rule` switches on
a running simulation. Per-step local rules also run in the compiled kernel
(:mod:`gle_core._kernel`) on a :class:`~gle_core.plan.KernelPlan` that the simulator builds
and caches.
"""
from __future__ import annotations

import copy
import numbers

import numpy as np

from .errors import GLEParameterError, SimulationDiverged
from .inputs import as_stimulus
from .network import PARAMETER_KINDS, STATE_NAMES, GLENetwork
from .optimizers import make_optimizer
from .plan import (BOUND_CHECK_EVERY, DIVERGENCE_LIMIT, S_BAD_LOSS, S_BAD_STUDENT,
                   S_BAD_TEACHER, S_OK, S_UNBOUNDED, SIGNALS, KernelPlan, KernelTape,
                   Unsupported, kernel_layout)
from .probes import RingBuffer
from .rules import LocalRule, WindowedRule, make_rule

__all__ = ["Simulator", "RECORDABLE", "DEFAULT_RECORD", "BACKENDS", "check_inputs",
           "parse_learning_rates", "parse_learn"]

#: everything a simulator can record (per-layer states are concatenated over layers)
RECORDABLE = SIGNALS
DEFAULT_RECORD = ("t", "input", "output", "target", "loss", "prospective_voltage", "r",
                  "inst_error", "error", "W", "b", "tau_m", "tau_r")
#: values of Simulator.backend
BACKENDS = ("auto", "numpy", "numba")
#: longest kernel call (steps) between two returns to Python (progress, block edges)
KERNEL_CALL = 1 << 16


def _have_numba():
    """Is the compiled backend available? (imports numba on first use only)"""
    from . import _kernel
    return _kernel.HAVE_NUMBA


def check_inputs(network, stimulus, teacher, target):
    """Validate a student, its stimulus and its teacher or target.

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


class Simulator:
    """Run a :class:`GLENetwork` on a stimulus, optionally learning from a teacher.

    Parameters
    ----------
    network : GLENetwork
        The (student) network. Its ``batch_size`` sets the number of input streams.
    stimulus : Stimulus, number, array or callable
        The input r_0(t); see :mod:`gle_core.inputs` (and :mod:`gle_core.datasets` for
        labelled sequences).
    teacher : GLENetwork, optional
        A network run on the same input whose output (at the same step) is the target.
    target : Stimulus or callable, optional
        Alternatively, the target y(t) directly (shape (batch, n_out) per step, or labels).
    rule : str or LearningRule, optional
        The learning rule (:mod:`gle_core.rules`): ``"gle"`` or ``"ie"`` (per-step local
        learning with prospective or instantaneous errors; sets the network's error mode),
        ``"am"`` (truncated BPTT / windowed adjoint method; options in ``rule_options``) or
        a rule object. Default: local learning with the network's error mode.
    rule_options : dict, optional
        Options of a rule given by name (``{"window": 3.0, "method": "adjoint"}``).
    optimizer : {"sgd", "momentum", "adam"}
    lr : float or dict
        Learning rate (per step for local rules, per window for the windowed rule), or one
        per parameter kind (``{"W": 1e-3, "tau_m": 1e-4}``); kinds missing from such a dict
        have rate 0 (they do not learn). May be changed between calls (a learning-rate
        schedule sets it, e.g. :class:`gle_core.schedules.ReduceOnPlateau`).
    learn : dict, optional
        Which parameters learn: kind -> ``True`` (all layers), ``False``, or a list of
        0-based layer indices. Kinds: ``"W"``, ``"b"``, ``"tau_m"``, ``"tau_r"``
        (τr learning is experimental). Default: nothing learns.
    learn_from : float
        Simulated time (a.u.) from which learning is on (e.g. 50 a.u. of settling).
    record : sequence of str
        Signals to record, from :data:`RECORDABLE`: ``"teacher_r"`` is the teacher's rates
        of every layer after its step (what a teacher run on its own records as ``"r"``;
        rows of width 0 without a teacher).
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
        rounding), ``"auto"`` uses numba when it is installed and the configuration is
        supported (for the windowed rule the kernel runs and records the steps, the window's
        gradient is taken in numpy). May be changed between calls.
    """

    chunk = 512  # steps sampled from a non-periodic stimulus at once

    def __init__(self, network, stimulus, teacher=None, *, target=None, rule=None,
                 rule_options=None, optimizer="adam", lr=1e-3, learn=None, learn_from=0.0,
                 record=DEFAULT_RECORD, window=2000, record_every=1, record_stream=0,
                 seed=None, optimizer_kwargs=None, backend="auto"):
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
        self._plan = None
        self._rule = None
        self.set_rule(LocalRule() if rule is None else rule, **(rule_options or {}))
        self._initial_params = self._snapshot_params()
        self.reset(seed)

    # ------------------------------------------------------------------ settings
    @property
    def lr(self):
        """The learning rate as given (one number or ``{kind: rate}``); settable."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lrs, self._lr = parse_learning_rates(value), value

    @property
    def backend(self):
        """``"auto"``, ``"numpy"`` or ``"numba"``; settable between calls."""
        return self._backend

    @backend.setter
    def backend(self, value):
        if value not in BACKENDS:
            raise GLEParameterError("backend", value, "one of " + ", ".join(BACKENDS))
        if value == "numba" and not _have_numba():
            raise GLEParameterError("backend", value, "'auto' or 'numpy'",
                                    "numba is not installed")
        self._backend = value

    @property
    def learn(self):
        """Which parameters learn, as given (``{kind: True/False/layers}``); settable."""
        return self._learn

    @learn.setter
    def learn(self, value):
        value = dict(value)
        self._active = parse_learn(value, self.network.n_layers)
        self._learn = value

    @property
    def rule(self):
        """The learning rule (:mod:`gle_core.rules`); switch it with :meth:`set_rule`."""
        return self._rule

    def set_rule(self, rule, **options):
        """Switch the learning rule of this (possibly running) simulation.

        Parameters
        ----------
        rule : {"gle", "ie", "am"} or LearningRule
            ``"gle"``/``"ie"`` also set the network's error mode. A window the old rule had
            begun is dropped (its parameters had not changed) and the optimizer's moments
            restart (they averaged the old rule's gradients, per step or per window); time,
            state, parameters and probes carry on.
        **options
            Options of a rule given by name (``window``, ``method``, ``loss_scale``,
            ``keep_adjoint`` for ``"am"``).

        Returns
        -------
        LearningRule
            The new rule.
        """
        new = make_rule(rule, **options)
        if self._rule is not None:
            self._rule.reset()
            self._rule.sim = None
            self.optimizer.reset()
        new.bind(self)
        self._rule = new
        return new

    @property
    def t(self):
        """Simulated time (a.u.) of the next step."""
        return self.n_steps * self.network.dt

    def copy(self):
        """An independent copy of this simulation as it is now.

        Network and teacher (parameters and state), optimizer moments, learning rule (a
        window begun included), input source, probes and time are copied; running either
        afterwards gives the same numbers as running the other, and changing one leaves the
        other alone. (GLE Lab lets identical sessions share one simulation and gives a
        session its own copy when it first changes something.)

        Returns
        -------
        Simulator
        """
        # the compiled plan is left out: its buffers alias the network's arrays, which a
        # deep copy would copy apart; the copy packs its own plan at its first kernel call
        return copy.deepcopy(self, {id(self._plan): None})

    def _snapshot_params(self):
        return {k: [a.copy() for a in self.network.parameters(k)] for k in PARAMETER_KINDS}

    # ------------------------------------------------------------------ reset
    def reset(self, seed=None):
        """Back to t = 0: initial parameters, zero state, fresh optimizer, rule and probes.

        Parameters
        ----------
        seed : int, optional
            New seed for the stimulus' random parts; default: the seed given at creation.
        """
        if seed is not None:
            self.seed = seed
        net = self.network
        for k, arrs in self._initial_params.items():
            for cur, init in zip(net.parameters(k), arrs):
                cur[...] = init
        net.reset_state()
        if self.teacher is not None:
            self.teacher.reset_state(net.batch_size)
        self.stimulus.reset(net.batch_size, self.seed)
        if self.target is not None:
            self.target.reset(net.batch_size, self.seed)
        self._new_input_source()
        self.optimizer.reset()
        self._rule.reset()
        self.n_steps = 0
        self._loss_acc, self._loss_n = 0.0, 0
        self.last_loss = np.nan
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
        self._new_input_source()

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
        # the teacher's rates of every layer; no columns without a teacher
        shapes["teacher_r"] = ((sum(self.teacher.layer_sizes[1:]),) if self.teacher is not None
                               else (0,))
        for k in ("b", "tau_m", "tau_r"):
            shapes[k] = (n_neurons,)
        self.probes = {name: RingBuffer(self.window, shapes[name]) for name in self.record}

    # ------------------------------------------------------------------ input source
    def _new_input_source(self):
        """Forget sampled blocks; tabulate one period of a periodic stimulus (and target)."""
        dt = self.network.dt
        self._x_table = self.stimulus.step_table(dt)
        self._y_table = None if self.target is None else self.target.step_table(dt)
        self._block_start, self._block_x, self._block_y = 0, None, None
        self._kernel_x = self._kernel_y = None

    def _inputs_at(self, k):
        """Input (and target) of step k: a table row, or sampled in blocks of ``chunk``."""
        xt, yt = self._x_table, self._y_table
        if xt is not None and (yt is not None or self.target is None):
            return xt[k % len(xt)], (None if yt is None else yt[k % len(yt)])
        i = k - self._block_start
        if self._block_x is None or not 0 <= i < len(self._block_x):
            self._block_start = k
            t = (k + np.arange(self.chunk)) * self.network.dt
            self._block_x = self.stimulus.sample(t)
            self._block_y = None if self.target is None else self.target.sample(t)
            self._kernel_x = self._kernel_y = None
            i = 0
        y = None if self._block_y is None else self._block_y[i]
        return self._block_x[i], y

    def _kernel_inputs(self, k):
        """``(X, x0, xp, Y, y0, yp)`` for the kernel from step ``k`` on, and how many steps
        they cover (see :func:`gle_core._kernel.run`)."""
        net = self.network
        B, nin, nout = net.batch_size, net.layer_sizes[0], net.layer_sizes[-1]
        one_hot = net.loss == "cross_entropy"
        xt, yt = self._x_table, self._y_table
        if xt is not None and (yt is not None or self.target is None):
            if self._kernel_x is None or self._kernel_x[0] is not xt:
                X = kernel_layout(xt, "input", nin, B)
                Y = None if yt is None or self.teacher is not None else \
                    kernel_layout(yt, "target", nout, B, one_hot)
                self._kernel_x = (xt, X, Y)
            _, X, Y = self._kernel_x
            return (X, 0, len(X), Y, 0, 0 if Y is None else len(Y)), KERNEL_CALL
        self._inputs_at(k)                    # the block that holds step k
        if self._kernel_y is None or self._kernel_y[0] is not self._block_x:
            X = kernel_layout(self._block_x, "input", nin, B)
            Y = None
            if self.teacher is None and self._block_y is not None:
                Y = kernel_layout(self._block_y, "target", nout, B, one_hot)
            self._kernel_y = (self._block_x, X, Y)
        _, X, Y = self._kernel_y
        s = self._block_start
        return (X, s, 0, Y, s, 0), s + len(X) - k

    # ------------------------------------------------------------------ running
    def step(self):
        """One Euler step of teacher and student, then the rule's optimizer step (if any)."""
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
            On overflow, a non-finite value, or a state or parameter beyond
            ``DIVERGENCE_LIMIT`` (checked every ``BOUND_CHECK_EVERY`` steps and at the end,
            in every rule and backend); the network keeps its last finite state and
            :attr:`diverged` holds the exception until :meth:`reset`.
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise GLEParameterError("n", n, "an integer ≥ 0")
        try:
            left = int(n)
            if self._backend != "numpy":
                left = self._run_steps_kernel(left, progress)
            if left:
                self._run_steps_numpy(left, progress)
            plan = self._plan
            if not (left == 0 < n and plan is not None and type(self._rule) is LocalRule
                    and plan.student.within(DIVERGENCE_LIMIT)):
                # the kernel ran every step of the local rule: the network's arrays are its
                # buffers' views, checked at once above; otherwise (or to name the culprit)
                # array by array
                self._check_bounded()
        except SimulationDiverged as exc:
            self.diverged = exc
            raise

    def _learning_now(self, k):
        return bool(self._active) and k * self.network.dt >= self.learn_from - 1e-9

    def _run_steps_numpy(self, n, progress=None):
        """The reference implementation of :meth:`run_steps` (numpy, step by step)."""
        net, teacher, rule = self.network, self.teacher, self._rule
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
                    learning = self._learning_now(k)
                    out = rule.step(net, x, y, learning)
                    if y is not None:
                        self._loss_acc += net.loss_value(out, y)
                        self._loss_n += 1
                    rule.after_step(learning)
                    self.n_steps = k + 1
                    if self.n_steps % self.record_every == 0:
                        self._record(rec, rec_state, rec_param, j, k * dt, x, out, y)
                    if self.n_steps % BOUND_CHECK_EVERY == 0:
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

    def apply_gradients(self, gradient):
        """One optimizer step on every learning parameter, then the τ floor.

        ``gradient(kind, layer)`` returns ∂E/∂θ (the local energy gradient of a step, or a
        window's scaled exact gradient). Shared by every rule.
        """
        net, opt, lrs = self.network, self.optimizer, self._lrs
        tau_changed = False
        for kind, layer in self._active:
            lr = lrs[kind]
            if lr == 0.0:
                continue
            opt.lr = lr
            opt.update((kind, layer), net.parameters(kind)[layer], gradient(kind, layer))
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
        if "teacher_r" in rec:
            rec["teacher_r"].append(np.concatenate([a[j] for a in self.teacher.r])
                                    if self.teacher is not None else np.empty(0))
        for k in rec_param:
            rec[k].append(np.concatenate([a.ravel() for a in getattr(net, k)]))

    # ------------------------------------------------------------------ compiled path
    def kernel_plan(self):
        """The cached :class:`~gle_core.plan.KernelPlan` of this simulation (rebuilt only
        when the structure changed). Raises :class:`~gle_core.plan.Unsupported` if the
        configuration needs the numpy path."""
        parts = (self.network, self.teacher, self.optimizer, self._active, self.probes)
        if self._plan is None or not self._plan.matches(*parts):
            self._plan = None
            self._plan = KernelPlan(*parts)
        return self._plan

    def kernel_unsupported_reason(self):
        """Why :meth:`run_steps` cannot use the compiled kernel now (``None`` if it can)."""
        if not _have_numba():
            return "numba is not installed"
        if type(self._rule) not in (LocalRule, WindowedRule):
            return f"the {self._rule.name} rule runs in numpy"
        try:
            self.kernel_plan()
        except Unsupported as exc:
            return str(exc)
        return None

    def _run_steps_kernel(self, n, progress):
        """Run through the compiled kernel; returns the steps left for the numpy path (a
        configuration the kernel does not support, or a target block it cannot take).

        Under the windowed rule the kernel runs the window's steps without local updates and
        records them into a :class:`~gle_core.plan.KernelTape`; the window's exact gradient
        is then taken in numpy from that record (a window begun by the numpy path ends
        there)."""
        from . import _kernel
        why = self.kernel_unsupported_reason()
        if why is not None:
            if self._backend == "numba":
                raise GLEParameterError("backend", "numba", "'auto' or 'numpy'", why)
            return n
        plan = self._plan
        net, rule = self.network, self._rule
        windowed = isinstance(rule, WindowedRule)
        B, nin, nout = net.batch_size, net.layer_sizes[0], net.layer_sizes[-1]
        lrs = np.array([self._lrs[k] for k in PARAMETER_KINDS])
        left = n
        since = 0
        cap = 1024 if progress is not None else KERNEL_CALL
        while left > 0:
            k0 = self.n_steps
            if windowed and rule.tape is not None and rule.kernel_tape is None:
                m = min(left, rule.window_steps - len(rule.tape))
                self._run_steps_numpy(m, progress)
                left -= m
                continue
            try:
                inputs, avail = self._kernel_inputs(k0)
            except Unsupported:
                if left == n and self._backend == "numba":
                    raise
                break
            m = min(left, avail, cap)
            plan.pull()
            tape = None
            if windowed:
                if rule.tape is None and self._learning_now(k0):
                    self._open_kernel_window(plan)
                tape = rule.kernel_tape
                if tape is not None:
                    m = min(m, rule.window_steps - tape.pos)
                elif self._active:          # stop where learning (the first window) starts
                    m = min(m, max(1, self._first_learning_step(k0) - k0))
            scal = np.array([self._loss_acc, float(self._loss_n), self.last_loss])
            done, status = _kernel.run(plan, m, k0, inputs, lrs, self.learn_from, scal,
                                       self.record_every, self.record_stream,
                                       DIVERGENCE_LIMIT, local=not windowed, tape=tape)
            self._loss_acc, self._loss_n, self.last_loss = (float(scal[0]), int(scal[1]),
                                                            float(scal[2]))
            X, x0, xp = inputs[:3]
            rows = ([(k - x0) % xp if xp else k - x0 for k in range(k0, k0 + done)]
                    if tape is not None else [])
            last = k0 + done - 1
            x_last = X[(last - x0) % xp if xp else last - x0].reshape(nin, B).T if done else None
            plan.push(done, x_last, self.teacher is not None or inputs[3] is not None)
            self.n_steps = k0 + done
            left -= done
            if tape is not None:
                for i in range(done):
                    p = tape.pos + i
                    y = tape.Y[p].reshape(nout, B).T if tape.has_y[p] else None
                    rule.tape.append(X[rows[i]].reshape(nin, B).T, y,
                                     tape.snapshot(p + 1, rule.tape.names), tape.loss[p])
                tape.pos += done
                if status == S_OK:
                    updates = rule.n_updates
                    with np.errstate(over="raise", invalid="raise", divide="raise"):
                        try:
                            rule.after_step(True)
                        except FloatingPointError as exc:
                            raise net.find_divergence(self.t, str(exc)) from None
                    if rule.n_updates != updates and self.n_steps % self.record_every == 0:
                        self._rerecord_parameters()
            elif done and self._learning_now(k0 + done - 1):
                # as the numpy path, the optimizer holds the rate of the last update
                for kind, _ in self._active:
                    if self._lrs[kind] != 0.0:
                        self.optimizer.lr = self._lrs[kind]
            if progress is not None and done:
                since += done
                if since >= 1000:
                    progress(since)
                    since = 0
            if status != S_OK:
                self._raise_kernel_status(plan, status)
        if progress is not None and since:
            progress(since)
        return left

    def _rerecord_parameters(self):
        """The numpy path records a step after its update: so must the window's last step
        recorded by the kernel (before the window's update)."""
        for kind in PARAMETER_KINDS:
            rb = self.probes.get(kind)
            if rb is not None and rb.total:
                rb.data[(rb.total - 1) % rb.capacity] = np.concatenate(
                    [a.ravel() for a in self.network.parameters(kind)])

    def _first_learning_step(self, k):
        """The first step ≥ k at which learning is on (``learn_from`` reached)."""
        dt = self.network.dt
        ks = max(k, int(np.ceil((self.learn_from - 1e-9) / dt)) - 1)
        while ks * dt < self.learn_from - 1e-9:
            ks += 1
        return ks

    def _open_kernel_window(self, plan):
        """Start a window of the windowed rule recorded by the kernel."""
        from .adjoint import WindowTape
        rule, net = self._rule, self.network
        kt = KernelTape(plan.student, rule.window_steps, net.layer_sizes[-1])
        tape = WindowTape(net, error_path=rule.method == "exact" and net.gamma != 0.0)
        tape.initial = tuple(kt.snapshot(0, tape.names))
        rule.tape, rule.kernel_tape = tape, kt

    def _raise_kernel_status(self, plan, status):
        from .plan import R_BAD_KIND, R_BAD_LAYER
        t = self.t
        if status == S_UNBOUNDED:
            self._check_bounded()             # raises the numpy path's SimulationDiverged
        if status == S_BAD_STUDENT:
            raise plan.name_bad_state("student", t, "non-finite value in the step")
        if status == S_BAD_TEACHER:
            raise plan.name_bad_state("teacher", t, "non-finite value in the teacher")
        if status == S_BAD_LOSS:
            raise SimulationDiverged("loss", self.network.n_layers, t, float("inf"),
                                     "non-finite loss")
        kind = PARAMETER_KINDS[int(plan.res[R_BAD_KIND])]
        raise SimulationDiverged(kind, int(plan.res[R_BAD_LAYER]) + 1, t, float("nan"),
                                 f"non-finite {kind} update")

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
        """Bytes held by the probes and a window's record (constant in run length)."""
        return sum(p.nbytes for p in self.probes.values()) + \
            getattr(self._rule, "peak_tape_bytes", 0)
