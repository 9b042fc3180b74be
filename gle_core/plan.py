"""The plan the compiled kernel (:mod:`gle_core._kernel`) runs on.

A :class:`KernelPlan` holds, packed into flat arrays, everything one call of the compiled
simulation loop reads and writes:

* **networks** (:class:`PackedNetwork`, the student and the teacher): layer sizes,
  activation codes, offsets, the parameter vector ``P`` and the state buffer ``S``;
* **optimizer state** (:class:`OptimizerSlots`): the active ``(kind, layer)`` pairs, their
  offsets, momentum / Adam moments ``M``, ``V`` and step counts;
* **recording** (:class:`ProbeSlots`): the ring-buffer storage arrays of the recorded
  signals, which of :data:`SIGNALS` are recorded and how many samples each holds.

The plan is built by the simulator and cached; it is rebuilt only when the structure
changes (layer sizes, activations, batch size, the set of learning parameters, the
optimizer, the probes). Between calls the network's parameter arrays *are* views into
``P`` and its state arrays views into ``S`` (the optimizer's moments views into ``M``,
``V``): nothing is re-packed while only values change, whichever side changed them (a
slider, the numpy path, the kernel). A network whose arrays were replaced (the numpy path
builds new state arrays every step) is detected by identity and re-packed.

Layouts
-------
Parameters ``P``: every layer's ``W`` (row-major), then ``b``, ``tau_m``, ``tau_r`` of all
neurons (``woff`` and ``noff`` are the per-layer offsets).

States ``S``: shape ``(2, N_VARS, batch * n_neurons)``, two copies used in turn (a step
reads copy ``cur`` and writes copy ``1 - cur``, so a step that produced a non-finite value
is simply not committed). Variable ``v`` is :data:`VAR_NAMES` ``[v]``; within one, layer ℓ
occupies ``[batch * noff[ℓ], batch * noff[ℓ + 1])`` as a neuron-major ``(n_ℓ, batch)``
block, so that elementwise loops run over the batch with unit stride.
"""
from __future__ import annotations

import numpy as np

from .network import PARAMETER_KINDS, STATE_NAMES, GLENetwork
from .optimizers import SGD, Adam, Momentum

__all__ = ["VAR_NAMES", "N_VARS", "SIGNALS", "SIGNAL", "KIND", "OPTIMIZER_CODES",
           "ACTIVATION_CODES", "STATUS", "Unsupported", "PackedNetwork", "OptimizerSlots",
           "ProbeSlots", "KernelPlan", "KernelTape", "kernel_layout"]

# ----------------------------------------------------------------------------- slot numbers
#: state variables of a packed network: the recorded states, then the error arriving from
#: above (``feedback`` W_{ℓ+1}ᵀ e_{ℓ+1} for hidden layers, the output drive g for the output)
VAR_NAMES = STATE_NAMES + ("feedback",)
N_VARS = len(VAR_NAMES)
N_STATES = len(STATE_NAMES)
N_KINDS = len(PARAMETER_KINDS)
(V_U, V_UD, V_UH, V_R, V_RP, V_EPS, V_V, V_E, V_D) = range(N_VARS)
assert VAR_NAMES[V_E] == "error" and VAR_NAMES[V_D] == "feedback"

#: every signal a simulator can record, in slot order (per-layer states concatenated;
#: ``teacher_r``: the teacher's rates r of every layer after its step, needs a teacher)
SIGNALS = ("t", "input", "output", "target", "loss") + STATE_NAMES + PARAMETER_KINDS + \
    ("teacher_r",)
SIGNAL = {name: i for i, name in enumerate(SIGNALS)}
N_SIGNALS = len(SIGNALS)
P_T, P_INPUT, P_OUTPUT, P_TARGET, P_LOSS = range(5)
#: slot of the first state signal; state signal ``P_STATE + v`` is variable ``v``
P_STATE = SIGNAL[STATE_NAMES[0]]
#: slot of the first parameter signal; ``P_PARAM + kind`` is :data:`KIND` order
P_PARAM = SIGNAL[PARAMETER_KINDS[0]]
#: slot of the teacher's rates
P_TEACHER_R = SIGNAL["teacher_r"]
assert SIGNALS[P_STATE:P_STATE + len(STATE_NAMES)] == VAR_NAMES[:len(STATE_NAMES)]

