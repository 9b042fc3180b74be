"""When a serving process runs full collections of Python's cyclic garbage collector.

CPython collects its oldest generation by itself once the objects promoted there since the
last full collection exceed a quarter of those it holds. Building a session promotes tens of
thousands (a session is ~50 000 tracked objects), so while a class arrives full collections
come one after another, each walking every live session (0.2-0.4 s of a ~1.3 s session
build here, 0.5-1 s with 10-20 live sessions) while the newcomers wait for their first
screen. And a closed session is freed by a full collection only (its objects form cycles):
Bokeh runs one when it destroys the session's document, but a stopped periodic callback
still holds the session then (see :class:`gle_lab.capacity.IdleWatch`), so it waited for
the next automatic one.

``gle-lab`` therefore (:func:`install`, before ``--num-procs`` forks) freezes the start-up
objects out of every collection (``gc.freeze``), and each serving process
(:class:`FullCollections`, checked once a second on its event loop):

* holds CPython's automatic full collections while visitors arrive and, with more than
  :data:`CHEAP_LIVE` sessions live, while their later views are built (``arriving``:
  :func:`gle_lab.main.sessions_settling`), for at most
  :data:`MAX_DEFER_S` (young collections go on; the oldest generation's threshold is out of
  reach meanwhile, then back). Released after the arrival alone, the builds of the later
  views that follow it set off a full collection every few sessions (measured: 40 visitors
  over 10 s on two processes, 4-5 of 0.5-0.9 s each per process in the next minute, each a
  stall of every session's frames); held through them, there is one;
* leaves the closed sessions' collection to this schedule, not Panel's own (a full
  collection a few seconds after each document is destroyed, found nothing left after
  this one: 0.5-0.7 s each);
* runs a full collection :data:`AFTER_CLOSE_S` after a session closed (not while visitors
  arrive): the closed sessions' memory is returned within seconds. Sessions that closed
  before an arrival are collected when it begins if few sessions are live then
  (:data:`CHEAP_LIVE`), rather than after the class's sessions are built.

Young collections keep CPython's thresholds: with rarer ones (a first threshold of 20 000) a
closed session's garbage waited for a full collection and 14 rounds of 4 visitors took a
process from 292 to 502 MB (flat at ~310 MB with CPython's). Otherwise CPython's own rule
applies (ten sessions streaming for 40 s here waited at most 122 ms for a frame: no full
collection stopped them).

``GLE_LAB_GC=freeze`` keeps the freeze only; ``GLE_LAB_GC=default`` changes nothing (A/B:
``benchmarks/bench_load.py``, ``benchmarks/bench_session.py``).
"""
from __future__ import annotations

import gc
import logging
import os
import time

log = logging.getLogger("gle_lab.collector")

#: a full collection this long after the first session close not yet collected (a class
#: leaving closes its sessions within seconds: one collection frees them all)
AFTER_CLOSE_S = 5.0
#: automatic full collections are held for arriving visitors at most this long (a class's
#: arrival, ~10 s, and the later views of its sessions, ~10-20 s more)
MAX_DEFER_S = 45.0
#: how often the event loop looks
CHECK_MS = 1000
#: sessions closed before an arrival are collected as it begins if at most this many are
#: live then (a full collection walks every live session: ~50 ms each here)
CHEAP_LIVE = 4
#: the oldest generation's threshold while held: never reached (it counts young collections)
NEVER = 2**31 - 1


def mode():
    """``"scheduled"`` (the default), ``"freeze"`` or ``"default"`` (``GLE_LAB_GC``)."""
    value = os.environ.get("GLE_LAB_GC", "").strip().lower()
    return value if value in ("freeze", "default") else "scheduled"


