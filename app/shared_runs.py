"""Identical sessions share one simulation until they differ.

When a class opens the teacher's link within seconds, every visitor's session is the same
experiment: the same preset, seed and control values, started at t = 0. Simulating it once
per visitor would spend the server's CPU on identical numbers. Within one server process,
sessions that would start the same simulation within :data:`JOIN_WITHIN` seconds of each
other run it once, as a :class:`SharedRun`:

* the run's simulator (the teacher's rates among its records), the recorded history, the
  phase readout and the gradient alignment are the same objects for every member; a
  member's frame advances the run to the wall clock unless another member did since this
  member's last frame (and at most every :data:`ADVANCE_EVERY` seconds): about once per
  frame period for the whole run, and each member streams the samples it has not yet shown;
* the phase fit and the λ overlay are computed once for all members and reused for
  :data:`REUSE_FOR` seconds (they are refreshed a few times a second anyway);
* a member leaves with its own copy (:meth:`gle_core.Simulator.copy`: the same numbers from
  then on) at its first change of anything the simulation or its readout depends on — a
  slider, a switch, pause, step, reset, a new preset — so a change never reaches another
  visitor, and a session that leaves carries on exactly where the run was.

A member that joins late sees the run at its current time (at most ``JOIN_WITHIN`` seconds
of wall time in) with the traces of the window already there. Only a session's very first
frame may join: after a reset or a new preset it runs its own simulation from t = 0. Sharing is for served
sessions only (``gle-lab`` turns it off with ``--no-shared-runs``, or
``GLE_LAB_NO_SHARED_RUNS=1``), and off when Panel runs callbacks on several threads.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import time
import weakref

from gle_core.network import PARAMETER_KINDS

#: a run takes new members for this long after it began (s of wall time)
JOIN_WITHIN = 30.0
#: the run is advanced to the wall clock at most this often (s): members' frames in between
#: stream what the last advance produced
ADVANCE_EVERY = 0.010
#: a phase fit or λ overlay computed for one member serves the others for this long (s)
REUSE_FOR = 0.25
#: LabState parameters whose change makes a member leave (with its own copy)
LEAVE_ON = ("preset", "seed", "neuron", "tau_m", "tau_r", "weight", "waveform", "omega",
            "amplitude", "learn_W", "learn_b", "learn_tau_m", "learn_tau_r", "lr", "beta",
            "gamma", "error_mode", "am_window", "speed", "playing")
#: the parameters a run's members agree on (with the network's own values)
KEY_PARAMS = tuple(n for n in LEAVE_ON if n != "playing")

_runs = {}          # key -> the newest SharedRun of that key (older ones live on with members)
log = logging.getLogger("gle_lab.shared_runs")


def enabled():
    """Whether sessions may share runs in this process (environment switch)."""
    return not os.environ.get("GLE_LAB_NO_SHARED_RUNS")


def run_key(state):
    """What makes two sessions' simulations identical from t = 0: the controls' values and
    the networks' parameters (a link's or a lesson's values included), the rule and rates."""
    sim = state.sim
    digest = hashlib.sha1()
    for net in (sim.network, sim.teacher):
        if net is None:
            continue
        for kind in PARAMETER_KINDS:
            for a in net.parameters(kind):
                digest.update(a.tobytes())
        digest.update(repr((net.beta, net.gamma, net.error_mode, net.dt)).encode())
    return (tuple(getattr(state, n) for n in KEY_PARAMS), digest.hexdigest(),
            sim.rule.name, repr(sim.lr), repr(sorted(sim.learn.items())), sim.seed,
            sim.teacher is not None)


class SharedRun:
    """One simulation run for the sessions (:class:`gle_lab.state.LabState`) that joined it.

    Holds the run's simulator, history and readout (the members point at the
    same objects) and the alignment bookkeeping that :meth:`LabState.advance` keeps per run.
    """

    def __init__(self, key, state):
        self.key = key
        self.sim = state.sim
        if state.history is None:
            state.history = state.new_history()
        self.history = state.history
        self.readout = state.readout
        self.speed = float(state.speed)
        self.born = self.clock = time.monotonic()   # wall time of t = 0 (moves on after gaps)
        self.last_advance = -math.inf
        self.advances = 0                   # advances that simulated steps, so far
        self.members = weakref.WeakSet()
        self.failure = None                 # the exception a divergence raised, if any
        # gradient alignment bookkeeping (LabState._measure_alignment), per run
        self._align = self._align_future = None
        self._align_last = -math.inf
        self.alignment = float("nan")
        self._reused = {}                   # name -> (wall time, value)

    def joinable(self, now):
        return self.failure is None and now - self.born <= JOIN_WITHIN

    def steps_due(self, now, dt, max_gap, max_steps):
        """Steps to simulate so that the run's time follows the wall clock (0 if it was
        advanced less than :data:`ADVANCE_EVERY` ago). Time beyond ``max_gap`` seconds since
        the last advance is dropped, as a single session drops it."""
        if now - self.last_advance < ADVANCE_EVERY:
            return 0
        if self.last_advance > -math.inf and now - self.last_advance > max_gap:
            self.clock += now - self.last_advance - max_gap
        self.last_advance = now
        target = int((now - self.clock) * self.speed / dt)
        n = target - self.sim.n_steps
        if n > max_steps:
            self.clock += (n - max_steps) * dt / self.speed
            n = max_steps
        n = max(n, 0)
        self.advances += n > 0
        return n

    def reuse(self, name, compute, now=None):
        """``compute()``, or the value a member computed less than :data:`REUSE_FOR` ago
        (counted from when it was ready: a computation slower than that is still reused)."""
        clock = now is None
        now = time.monotonic() if clock else now
        hit = self._reused.get(name)
        if hit is not None and now - hit[0] < REUSE_FOR:
            return hit[1]
        value = compute()
        self._reused[name] = (time.monotonic() if clock else now, value)
        return value


def join(state, now=None):
    """The run ``state`` (at t = 0, unchanged since built) joins: an identical one begun less
    than :data:`JOIN_WITHIN` s ago, or a new one it founds. Returns the run."""
    now = time.monotonic() if now is None else now
    key = run_key(state)
    for k in [k for k, r in _runs.items() if not r.joinable(now)]:
        del _runs[k]                        # members keep theirs; no new member will join
    run = _runs.get(key)
    if run is None:
        run = _runs[key] = SharedRun(key, state)
    run.members.add(state)
    if len(run.members) > 1:
        log.info("session joined a shared run (%d sessions on it)", len(run.members))
    return run


def leave(state, run):
    """``state`` leaves ``run``; a run without members is forgotten."""
    run.members.discard(state)
    if not run.members and _runs.get(run.key) is run:
        del _runs[run.key]


def live_runs():
    """The runs new members can still join (for tests and the session log)."""
    return list(_runs.values())