#: parameter kind -> code (its block in ``P``: W, then b, tau_m, tau_r)
KIND = {k: i for i, k in enumerate(PARAMETER_KINDS)}
#: optimizer class -> code of its update in the kernel
OPTIMIZER_CODES = {SGD: 0, Momentum: 1, Adam: 2}
#: activation name -> code used in the kernel
ACTIVATION_CODES = {"linear": 0, "tanh": 1, "sigmoid": 2, "softplus": 3, "relu": 4,
                    "hard_sigmoid": 5, "hard_tanh": 6}
#: the simulator checks |u|, |error| and every parameter against DIVERGENCE_LIMIT every
#: BOUND_CHECK_EVERY steps (and at the end of every run), whatever the rule or backend
BOUND_CHECK_EVERY = 256
#: states larger than this are treated as a divergence even while still finite
DIVERGENCE_LIMIT = 1e12
#: rough single-core costs (ns) to balance a step split between two threads
#: (:meth:`KernelPlan.layer_owner`): per multiply-add of a product, per parameter of an
#: optimizer update, per neuron and stream of the elementwise loops. Fitted to the
#: measured share of every layer in a MNIST-1D step on one AMD EPYC (Zen 4) core (15k:
#: 11, 63 × 5, 14 µs; 42k: 20, 150 × 5, 21 µs; the output drive, loss and recording 4 µs).
COST_MAC, COST_PARAM, COST_NEURON = 0.045, 2.5, 2.5
#: kernel status codes (``res[1]``)
STATUS = {"ok": 0, "bad_student": 1, "bad_teacher": 2, "bad_loss": 3, "bad_update": 4,
          "unbounded": 5}
(S_OK, S_BAD_STUDENT, S_BAD_TEACHER, S_BAD_LOSS, S_BAD_UPDATE, S_UNBOUNDED) = range(6)
#: entries of the result vector ``res``
R_DONE, R_STATUS, R_CUR, R_TEACHER_CUR, R_BAD_KIND, R_BAD_LAYER = range(6)


class Unsupported(Exception):
    """The configuration cannot run in the kernel (the numpy path must be used)."""


def network_support(net, who):
    """Why ``net`` cannot be packed (``None`` if it can)."""
    if type(net) is not GLENetwork:
        return f"the {who} is a subclass of GLENetwork"
    bad = [a for i, a in enumerate(net.activations) if a not in ACTIVATION_CODES]
    if bad:
        return f"the {who} uses non-standard activations {bad}"
    if net.error_mode not in ("gle", "ie") or net.loss not in ("mse", "cross_entropy"):
        return f"the {who}'s error mode or loss is not supported"
    return None


