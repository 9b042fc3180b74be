"""The served frame timer (gle_lab.frame_loop): keeps to its period without skipping periods."""
import asyncio
import types

import panel as pn
import pytest

from gle_lab import frame_loop
from gle_lab.frame_loop import FrameLoop


class Context:
    """A served document's session context: locks, and can be destroyed."""

    def __init__(self, doc):
        self.doc, self.locked, self.destroyed = doc, 0, False

    async def with_locked_document(self, func):
        self.locked += 1
        func(self.doc)


class Doc:
    def __init__(self):
        self.session_context = Context(self)


@pytest.fixture
def clock(monkeypatch):
    """A fake monotonic clock advanced by the callbacks; the loop's sleeps are recorded and
    advance it too (nothing waits in real time)."""
    now, sleeps = [100.0], []
    real_sleep = asyncio.sleep

    async def sleep(s):
        sleeps.append(s)
        now[0] += s
        await real_sleep(0)
    monkeypatch.setattr(frame_loop.time, "monotonic", lambda: now[0])
    # the loop's own asyncio only: the tests' awaits are not its sleeps
    monkeypatch.setattr(frame_loop, "asyncio", types.SimpleNamespace(
        sleep=sleep, get_running_loop=asyncio.get_running_loop,
        CancelledError=asyncio.CancelledError))
    return now, sleeps


def run(loop_obj, until):
    async def main():
        loop_obj.start()
        while not until():
            await asyncio.sleep(0)
        loop_obj.stop()
    asyncio.run(main())


def test_a_late_frame_is_followed_at_once_and_a_quick_one_after_the_period(clock):
    now, sleeps = clock
    doc = Doc()
    took = iter([0.010, 0.045, 0.020, 0.050, 0.005] + [0.001] * 100)
    seen = []

    def frame():
        seen.append(pn.state.curdoc)
        now[0] += next(took)
    fl = FrameLoop(frame, 30, doc)
    run(fl, lambda: fl.calls >= 5)
    # period 30 ms: 10 ms of work → wait 20; 45 ms (late) → at once; 20 → 10; 50 → at once
    # (a grid timer would wait for its next 30 ms mark: 15 and 10 ms of idle core)
    assert sleeps[:5] == pytest.approx([0.020, 0.0, 0.010, 0.0, 0.025])
    assert doc.session_context.locked == fl.calls        # every frame with the lock held
    assert all(d is doc for d in seen)                   # and as Panel's current document
    assert not fl.running


def test_an_error_is_reported_and_the_frames_go_on_until_the_session_is_destroyed(clock):
    now, _ = clock
    doc = Doc()
    errors, calls = [], [0]

    def frame():
        calls[0] += 1
        now[0] += 0.001
        if calls[0] == 2:
            raise ValueError("one bad frame")
        if calls[0] == 4:
            doc.session_context.destroyed = True
    fl = FrameLoop(frame, 30, doc, on_error=lambda exc, d: errors.append((str(exc), d)))

    async def main():
        fl.start()
        for _ in range(200):
            await asyncio.sleep(0)
        return fl.running
    still_running = asyncio.run(main())
    assert errors == [("one bad frame", doc)]
    assert calls[0] == 4 and not still_running           # stopped with its session


def test_stop_and_start_again():
    doc = Doc()
    fl = FrameLoop(lambda: None, 30, doc)

    async def main():
        fl.start()
        fl.start()                                       # idempotent
        await asyncio.sleep(0.05)
        fl.stop()
        n = fl.calls
        await asyncio.sleep(0.05)
        assert fl.calls == n and not fl.running          # nothing after stop
        fl.start()
        await asyncio.sleep(0.05)
        fl.stop()
        return n, fl.calls
    n, m = asyncio.run(main())
    assert n >= 1 and m > n
