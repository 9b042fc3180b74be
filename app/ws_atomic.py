"""Bokeh server messages written to the websocket in one piece.

A Bokeh protocol message is three websocket frames (header, metadata, content) plus two per
binary buffer. The Bokeh server writes them one by one, awaiting each write, so other
callbacks run between its frames; its write lock only orders Bokeh's own messages. Panel
writes every patch (each frame of the dashboard) straight to the socket, past that lock
(``panel.io.document.dispatch_tornado``). When a frame's patch lands between the frames of
a Bokeh message, the browser receives frames of two messages interleaved:

* after a dropped websocket, the page reconnects and the server answers with ``ACK``; a
  frame interleaved with it makes BokehJS close the new connection ("First message was not
  an ACK"), again and again while the session streams: the page stays frozen (issue #11,
  seen when the cut came while the later views were being sent);
* the same can garble a ``PULL-DOC-REPLY`` or any other server message.

:func:`install` makes ``Message.send`` write all of a message's frames in one go, under the
same write lock, before it awaits their completion: nothing can come in between. The frames
and their order on the wire are those of Bokeh's own ``send``. Guarded by
:func:`gle_lab.compat.patch_enabled` (written for Bokeh 3.9's ``Message.send``).
"""
from __future__ import annotations

import json

from gle_lab.compat import patch_enabled

__all__ = ["install", "send_in_one_piece"]

_original_send = None


async def send_in_one_piece(self, conn):
    """``Message.send`` of Bokeh 3.9, its frames written without a pause between them."""
    from tornado.websocket import WebSocketHandler
    if conn is None:
        raise ValueError("Cannot send to connection None")
    if not isinstance(conn, WebSocketHandler) or not hasattr(conn, "write_lock"):
        return await _original_send(self, conn)        # a client connection: Bokeh's own
    frames = [(self.header_json, False), (self.metadata_json, False),
              (self.content_json, False)]
    for buffer in self._buffers:
        frames += [(json.dumps(buffer.ref), False), (buffer.to_bytes(), True)]
    with await conn.write_lock.acquire():
        # tornado's write_message puts the frame on the stream at once and returns a future:
        # every frame is on the stream before the first await
        futures = [WebSocketHandler.write_message(conn, data, binary=binary)
                   for data, binary in frames]
        for future in futures:
            await future
    return sum(len(data) for data, _ in frames)


def install():
    """Use :func:`send_in_one_piece` for every Bokeh message of this process (idempotent;
    no-op on another Bokeh minor version)."""
    global _original_send
    if _original_send is not None or not patch_enabled("bokeh_atomic_messages"):
        return
    from bokeh.protocol.message import Message
    _original_send = Message.send
    Message.send = send_in_one_piece
