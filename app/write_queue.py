"""Every message Panel queues for a busy websocket is sent, the last one too (Panel 1.9).

A model change made under ``pn.io.unlocked()`` while the browser's socket is busy (Bokeh is
writing one of its own messages, or Panel is still writing an earlier queued one) is turned
into a PATCH-DOC message at once and queued (``panel.io.document.schedule_write_events``); a
task (``_dispatch_msgs``) takes the queue, awaits the writes and then lifts the "queue in
use" block. Panel 1.9 lifts it without looking whether another message was queued while it
awaited the writes. That message's own task has meanwhile found the block lifted and
returned, so it waits in the queue until some later change is queued behind it.

While frames stream that delays a message by one frame. When nothing follows, it is never
sent: the change of the Pause click (the button's "Play" label, the clock at the paused
time) stayed in the server while the page waited for it (seen as a CI failure of
``tests/ui/test_browser.py::test_pause_play_reset``; not reproduced in 17 runs of it alone).

:func:`install` wraps ``_dispatch_msgs``: when it has lifted the block and messages are
still queued, it takes the block again and sends them. Guarded by
:func:`gle_lab.compat.patch_enabled` ("panel_write_queue"). ``tests/app/test_write_queue.py``
shows the lost message with Panel's own dispatcher and its delivery with this one.
"""
from __future__ import annotations

from .compat import patch_enabled

__all__ = ["install", "installed", "original_dispatch"]

_original = None


async def _dispatch_msgs(doc):
    from panel.io import document as pdoc
    await _original(doc)
    if doc in pdoc._WRITE_BLOCK:
        return                              # still in use: its task runs again
    queued = pdoc._WRITE_MSGS.get(doc)
    if queued:
        pdoc._WRITE_BLOCK[doc] = True
        pdoc._dispatch_write_task(doc, pdoc._dispatch_msgs, doc)
    elif queued is not None:
        # an empty queue left behind would send every later change of this document the
        # slow way (``unlocked()`` treats a queue's presence as a busy socket)
        del pdoc._WRITE_MSGS[doc]


def install():
    """Use the dispatcher that sends the whole queue in this process (idempotent)."""
    global _original
    if _original is not None or not patch_enabled("panel_write_queue"):
        return
    from panel.io import document as pdoc
    _original = pdoc._dispatch_msgs
    pdoc._dispatch_msgs = _dispatch_msgs


def installed():
    return _original is not None


def original_dispatch():
    """Panel's own ``_dispatch_msgs``, whether or not the patch is installed."""
    from panel.io import document as pdoc
    return _original or pdoc._dispatch_msgs
