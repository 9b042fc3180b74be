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


def test_panel_s_collection_after_a_destroyed_document_is_handed_to_the_schedule(
        monkeypatch, no_automatic_gc):
    """Served by gle-lab, a destroyed document's collection is the schedule's (one, after
    the closes, not while visitors arrive), not Panel's own full collection."""
    import panel.io.document as panel_document

    from gle_lab import collector
    clock = Clock()
    fc = FullCollections(after_close=5, max_defer=20, clock=clock)
    monkeypatch.setattr(collector, "_schedule", fc)
    monkeypatch.setattr(panel_document, "_garbage_collect", panel_document._garbage_collect)
    full = []
    monkeypatch.setattr(gc, "collect", lambda *a: full.append(a) or 0)
    assert collector.hand_over_panel_collections()
    panel_document._garbage_collect()                   # what Panel schedules after a destroy
    assert full == [] and fc.closed_at == clock.now     # noted, not collected
    clock.now += 5
    assert fc.check() and len(full) == 1


def test_without_a_schedule_panel_keeps_its_own_collection(monkeypatch):
    import panel.io.document as panel_document

    from gle_lab import collector
    monkeypatch.setattr(collector, "_schedule", None)
    before = panel_document._garbage_collect
    assert not collector.hand_over_panel_collections()
    assert panel_document._garbage_collect is before


def test_the_hold_lasts_while_served_sessions_build_their_later_views(monkeypatch):
    """With more than a few sessions live, gle-lab holds full collections while a connected
    session's later views are still being built, not only while visitors arrive; a closed
    or completed one does not count; with a few live, only arrivals hold them."""
    from bokeh.document import Document

    from gle_lab import capacity, collector, main
    d = main.Dashboard(preset="phase_inversion", progressive=True)
    doc = Document()
    monkeypatch.setattr(main, "_session_docs", {d: weakref.ref(doc)})
    monkeypatch.setattr(main, "visitors_arriving", lambda now=None, besides=None: False)
    live = [collector.CHEAP_LIVE]
    monkeypatch.setattr(capacity, "live_dashboards", lambda: live[0])
    assert not d.complete and not main.sessions_settling()
    live[0] = collector.CHEAP_LIVE + 1
    assert main.sessions_settling()
    d.complete_layout()
    assert d.complete and not main.sessions_settling()
    d.complete = False
    d.state.sim = None                                  # what closing the session leaves
    assert not main.sessions_settling()


def test_sessions_closed_before_an_arrival_are_collected_as_it_begins_if_few_are_live(
        no_automatic_gc):
    """A teacher tried the link and closed it; the class arrives: that garbage is collected
    when the first visitor arrives (cheap with few sessions live), not after the class's
    sessions are built (every one of them walked). With many live, the schedule waits."""
    clock = Clock()
    live = [1]
    fc = FullCollections(after_close=5, max_defer=20, clock=clock,
                         arriving=lambda now: True, live=lambda: live[0])
    ref = garbage_cycle()
    fc.session_closed()
    clock.now += 2
    fc.session_opened()                                 # the first of an arrival
    assert ref() is None and fc.collections == 1 and fc.closed_at is None
    fc.session_opened()                                 # later ones: nothing more
    assert fc.collections == 1

    fc.stop()
    live[0] = 12
    ref = garbage_cycle()
    fc.session_closed()
    fc.session_opened()                                 # a busy process: held as before
    assert ref() is not None and fc.collections == 1