class FullCollections:
    """Full collections at times that suit a server (see the module's docstring).

    ``clock``: seconds (``time.monotonic``); ``arriving(now)``: whether visitors are
    arriving; ``lingering()``: how many closed sessions are still in memory; ``live()``: how
    many sessions are open."""

    def __init__(self, after_close=AFTER_CLOSE_S, max_defer=MAX_DEFER_S,
                 clock=time.monotonic, arriving=None, lingering=None, live=None):
        self.after_close, self.max_defer = after_close, max_defer
        self.clock, self.arriving, self.live = clock, arriving, live
        #: ``lingering()``: closed sessions still in memory (logged after a collection)
        self.lingering = lingering
        self.closed_at = None           # the first session close not yet collected
        self.held_since = None          # automatic full collections held since
        self.threshold = None           # the oldest generation's own threshold, while held
        self.collections, self.seconds, self.freed = 0, 0.0, 0

    def session_opened(self, now=None):
        """A visitor arrives: automatic full collections are held from now (before the
        session's build, which would otherwise trigger them)."""
        now = self.clock() if now is None else now
        if self.held_since is None:
            if self.closed_at is not None and self.live is not None and \
                    self.live() <= CHEAP_LIVE:
                # sessions closed before this arrival (a teacher trying the link): collected
                # now, while few are live, not after the class has built its own sessions
                # (then ~1 s per process with 20 live, every stream waiting)
                freed, took = self.collect()
                log.info("full garbage collection as visitors arrive: %d objects freed in "
                         "%.2f s", freed, took)
            self.held_since = now
        self._hold(now - self.held_since < self.max_defer)

    def session_closed(self, now=None):
        """A session closed; later closes do not postpone its collection (a steady stream
        of visitors leaving must not keep the first one's memory)."""
        if self.closed_at is None:
            self.closed_at = self.clock() if now is None else now

    def _hold(self, on):
        young, middle, old = gc.get_threshold()
        if on and self.threshold is None:
            self.threshold = old
            gc.set_threshold(young, middle, NEVER)
        elif not on and self.threshold is not None:
            gc.set_threshold(young, middle, self.threshold)
            self.threshold = None

    def check(self, now=None):
        """Hold or release the automatic full collections; run the one a closed session
        needs when it is due and nothing is held. Returns whether a collection ran."""
        now = self.clock() if now is None else now
        arriving = self.arriving is not None and self.arriving(now)
        if arriving and self.held_since is None:
            self.held_since = now
        elif not arriving:
            self.held_since = None
        # held at most max_defer: a class that never stops arriving still gets its memory
        hold = self.held_since is not None and now - self.held_since < self.max_defer
        self._hold(hold)
        if hold or self.closed_at is None or now - self.closed_at < self.after_close:
            return False
        freed, took = self.collect()
        left = "" if self.lingering is None else f"; {self.lingering()} closed still in memory"
        log.info("full garbage collection after sessions closed: %d objects freed in %.2f s%s",
                 freed, took, left)
        return True

    def collect(self):
        """Run a full collection now; returns (objects freed, seconds)."""
        t0 = time.perf_counter()
        freed = gc.collect()
        took = time.perf_counter() - t0
        self.freed += freed
        self.seconds += took
        self.collections += 1
        self.closed_at = None
        return freed, took

    def stop(self):
        """CPython's own rule again."""
        self._hold(False)
        self.held_since = None


#: this process' schedule (None: :func:`install` not called, or not in this mode)
_schedule = None
_started_in = None                      # pid whose event loop checks the schedule


def install():
    """Before serving: freeze the start-up objects and, unless ``GLE_LAB_GC`` says
    otherwise, create this process' :class:`FullCollections` (:func:`start` checks it in
    each serving process). Returns the mode."""
    global _schedule
    m = mode()
    if m == "default":
        return m
    gc.collect()
    gc.freeze()
    if m == "scheduled":
        _schedule = FullCollections()
    return m


def schedule():
    """This process' :class:`FullCollections`, or None."""
    return _schedule


def start(arriving=None, lingering=None, live=None):
    """Check the schedule on this process' event loop, once per process (each of
    ``--num-procs``' forks starts its own); a no-op without :func:`install`'s schedule."""
    global _started_in
    if _schedule is None or _started_in == os.getpid():
        return False
    from tornado.ioloop import PeriodicCallback
    _schedule.arriving, _schedule.lingering, _schedule.live = arriving, lingering, live
    _started_in = os.getpid()
    hand_over_panel_collections()
    PeriodicCallback(_schedule.check, CHECK_MS).start()
    return True


def hand_over_panel_collections():
    """Panel 1.9 schedules a full collection a few seconds after it destroys a session's
    document (``panel.io.document._garbage_collect``); with this process' schedule that is
    its job (:meth:`FullCollections.session_closed`: one collection for the sessions that
    closed, not while visitors arrive). Returns whether Panel's was replaced."""
    from gle_lab.compat import patch_enabled
    if _schedule is None or not patch_enabled("panel_scheduled_gc"):
        return False
    import panel.io.document as panel_document
    if not callable(getattr(panel_document, "_garbage_collect", None)):
        return False
    panel_document._garbage_collect = session_closed
    return True


def session_opened():
    """A session is being built (automatic full collections held meanwhile)."""
    if _schedule is not None:
        _schedule.session_opened()


def session_closed():
    """A session was destroyed: its garbage is collected :data:`AFTER_CLOSE_S` later."""
    if _schedule is not None:
        _schedule.session_closed()
