"""gle_lab.ws_atomic: a Bokeh server message's frames reach the client in one piece, even
when Panel writes a patch while the message is being sent (a reconnecting page's ACK)."""
import asyncio

import numpy as np
import panel.io.document as pdoc
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh.protocol import Protocol
from bokeh.protocol.message import Message
from tornado.httpserver import HTTPServer
from tornado.locks import Lock
from tornado.netutil import bind_sockets
from tornado.web import Application
from tornado.websocket import WebSocketHandler, websocket_connect

import gle_lab.main  # noqa: F401  (installs the patches)
from gle_lab import ws_atomic


class _Handler(WebSocketHandler):
    """What Bokeh's server WSHandler adds to tornado's: a write lock, locked writes."""
    opened = None

    def initialize(self):
        self.write_lock = Lock()

    async def write_message(self, message, binary=False, locked=True):
        if locked:
            with await self.write_lock.acquire():
                await super().write_message(message, binary)
        else:
            await super().write_message(message, binary)

    def open(self):
        type(self).opened.set_result(self)


class _Conn:
    def __init__(self, socket):
        self._socket, self.protocol = socket, Protocol()


def _patch_message():
    doc = Document()
    src = ColumnDataSource(data={"x": [0.0]})
    doc.add_root(src)
    events = []
    doc.on_change(events.append)
    src.stream({"x": [1.0, 2.0]})
    return Protocol().create("PATCH-DOC", events)


def _reply_with_buffer():
    """A server message with a binary buffer (5 frames)."""
    doc = Document()
    doc.add_root(ColumnDataSource(data={"x": np.arange(5.0)}))
    msg = Protocol().create("PULL-DOC-REPLY", "req-1", doc)
    assert len(msg.buffers) == 1
    return msg


async def _race(send, message, patch):
    """Send ``message`` with ``send`` while Panel's dispatch writes ``patch`` as soon as the
    loop gets a turn; the frames the client receives, in order."""
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    _Handler.opened = asyncio.get_running_loop().create_future()
    server = HTTPServer(Application([(r"/ws", _Handler)]))
    server.add_sockets(sockets)
    client = await websocket_connect(f"ws://127.0.0.1:{port}/ws")
    handler = await _Handler.opened
    dispatch = getattr(pdoc.dispatch_tornado, "__wrapped__", pdoc.dispatch_tornado)
    asyncio.get_running_loop().call_soon(lambda: dispatch(_Conn(handler), msg=patch))
    await send(message, handler)
    n = 3 + 2 * len(message.buffers) + 3
    got = [await asyncio.wait_for(client.read_message(), 10) for _ in range(n)]
    client.close()
    server.stop()
    return got


def _frames(msg):
    return [msg.header_json, msg.metadata_json, msg.content_json] + [
        x for b in msg.buffers for x in (None, b.to_bytes())]


def _same(got, want):
    return all(w is None or g == w for g, w in zip(got, want)) and len(got) == len(want)


def test_a_patch_cannot_land_between_a_messages_frames():
    reply, patch = _reply_with_buffer(), _patch_message()
    original = ws_atomic._original_send or Message.send
    # Bokeh's own send: Panel's patch lands right after the reply's header (the failure)
    got = asyncio.run(_race(original, reply, patch))
    assert got[0] == reply.header_json and got[1] == patch.header_json
    # in one piece: the whole reply, then the patch
    got = asyncio.run(_race(ws_atomic.send_in_one_piece, reply, patch))
    assert _same(got[:5], _frames(reply)) and _same(got[5:], _frames(patch))


def test_installed_for_the_dashboards_server():
    assert Message.send is ws_atomic.send_in_one_piece