# ----------------------------------------------------------------------------- networks
class PackedNetwork:
    """One :class:`GLENetwork` in flat buffers (layout in the module docstring).

    On creation the network's parameter arrays are replaced by views into :attr:`P` (same
    values) and its states copied into ``S[0]``.
    """

    def __init__(self, net):
        sizes = net.layer_sizes
        L = net.n_layers
        self.net = net
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.acts = np.asarray([ACTIVATION_CODES[a] for a in net.activations], np.int64)
        self.noff = np.concatenate(([0], np.cumsum(sizes[1:]))).astype(np.int64)
        self.woff = np.concatenate(([0], np.cumsum([sizes[i + 1] * sizes[i]
                                                     for i in range(L)]))).astype(np.int64)
        self.N = int(self.noff[-1])
        self.nW = int(self.woff[-1])
        self.B = net.batch_size
        self.key = (tuple(sizes), tuple(net.activations), net.batch_size)
        self.P = np.concatenate([w.ravel() for w in net.W] + list(net.b) + list(net.tau_m)
                                + list(net.tau_r))
        self.param_views = {k: [] for k in PARAMETER_KINDS}
        for l in range(L):
            n, m = int(self.sizes[l + 1]), int(self.sizes[l])
            self.param_views["W"].append(self.P[self.woff[l]:self.woff[l + 1]].reshape(n, m))
            for kind in ("b", "tau_m", "tau_r"):
                o = self.param_offset(kind, l)
                self.param_views[kind].append(self.P[o:o + n])
        for kind, views in self.param_views.items():
            setattr(net, kind, list(views))
        self.pack_states()

    def param_offset(self, kind, l):
        """Offset in ``P`` of parameter ``kind`` of layer ``l``."""
        if kind == "W":
            return int(self.woff[l])
        return self.nW + (KIND[kind] - 1) * self.N + int(self.noff[l])

    def layer_view(self, S, cur, var, l):
        """State ``var`` of layer ``l`` in copy ``cur`` as a (batch, n_ℓ) view."""
        B, n = self.B, int(self.sizes[l + 1])
        o = B * int(self.noff[l])
        return S[cur, var, o:o + B * n].reshape(n, B).T

    def pack_states(self):
        """Copy the network's states into a new buffer's copy 0 (a new buffer, so that
        arrays someone still holds from the old one are not overwritten)."""
        net = self.net
        S = np.empty((2, N_VARS, self.B * self.N))
        for var, name in enumerate(STATE_NAMES):
            S[0, var] = np.concatenate([a.T.ravel() for a in getattr(net, name)])
        S[0, V_D] = np.concatenate([a.T.ravel() for a in net.feedback]
                                   + [np.asarray(net.output_drive, dtype=float).T.ravel()])
        self.S = S
        self.cur = 0
        self._views = {}
        self.refs = self._state_refs()

    def views(self, cur):
        """Per variable, the list of per-layer (batch, n_ℓ) views of copy ``cur``."""
        if cur not in self._views:
            L = self.net.n_layers
            self._views[cur] = [[self.layer_view(self.S, cur, var, l) for l in range(L)]
                                for var in range(N_VARS)]
        return self._views[cur]

    def matches(self, net):
        """True if ``net`` has this structure and its parameters are still the views."""
        if net is not self.net or (tuple(net.layer_sizes), tuple(net.activations),
                                   net.batch_size) != self.key:
            return False
        return all(a is v for k in PARAMETER_KINDS
                   for a, v in zip(getattr(net, k), self.param_views[k]))

    def _state_refs(self):
        net = self.net
        return [a for name in VAR_NAMES for a in getattr(net, name)] + [net.output_drive]

    def refresh_states(self):
        """Re-pack the states if the network's arrays are not the ones packed or published
        last (the numpy path and ``reset_state`` replace them; nothing writes in place)."""
        refs = self._state_refs()
        if len(refs) != len(self.refs) or any(a is not b for a, b in zip(refs, self.refs)):
            self.pack_states()

    def within(self, limit):
        """True if |u|, |error| and every parameter in the packed buffers are ≤ ``limit``
        (False on NaN): the simulator's bound check after a call that the kernel ran alone
        (the network's arrays are then these buffers' views)."""
        S = self.S[self.cur]
        return bool(np.max(np.abs(S[V_U])) <= limit and np.max(np.abs(S[V_E])) <= limit
                    and np.max(np.abs(self.P)) <= limit)

    def publish(self, done, x_last, has_target):
        """After ``done`` kernel steps: the network's states become views of ``S[cur]``."""
        if done == 0:
            return
        net, L, cur = self.net, self.net.n_layers, self.cur
        cv, ov = self.views(cur), self.views(1 - cur)
        for var, name in enumerate(STATE_NAMES):
            setattr(net, name, list(cv[var]))
        net.feedback = list(cv[V_D][:L - 1])
        g = cv[V_D][L - 1]
        net.output_drive = g if has_target else np.zeros_like(g)
        net.presynaptic = [np.array(x_last, dtype=float, copy=True)] + list(ov[V_R][:L - 1])
        net.steps += done
        self.refs = self._state_refs()


