"""A served session's frame timer that keeps to its period without skipping whole periods.

Bokeh runs a session's periodic callback on Tornado's ``PeriodicCallback``, which keeps to a
fixed grid: a call that comes late (the process is busy with other sessions) is followed by
the next grid point, so a process whose sessions' frames take a little longer than one
period in all gives every session a frame only every *second* period (33 ms → 66 ms,
15 frames/s) and leaves the rest of the core idle; the frame rate falls in steps (30, 15,
10, 7.5 frames/s) instead of smoothly with the load.

:class:`FrameLoop` repeats like Panel's unscoped ``PeriodicCallback`` (``_async_repeat``: the
next call ``period`` after the start of the last one, at once if that has passed) but runs
each call the way Bokeh runs a session callback: with the session's document locked
(``BokehSessionContext.with_locked_document``, Bokeh's public API) and the document as
Panel's current document. A busy process then shares its core evenly: every session gets a
frame per round of all sessions' frames.
"""
from __future__ import annotations

import asyncio
import logging
import time

from panel.io.state import set_curdoc

log = logging.getLogger("gle_lab.frames")


class FrameLoop:
    """Call ``callback()`` every ``period_ms`` for the served document ``doc``.

    Interface of the timer the dashboard used before (``start``, ``stop``, ``running``).
    ``on_error(exc, doc)`` reports an exception of a call; the loop goes on.
    """

    def __init__(self, callback, period_ms, doc, on_error=None):
        self.callback = callback
        self.period = period_ms / 1000.0
        self.doc = doc
        self.on_error = on_error
        self.running = False
        self.calls = 0
        self._task = None

    def start(self):
        if self.running:
            return
        self.running = True
        self._task = asyncio.get_running_loop().create_task(self._repeat())

    def stop(self):
        self.running = False
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def _repeat(self):
        ctx = self.doc.session_context
        while self.running and ctx is not None and not ctx.destroyed:
            began = time.monotonic()
            try:
                await ctx.with_locked_document(self._call)
            except asyncio.CancelledError:
                raise
            except Exception as exc:                      # noqa: BLE001 — one session's
                if self.on_error is None:
                    log.exception("frame callback failed")
                else:
                    self.on_error(exc, self.doc)
            # sleep(0) when late: the other sessions' frames and the socket writes go first
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - began)))
        self.running = False

    def _call(self, doc):
        if not self.running:
            return
        self.calls += 1
        with set_curdoc(doc):
            self.callback()
