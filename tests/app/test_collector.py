"""When a serving process runs its full garbage collections (gle_lab.collector)."""
import gc
import weakref

import pytest

from gle_lab.collector import NEVER, FullCollections


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Cycle:
    pass


@pytest.fixture
def no_automatic_gc():
    """Only the schedule collects: a cycle made in the test lives until it runs. CPython's
    thresholds are restored afterwards."""
    was, thresholds = gc.isenabled(), gc.get_threshold()
    gc.disable()
    yield
    gc.set_threshold(*thresholds)
    if was:
        gc.enable()


def garbage_cycle():
    a, b = Cycle(), Cycle()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_closed_sessions_cycles_are_freed_after_close_not_before(no_automatic_gc):
    clock = Clock()
    fc = FullCollections(after_close=5, clock=clock)
    ref = garbage_cycle()
    fc.session_closed()
    clock.now += 4.9
    assert fc.check() is False and ref() is not None
    clock.now += 0.2
    assert fc.check() is True
    assert ref() is None
    assert fc.collections == 1 and fc.freed >= 2
    clock.now += 10                                     # nothing closed since
    assert fc.check() is False and fc.collections == 1


def test_later_closes_do_not_postpone_the_first(no_automatic_gc):
    clock = Clock()
    fc = FullCollections(after_close=5, clock=clock)
    ref = garbage_cycle()
    for _ in range(4):                                  # a visitor leaves every 2 s
        fc.session_closed()
        clock.now += 2
        fc.check()
    assert fc.collections == 1 and ref() is None


def test_arrivals_hold_automatic_full_collections_up_to_the_limit(no_automatic_gc):
    clock = Clock()
    arriving = [False]
    fc = FullCollections(after_close=5, max_defer=20, clock=clock,
                         arriving=lambda now: arriving[0])
    own = gc.get_threshold()
    fc.session_opened()                                 # a build starts: held at once
    assert gc.get_threshold() == (own[0], own[1], NEVER)
    arriving[0] = True
    clock.now += 10
    fc.check()
    assert gc.get_threshold()[2] == NEVER
    arriving[0] = False                                 # quiet: CPython's rule again
    clock.now += 1
    fc.check()
    assert gc.get_threshold() == own
    arriving[0] = True                                  # a class that keeps arriving ...
    fc.check()
    clock.now += 19.5
    fc.check()
    assert gc.get_threshold()[2] == NEVER
    clock.now += 0.5                                    # ... is held max_defer at most
    fc.check()
    assert gc.get_threshold() == own
    fc.session_opened()
    assert gc.get_threshold() == own
    fc.stop()
    assert gc.get_threshold() == own


def test_a_closed_session_waits_for_arrivals_then_is_collected(no_automatic_gc):
    clock = Clock()
    arriving = [True]
    fc = FullCollections(after_close=5, max_defer=20, clock=clock,
                         arriving=lambda now: arriving[0])
    ref = garbage_cycle()
    fc.session_closed()
    clock.now += 6
    assert fc.check() is False and ref() is not None    # newcomers first
    clock.now += 20                                     # held 20 s: collected anyway
    assert fc.check() is True and ref() is None
    fc.session_closed()
    clock.now += 5
    arriving[0] = False
    assert fc.check() is True and fc.collections == 2