# ----------------------------------------------------------------------------- optimizer
class OptimizerSlots:
    """Moments of the optimizer for the active ``(kind, layer)`` pairs, in flat buffers.

    After a kernel call the optimizer's own state arrays are views into :attr:`M` and
    :attr:`V` (Adam's step count is copied back), so the numpy optimizer continues from
    them and the next call finds them in place.
    """

    def __init__(self, opt, active, packed):
        self.opt = opt
        self.code = OPTIMIZER_CODES[type(opt)]
        self.active = [(kind, int(layer)) for kind, layer in active]
        net = packed.net
        shapes = [np.shape(net.parameters(k)[l]) for k, l in self.active]
        size = [int(np.prod(s)) for s in shapes]
        self.off = np.concatenate(([0], np.cumsum(size))).astype(np.int64)
        self.M = np.zeros(int(self.off[-1]))
        self.V = np.zeros(int(self.off[-1]))
        self.init = np.zeros(len(self.active), np.int64)
        self.count = np.zeros(len(self.active), np.int64)
        self.kind = np.array([KIND[k] for k, _ in self.active], np.int64)
        self.layer = np.array([l for _, l in self.active], np.int64)
        self.poff = np.array([packed.param_offset(k, l) for k, l in self.active], np.int64)
        self.m_views = [self.M[self.off[s]:self.off[s + 1]].reshape(shapes[s])
                        for s in range(len(self.active))]
        self.v_views = [self.V[self.off[s]:self.off[s + 1]].reshape(shapes[s])
                        for s in range(len(self.active))]
        self.key = (id(opt), type(opt), tuple(self.active))
        self.mu = float(getattr(opt, "momentum", 0.0))
        self.b1 = float(getattr(opt, "b1", 0.0))
        self.b2 = float(getattr(opt, "b2", 0.0))
        self.eps = float(getattr(opt, "eps", 0.0))

    def matches(self, opt, active):
        return self.key == (id(opt), type(opt), tuple((k, int(l)) for k, l in active))

    def pull(self):
        """Read the optimizer's current state (moments are copied only if not our views)."""
        opt = self.opt
        for s, key in enumerate(self.active):
            st = opt.state.get(key)
            if st is None or self.code == 0:
                self.init[s] = 0
                self.count[s] = 0
                continue
            self.init[s] = 1
            if self.code == 1:
                if st is not self.m_views[s]:
                    self.m_views[s][...] = st
                    opt.state[key] = self.m_views[s]
            else:
                if st[0] is not self.m_views[s]:
                    self.m_views[s][...] = st[0]
                    st[0] = self.m_views[s]
                if st[1] is not self.v_views[s]:
                    self.v_views[s][...] = st[1]
                    st[1] = self.v_views[s]
                self.count[s] = st[2]

    def push(self):
        """Hand the moments back to the optimizer after a call."""
        if self.code == 0:
            return
        opt = self.opt
        for s, key in enumerate(self.active):
            if not self.init[s]:
                continue
            if self.code == 1:
                opt.state[key] = self.m_views[s]
            else:
                st = opt.state.get(key)
                if st is None:
                    opt.state[key] = [self.m_views[s], self.v_views[s], int(self.count[s])]
                else:
                    st[2] = int(self.count[s])


# ----------------------------------------------------------------------------- probes
_NO_PROBE = np.zeros((1, 1))


class ProbeSlots:
    """The recorded signals' ring-buffer storage, one slot per :data:`SIGNALS` entry."""

    def __init__(self, probes):
        self.buffers = {name: probes[name] for name in SIGNALS if name in probes}
        self.arrays = tuple(self.buffers[name].data.reshape(self.buffers[name].capacity, -1)
                            if name in self.buffers else _NO_PROBE for name in SIGNALS)
        self.sources = {name: rb.data for name, rb in self.buffers.items()}
        self.on = np.array([name in self.buffers for name in SIGNALS], np.int64)
        self.totals = np.zeros(N_SIGNALS, np.int64)

    def matches(self, probes):
        return set(self.buffers) == {n for n in probes if n in SIGNAL} and \
            all(probes[n] is rb and rb.data is self.sources[n]
                for n, rb in self.buffers.items())

    def pull(self):
        for name, rb in self.buffers.items():
            self.totals[SIGNAL[name]] = rb.total

    def push(self):
        for name, rb in self.buffers.items():
            rb.total = int(self.totals[SIGNAL[name]])


