"""Flaky classroom Wi-Fi: the websocket is cut and the page reconnects to the same session.

Chromium talks to the server through a TCP relay in this test; cutting the relay's
connections drops the page's websocket the way a lost Wi-Fi link does. The page must open a
new websocket by itself (``pn.config.reconnect``) and find its session as it was: the
same document's sources stream on (a new server session would have other model ids, and
the page's plots would stay frozen) and its clock goes on from where it was.
"""
from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

from .test_browser import TRACES, traces, wait_streaming, wait_until

TIMES = """() => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.data && m.data.eps0 !== undefined) return Array.from(m.data.t);
  return null;
}"""


class Relay:
    """A TCP relay on 127.0.0.1 to ``target``; :meth:`cut` drops every open connection."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open = []
        self.websockets = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False),
                             daemon=True).start()

    def _pipe(self, src, dst, from_browser):
        first = True
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if first and from_browser and b"Upgrade: websocket" in data:
                    with self.lock:
                        self.websockets += 1
                first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        with self.lock:
            conns, self.open = self.open, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        self.cut()
        self.listener.close()


def test_dropped_websocket_reconnects_to_the_same_session(page, server):
    parts = urlsplit(server.url)
    log_start = len(server.log)            # the server is shared by the browser tests
    relay = Relay(parts.port)
    try:
        page.set_default_timeout(30000)
        page.goto(f"http://127.0.0.1:{relay.port}{parts.path}")
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
        # every view on the page first: a cut during the first second, while the later views
        # are being sent, is a known gap (see docs/deployment.md)
        page.locator(".gle-complete").wait_for(state="attached")
        wait_streaming(page, min_rows=30)
        assert relay.websockets == 1
        t_before = traces(page)[1]
        relay.cut()
        # the page opens a second websocket by itself ...
        wait_until(lambda: relay.websockets >= 2, timeout=30)
        # ... and the same session streams on: the clock continues past where it was
        page.wait_for_function(TRACES.replace(
            "return [t.length", f"return t.length && t[t.length - 1] > {t_before + 1.0} && [t.length")
            .replace("return null;\n}", "return false;\n}"), timeout=30000)
        t = page.evaluate(TIMES)
        assert t[-1] > t_before + 1.0
        assert all(b > a for a, b in zip(t, t[1:]))       # one clock, never restarted
        assert not [line for line in server.log[log_start:] if "Traceback" in line], \
            "".join(server.log[log_start:])[-3000:]
    finally:
        relay.stop()
