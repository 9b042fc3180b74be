"""A websocket's messages leave at once: ``TCP_NODELAY`` on every Bokeh websocket.

Tornado leaves Nagle's algorithm on for a websocket unless its handler calls
``set_nodelay(True)`` (its documentation: small messages "may be delayed and/or combined";
with delayed ACKs this costs tens of milliseconds), and Bokeh 3.9's ``WSHandler`` never
calls it. A Bokeh message is several websocket frames (header, metadata, content, then a
header and a payload per binary buffer: a τ change's new Fourier curves are 17 frames), so
after the first small segment the rest waited for the browser's delayed ACK. Measured
(2026-12-02, Chromium 156, loopback, this 2-core machine; τr changed in the page, time until
the new curves arrive in it, medians of 14, three alternating runs): paused 50–54 ms with
Nagle, 24–32 ms without; streaming 52–62 ms → 40–48 ms; slider → painted at 1280×720
streaming 104–118 → 90–97 ms. The server wrote the curves 11–15 ms after the change
arrived in every case; the rest was the wait in TCP.

:func:`install` wraps ``WSHandler.open`` (Bokeh 3.9) to set the flag first: Tornado's public
``set_nodelay``, on Bokeh's private handler class, hence guarded by
:func:`gle_lab.compat.patch_enabled` ("bokeh_ws_nodelay").
"""
from __future__ import annotations

from .compat import patch_enabled

__all__ = ["install"]


def install():
    """Set ``TCP_NODELAY`` on every Bokeh websocket of this process (idempotent)."""
    if not patch_enabled("bokeh_ws_nodelay"):
        return False
    from bokeh.server.views.ws import WSHandler
    if getattr(WSHandler.open, "_gle_nodelay", False):
        return True
    original = WSHandler.open

    def open(self, *args, **kwargs):
        try:
            self.set_nodelay(True)
        except Exception:                 # noqa: BLE001  (a stream already closed)
            pass
        return original(self, *args, **kwargs)
    open._gle_nodelay = True
    open.__wrapped__ = original
    WSHandler.open = open
    return True

