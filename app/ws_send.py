"""How a Bokeh message leaves the server: at once, and in one write.

A Bokeh protocol message is several websocket frames: header, metadata and content, then a
header and a payload per binary buffer (a streamed frame of traces: 3–5; a τ change's new
Fourier curves: 17). Two patches on Bokeh 3.9's websocket handler (``WSHandler``), each
guarded by :func:`gle_lab.compat.patch_enabled`:

* ``bokeh_ws_nodelay`` (:func:`install_nodelay`): ``TCP_NODELAY`` on every websocket.
  Tornado leaves Nagle's algorithm on unless the handler calls ``set_nodelay(True)`` (its
  documentation: small messages "may be delayed and/or combined"), and Bokeh's never does,
  so after a message's first small segment the rest waited for the browser's delayed ACK.
  Measured (2026-12-02, Chromium 156, loopback, this 2-core machine; τr changed in the page,
  time until the new curves arrive in it, medians of 14, three alternating runs): paused
  50–54 ms with Nagle, 24–32 ms without; streaming 52–62 → 40–48 ms.
* ``bokeh_ws_one_write`` (:func:`install_one_write`): a message's frames written to the
  socket together. Bokeh's ``Message.send`` awaits Tornado's ``write_message`` once per
  frame, and each is a socket ``send`` (with ``TCP_NODELAY``: a TCP segment each) and an
  asyncio task that the event loop runs before the next frame goes out. Here the frames are
  built as RFC 6455 server frames (final, unmasked: what Tornado writes for a server without
  compression) and written with one ``IOStream.write``; a connection with per-message
  compression keeps Bokeh's own path.
"""
from __future__ import annotations

import json
import struct

from .compat import patch_enabled

__all__ = ["install", "install_nodelay", "install_one_write", "websocket_frame"]

#: RFC 6455 opcodes of the frames a Bokeh message uses
TEXT, BINARY = 0x1, 0x2


def install():
    """Both patches (idempotent); the names of those installed."""
    return [name for name, done in (("bokeh_ws_nodelay", install_nodelay()),
                                    ("bokeh_ws_one_write", install_one_write())) if done]


def install_nodelay():
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


def websocket_frame(opcode, payload):
    """One final, unmasked RFC 6455 frame (section 5.2): what a server sends."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def message_frames(message):
    """A Bokeh message's frames, in the order ``Message.send`` writes them."""
    frames = [websocket_frame(TEXT, message.header_json.encode()),
              websocket_frame(TEXT, message.metadata_json.encode()),
              websocket_frame(TEXT, message.content_json.encode())]
    for buffer in message.buffers:
        frames.append(websocket_frame(TEXT, json.dumps(buffer.ref).encode()))
        frames.append(websocket_frame(BINARY, bytes(buffer.to_bytes())))
    return frames


def install_one_write():
    """Write each Bokeh message's frames with one socket write (idempotent)."""
    if not patch_enabled("bokeh_ws_one_write"):
        return False
    from bokeh.server.views import ws
    from tornado.iostream import StreamClosedError
    handler = ws.WSHandler
    if getattr(handler.send_message, "_gle_one_write", False):
        return True
    original = handler.send_message

    async def send_message(self, message):
        conn = self.ws_connection
        if conn is None or getattr(conn, "_compressor", None) is not None \
                or getattr(conn, "mask_outgoing", False):
            return await original(self, message)
        if ws._message_test_port is not None:
            ws._message_test_port.sent.append(message)
        with await self.write_lock.acquire():
            if conn.is_closing():
                ws.log.warning("Failed sending message as connection was closed")
                return None
            data = b"".join(message_frames(message))
            try:
                await conn.stream.write(data)
            except StreamClosedError:
                # on_close() is / will be called anyway (as in Bokeh's send_message)
                ws.log.warning("Failed sending message as connection was closed")
        return None
    send_message._gle_one_write = True
    send_message.__wrapped__ = original
    handler.send_message = send_message
    return True
