"""Every Bokeh websocket of a GLE Lab process sends its frames at once (gle_lab.ws_nodelay):
TCP_NODELAY on the server's socket, so a message's later frames do not wait for the
browser's delayed ACK (Nagle's algorithm: ~25 ms on a τ change's new curves)."""
import json
import subprocess
import sys

from gle_lab import ws_nodelay

#: a Bokeh server in its own process with GLE Lab's patches (gle_lab.main imported), one
#: websocket client (the load client), and the TCP_NODELAY flag of the server's end
PROBE = r"""
import asyncio, json, socket, sys
import gle_lab.main                                   # installs GLE Lab's patches
from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.models import Div
from bokeh.server.server import Server
from gle_lab.loadclient import BokehTab

def app(doc):
    doc.add_root(Div(text="hi"))

async def main():
    server = Server({"/probe": Application(FunctionHandler(app))}, port=0,
                    address="127.0.0.1", allow_websocket_origin=["*"])
    server.start()
    tab = BokehTab(f"http://127.0.0.1:{server.port}/probe")
    ok = await tab.connect(timeout=30)
    flags = []
    for conn in server._tornado._clients:
        sock = conn._socket.ws_connection.stream.socket
        flags.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    tab.close()
    print(json.dumps({"connected": ok, "nodelay": flags, "disabled": sys.argv[1]}))

asyncio.run(main())
"""


def _probe(env_disable=""):
    import os
    env = {**os.environ, "GLE_LAB_DISABLE_PATCHES": env_disable}
    out = subprocess.run([sys.executable, "-c", PROBE, env_disable or "-"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_served_websocket_has_nodelay_set():
    r = _probe()
    assert r["connected"] and len(r["nodelay"]) == 1
    assert r["nodelay"][0] != 0


def test_without_the_patch_tornado_leaves_nagle_on():
    """The reason for the patch: Bokeh's websocket as Tornado leaves it."""
    r = _probe("bokeh_ws_nodelay")
    assert r["connected"] and r["nodelay"] == [0]


def test_install_is_idempotent_and_sets_the_flag_before_bokeh_opens(monkeypatch):
    from bokeh.server.views.ws import WSHandler
    calls = []
    monkeypatch.setattr(WSHandler, "open", lambda self: calls.append("bokeh open"))
    assert ws_nodelay.install() and ws_nodelay.install()

    class Handler:
        def set_nodelay(self, value):
            calls.append(("nodelay", value))
    WSHandler.open(Handler())
    assert calls == [("nodelay", True), "bokeh open"]
