"""How a Bokeh message leaves a GLE Lab server (gle_lab.ws_send): TCP_NODELAY on the socket,
so a message's later frames do not wait for the browser's delayed ACK (Nagle's algorithm:
~25 ms on a τ change's new curves), and all of a message's frames in one socket write."""
import json
import os
import subprocess
import sys

import pytest

from gle_lab import ws_send

#: a Bokeh server in its own process with GLE Lab's patches (gle_lab.main imported) and one
#: websocket client (the load client, Tornado's RFC 6455 client underneath). The server
#: streams a numpy column into the client's document (a message with a binary buffer);
#: the client reads that message frame by frame. Printed: the TCP_NODELAY flag of the
#: server's end, each socket write (whether it starts a message), and the frames as received.
PROBE = r"""
import asyncio, json, socket, sys
import numpy as np
import gle_lab.main                                   # installs GLE Lab's patches
from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from bokeh.server.server import Server
from gle_lab.loadclient import BokehTab

sources = []

def app(doc):
    src = ColumnDataSource({"t": np.zeros(0)})
    fig = figure()
    fig.line("t", "t", source=src)
    doc.add_root(fig)
    sources.append((doc, src))

async def main():
    server = Server({"/probe": Application(FunctionHandler(app))}, port=0,
                    address="127.0.0.1", allow_websocket_origin=["*"])
    server.start()
    tab = BokehTab(f"http://127.0.0.1:{server.port}/probe")
    ok = await tab.connect(timeout=30)
    conn, = server._tornado._clients
    stream = conn._socket.ws_connection.stream
    flag = stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    writes = []
    real_write = stream.write
    def write(data):
        writes.append(b'"msgtype"' in bytes(data[:120]))   # starts a message
        return real_write(data)
    stream.write = write
    doc, src = sources[0]
    values = np.arange(7, dtype="float64") * 0.5
    doc.add_next_tick_callback(lambda: src.stream({"t": values}))
    frames = []
    while True:
        frag = await asyncio.wait_for(tab.ws.read_message(), 30)
        frames.append(frag if isinstance(frag, str) else list(np.frombuffer(frag, "float64")))
        if len(frames) == 1:
            header = json.loads(frag)
            if header["msgtype"] != "PATCH-DOC":
                frames = []
                continue
            want = 3 + 2 * header.get("num_buffers", 0)
        if len(frames) == want:
            break
    tab.close()
    print(json.dumps({"connected": ok, "nodelay": flag, "writes": writes,
                      "frames": frames}))

asyncio.run(main())
"""


def _probe(disable=""):
    env = {**os.environ, "GLE_LAB_DISABLE_PATCHES": disable}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def patched():
    return _probe()


def _writes_of_first_message(r):
    """The socket writes from the first message's start up to the next message's."""
    starts = [i for i, new in enumerate(r["writes"]) if new] + [len(r["writes"])]
    return starts[1] - starts[0]


def _check_message(r):
    header = json.loads(r["frames"][0])
    assert header["msgtype"] == "PATCH-DOC" and header["num_buffers"] == 1
    json.loads(r["frames"][1])                                   # metadata
    content = json.loads(r["frames"][2])
    event, = content["events"]
    assert event["kind"] == "ColumnsStreamed"
    buffer_ref = json.loads(r["frames"][3])
    assert buffer_ref["id"] == event["data"]["entries"][0][1]["array"]["data"]["id"]
    assert r["frames"][4] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def test_a_served_websocket_has_nodelay_set(patched):
    assert patched["connected"] and patched["nodelay"] != 0


def test_a_message_with_a_buffer_arrives_whole_from_one_socket_write(patched):
    _check_message(patched)
    assert _writes_of_first_message(patched) == 1


def test_without_the_patches_the_same_frames_in_a_write_each():
    """The reasons for the patches: Bokeh's websocket as Tornado leaves it (Nagle on), and
    Bokeh's own send path, a socket write per frame; its frames are the same."""
    r = _probe("bokeh_ws_nodelay,bokeh_ws_one_write")
    assert r["connected"] and r["nodelay"] == 0
    _check_message(r)
    assert _writes_of_first_message(r) == 5


def test_frame_headers_for_each_length_class():
    """RFC 6455 section 5.2: 7-bit, 16-bit and 64-bit payload lengths, FIN set, no mask."""
    assert ws_send.websocket_frame(ws_send.TEXT, b"abc") == b"\x81\x03abc"
    frame = ws_send.websocket_frame(ws_send.BINARY, b"x" * 300)
    assert frame[:4] == b"\x82\x7e\x01\x2c" and len(frame) == 304
    frame = ws_send.websocket_frame(ws_send.BINARY, b"y" * 70000)
    assert frame[:10] == b"\x82\x7f" + (70000).to_bytes(8, "big") and len(frame) == 70010


def test_install_is_idempotent_and_sets_the_flag_before_bokeh_opens(monkeypatch):
    from bokeh.server.views.ws import WSHandler
    calls = []
    monkeypatch.setattr(WSHandler, "open", lambda self: calls.append("bokeh open"))
    assert ws_send.install_nodelay() and ws_send.install_nodelay()

    class Handler:
        def set_nodelay(self, value):
            calls.append(("nodelay", value))
    WSHandler.open(Handler())
    assert calls == [("nodelay", True), "bokeh open"]
    assert ws_send.install() == ["bokeh_ws_nodelay", "bokeh_ws_one_write"]
    assert getattr(WSHandler.send_message, "_gle_one_write", False)