# ----------------------------------------------------------------------------- the plan
class KernelPlan:
    """Everything a kernel call needs, cached by the simulator between calls.

    Parameters
    ----------
    network, teacher : GLENetwork (teacher may be None)
    optimizer : SGD, Momentum or Adam
    active : list of (kind, layer)
        The learning parameters (duplicates are refused).
    probes : dict of RingBuffer
        The simulator's probes, by signal name.

    Raises
    ------
    Unsupported
        If the configuration needs the numpy path.
    """

    def __init__(self, network, teacher, optimizer, active, probes):
        for who, nw in (("network", network), ("teacher", teacher)):
            if nw is not None:
                why = network_support(nw, who)
                if why:
                    raise Unsupported(why)
        if teacher is not None and (teacher.batch_size != network.batch_size
                                    or teacher.layer_sizes[-1] != network.layer_sizes[-1]):
            raise Unsupported("the teacher's batch or output size differs from the student's")
        if teacher is not None and any(np.shares_memory(a, c) for k in PARAMETER_KINDS
                                       for a in network.parameters(k)
                                       for c in teacher.parameters(k)):
            raise Unsupported("the teacher shares parameter arrays with the student")
        if type(optimizer) not in OPTIMIZER_CODES:
            raise Unsupported(f"optimizer {type(optimizer).__name__} is not SGD, Momentum "
                              "or Adam")
        keys = [(k, int(l)) for k, l in active]
        if len(set(keys)) != len(keys):
            raise Unsupported("a (kind, layer) appears twice in learn")
        self.student = PackedNetwork(network)
        self.teacher = PackedNetwork(teacher) if teacher is not None else None
        self.opt = OptimizerSlots(optimizer, active, self.student)
        self.probes = ProbeSlots(probes)
        B = network.batch_size
        widest = max(network.layer_sizes[1:] + (teacher.layer_sizes[1:] if teacher else []))
        self.sbuf = np.empty(3 * B * widest)         # scratch of one layer's step
        # the gradient of every parameter, then the values (θ, first, second moment) an
        # update replaced, kept until the step is committed
        self.U = np.empty((4, self.student.P.shape[0]))
        self.res = np.zeros(6, np.int64)
        #: threads a kernel call splits a step between (1 or 2; None: up to
        #: :func:`gle_core._kernel.default_threads`, whichever is faster at the time, see
        #: :func:`gle_core._kernel.parts_for`)
        self.threads = None
        self.pace = None                  # the kernel's recent pace on one and two threads
        self._split = {}

    def step_cost_ns(self):
        """Rough single-core cost of one student step with learning (ns): the sum of
        :meth:`layer_costs` and the output's loss."""
        return float(self.layer_costs().sum()) + self._main_extra_ns()

    def layer_costs(self):
        """Rough single-core cost (ns) of every student layer's share of a step: its three
        products (W r, Wᵀ e, e rᵀ), its optimizer update and its elementwise loops
        (:data:`COST_MAC`, :data:`COST_PARAM`, :data:`COST_NEURON`)."""
        sizes = np.asarray(self.student.net.layer_sizes, dtype=float)
        B = self.student.B
        n, m = sizes[1:], sizes[:-1]
        return n * m * (3 * B * COST_MAC + COST_PARAM) + n * B * COST_NEURON

    def _main_extra_ns(self):
        """What only part 0 does per step: the output drive, the loss, the recording."""
        return self.student.net.layer_sizes[-1] * self.student.B * COST_NEURON + 1000.0

    def layer_owner(self, parts):
        """Which part (thread, 0 or 1) steps every student layer when a step is split in
        ``parts`` ≤ 2: the split of the layers that balances :meth:`layer_costs` best, part
        0 keeping the output layer (it computes the output drive, the loss and records).
        Any split gives the same numbers (see :func:`gle_core._kernel._net_step`); only the
        time depends on it.

        Returns
        -------
        array of int64, one entry per layer
        """
        L = self.student.net.n_layers
        parts = min(int(parts), 2) if L > 1 else 1
        got = self._split.get(parts)
        if got is not None:
            return got
        own = np.zeros(L, np.int64)
        if parts == 2:
            cost = self.layer_costs()
            extra = self._main_extra_ns()
            if L - 1 <= 16:            # every split of the hidden layers
                best = None
                for mask in range(1 << (L - 1)):
                    one = np.array([(mask >> l) & 1 for l in range(L - 1)] + [0], bool)
                    worst = max(cost[~one].sum() + extra, cost[one].sum())
                    if best is None or worst < best[0]:
                        best = (worst, one)
                own[best[1]] = 1
            else:                      # the largest first to the lighter part
                load = [cost[L - 1] + extra, 0.0]
                for l in sorted(range(L - 1), key=lambda l: -cost[l]):
                    p = int(load[1] < load[0])
                    own[l] = p
                    load[p] += cost[l]
        self._split[parts] = own
        return own

    def matches(self, network, teacher, optimizer, active, probes):
        """Is this plan still the structure of these parts?"""
        if not self.student.matches(network):
            return False
        if (teacher is None) != (self.teacher is None) or \
                (teacher is not None and not self.teacher.matches(teacher)):
            return False
        return self.opt.matches(optimizer, active) and self.probes.matches(probes)

    def pull(self):
        """Before a call: re-pack states replaced since the last call, read moments and
        probe counts."""
        self.student.refresh_states()
        if self.teacher is not None:
            self.teacher.refresh_states()
        self.opt.pull()
        self.probes.pull()

    def push(self, done, x_last, has_target):
        """After a call: publish states, moments and probe counts."""
        self.student.cur = int(self.res[R_CUR])
        self.student.publish(done, x_last, has_target)
        if self.teacher is not None:
            self.teacher.cur = int(self.res[R_TEACHER_CUR])
            self.teacher.publish(done, x_last, False)
        self.opt.push()
        self.probes.push()

    def name_bad_state(self, which, t, detail):
        """A SimulationDiverged naming the first non-finite would-be state of a network."""
        from .errors import SimulationDiverged
        packed = self.student if which == "student" else self.teacher
        nxt = 1 - packed.cur
        L = packed.net.n_layers
        for var, name in enumerate(VAR_NAMES):
            for l in range(L):
                a = packed.layer_view(packed.S, nxt, var, l)
                if not np.all(np.isfinite(a)):
                    if var == V_D and l == L - 1:
                        name = "output_drive"
                    return SimulationDiverged(name, l + 1, t,
                                              float(a[~np.isfinite(a)].flat[0]), detail)
        return SimulationDiverged("u", 1, t, float("nan"), detail)


class KernelTape:
    """Where the kernel writes one window of the windowed rule (truncated BPTT).

    ``T[0]`` is the student's state at the window's start, ``T[i + 1]`` the state after its
    step ``i`` (layout of ``S[cur]``); ``Y[i]`` the step's target (kernel layout) when
    ``has_y[i]``; ``loss[i]`` its loss. :attr:`pos` steps are filled.
    """

    def __init__(self, packed, steps, n_out):
        self.packed = packed
        B, N = packed.B, packed.N
        self.T = np.empty((steps + 1, N_VARS, B * N))
        self.T[0] = packed.S[packed.cur]
        self.Y = np.zeros((steps, n_out * B))
        self.has_y = np.zeros(steps, np.int64)
        self.loss = np.full(steps, np.nan)
        self.pos = 0

    def snapshot(self, i, names):
        """State ``i`` of ``T`` as a :class:`~gle_core.adjoint.WindowTape` snapshot: per
        name of ``names`` the per-layer (batch, n_ℓ) views (``output_drive``: one array)."""
        pk, L = self.packed, self.packed.net.n_layers
        out = []
        for name in names:
            if name == "output_drive":
                out.append(pk.layer_view(self.T, i, V_D, L - 1))
            elif name == "feedback":
                out.append([pk.layer_view(self.T, i, V_D, l) for l in range(L - 1)])
            else:
                var = VAR_NAMES.index(name)
                out.append([pk.layer_view(self.T, i, var, l) for l in range(L)])
        return out


def kernel_layout(block, kind, n_channels, batch, one_hot=False):
    """A block of samples ``(m, batch, n)`` as the kernel's neuron-major ``(m, n * batch)``.

    ``kind`` names the block in errors. Integer labels ``(m, batch)`` become one-hot rows
    when ``one_hot`` (cross-entropy targets).
    """
    y = np.asarray(block)
    m = len(y)
    if y.ndim == 3 and y.dtype.kind == "f":
        try:
            y = np.broadcast_to(y, (m, batch, n_channels))
        except ValueError:
            raise Unsupported(f"{kind} of shape {y.shape[1:]}") from None
    elif y.ndim == 2 and y.dtype.kind in "iu" and one_hot:
        y = np.eye(n_channels)[y]
    else:
        raise Unsupported(f"{kind} of shape {y.shape[1:]} and dtype {y.dtype}")
    return np.array(np.swapaxes(y, 1, 2), dtype=float, order="C").reshape(m, n_channels * batch)
