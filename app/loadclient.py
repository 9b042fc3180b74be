"""A websocket-level GLE Lab client: N concurrent sessions speaking the Bokeh protocol.

It behaves like BokehJS in a browser tab, minus the rendering:

1. ``GET /gle-lab`` (creates the session on the server; the page carries its token), after
   logging in first if credentials are given (Panel's ``--basic-auth`` login form);
2. websocket ``/gle-lab/ws`` with sub-protocols ``["bokeh", token]`` and an ``Origin`` header;
3. waits for the server's ``ACK`` (only then is the session attached), sends ``PULL-DOC-REQ``;
4. on ``PULL-DOC-REPLY`` (a document saying "GLE Lab is full" counts as a refusal) sends
   ``PATCH-DOC`` with the ``document_ready`` event: Panel runs ``pn.state.onload`` callbacks
   then, which starts the simulation's periodic callback;
5. counts every ``PATCH-DOC`` message and every *frame* (a patch that streams rows into the
   scrolling trace source, the one with column ``x``), plus ``ERROR`` messages and disconnects.

Server CPU and RSS come from ``/proc`` (Linux; children included for ``--num-procs``).

    python -m gle_lab.loadclient http://127.0.0.1:5006/gle-lab -n 10 -d 20
    python -m gle_lab.loadclient URL -n 5 -d 20 --server-pid 12345   # + server CPU/RSS

Every run is bounded: ``-d`` seconds of measurement plus a fixed connect timeout, then it
stops by itself. Only use it against servers you run (loopback).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import subprocess
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect

#: the server's polite refusal document contains this text (app/capacity.py)
FULL_MARKER = "GLE Lab is full"
TOKEN_RE = re.compile(r'"token"\s*:\s*"([^"]+)"')
DOCUMENT_READY = {"type": "event", "name": "document_ready", "values": {"type": "map"}}

_ids = iter(range(1, 1 << 62))


def _msg(msgtype, content, reqid=None):
    header = {"msgid": f"lc{next(_ids)}", "msgtype": msgtype}
    if reqid is not None:
        header["reqid"] = reqid
    return [json.dumps(header), "{}", json.dumps(content)]


@dataclass
class SessionStats:
    """What one simulated browser tab saw."""

    index: int
    status: str = "new"             # new, connected, ready, refused, error, closed
    error: str = ""
    t_get: float = float("nan")       # s: page GET
    t_ack: float = float("nan")       # s from websocket open request to ACK
    t_doc: float = float("nan")       # s from websocket open request to PULL-DOC-REPLY
    t_first_frame: float = float("nan")  # s from document_ready to the first frame
    patches: int = 0
    frames: int = 0
    bytes_in: int = 0
    errors: int = 0                   # ERROR messages from the server
    frame_times: list = field(default_factory=list)   # monotonic times of frames
    doc_bytes: int = 0

    def fps(self, t0, t1):
        """Frames per second received in the window [t0, t1]."""
        n = sum(1 for t in self.frame_times if t0 <= t < t1)
        return n / (t1 - t0) if t1 > t0 else float("nan")

    def longest_gap(self, t0, t1):
        """The longest wait (s) for a frame in the window [t0, t1]: how long the stream
        stood still at worst (a server busy elsewhere: another session's build, a full
        garbage collection)."""
        times = [t0] + [t for t in self.frame_times if t0 <= t < t1] + [t1]
        return max(b - a for a, b in zip(times, times[1:]))


class BokehTab:
    """One headless 'browser tab' on a Bokeh/Panel server."""

    def __init__(self, url, index=0, auth=None, cookie=None, origin=None, keep_times=True,
                 frame_column="x", echo_ranges=False, validate_cert=True, headers=None):
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self.http_base = f"{parts.scheme}://{parts.netloc}"
        self.ws_url = ("wss" if parts.scheme == "https" else "ws") + f"://{parts.netloc}" \
            f"{parts.path}/ws"
        self.origin = origin or self.http_base
        self.auth = auth
        self.cookie = cookie
        self.extra_headers = dict(headers or {})     # e.g. a browser's client hints
        self.stats = SessionStats(index)
        self.keep_times = keep_times
        self.frame_marker = f'["{frame_column}",'
        self.echo_ranges = echo_ranges
        self.validate_cert = validate_cert      # False: a self-signed test certificate
        self._echo_ids = []
        self.ws = None
        self._pending = None          # the message being read (never cancelled half-way)
        self.doc = None               # the PULL-DOC-REPLY content (dict)
        #: the patch that completed a served session's layout (parsed): the views and
        #: controls left out of the first document (see gle_lab.main.Dashboard)
        self.completion = None
        self._ready_at = None
        self._stop = False

    def _headers(self):
        h = {"Origin": self.origin, **self.extra_headers}
        if self.cookie:
            h["Cookie"] = self.cookie
        return h

    def _keep_cookies(self, resp):
        cookies = resp.headers.get_list("Set-Cookie")
        if cookies:
            extra = "; ".join(c.split(";", 1)[0] for c in cookies)
            self.cookie = f"{self.cookie}; {extra}" if self.cookie else extra

    async def login(self, timeout=30.0):
        """Panel's ``--basic-auth`` login form: POST /login; keeps the signed cookie."""
        user, _, password = self.auth.partition(":")
        body = urlencode({"username": user, "password": password})
        req = HTTPRequest(f"{self.http_base}/login", method="POST", body=body,
                          headers=self._headers(), request_timeout=timeout,
                          follow_redirects=False, validate_cert=self.validate_cert)
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        self._keep_cookies(resp)
        location = resp.headers.get("Location", "")
        if resp.code not in (301, 302, 303) or "error=" in location or \
                "user=" not in (self.cookie or ""):
            self.stats.status, self.stats.error = "error", f"login refused ({resp.code})"
            return False
        return True

    async def fetch_page(self, timeout=30.0):
        """GET the app page; returns the session token or None (refused / error)."""
        if self.auth and "user=" not in (self.cookie or ""):
            if not await self.login(timeout):
                return None
        t0 = time.monotonic()
        client = AsyncHTTPClient()
        req = HTTPRequest(self.url, headers=self._headers(), request_timeout=timeout,
                          follow_redirects=False, validate_cert=self.validate_cert)
        try:
            resp = await client.fetch(req, raise_error=True)
        except HTTPClientError as exc:
            self.stats.status, self.stats.error = "error", f"GET {exc.code}"
            return None
        except Exception as exc:                               # noqa: BLE001
            self.stats.status, self.stats.error = "error", f"GET {type(exc).__name__}: {exc}"
            return None
        self.stats.t_get = time.monotonic() - t0
        self._keep_cookies(resp)
        html = resp.body.decode("utf-8", "replace")
        m = TOKEN_RE.search(html)
        if not m:
            self.stats.status, self.stats.error = "error", "no session token in the page"
            return None
        return m.group(1)

    async def connect(self, timeout=30.0):
        """Page + websocket + ACK + document + document_ready. Returns True when ready."""
        token = await self.fetch_page(timeout)
        if token is None:
            return False
        t0 = time.monotonic()
        req = HTTPRequest(self.ws_url, headers=self._headers(), request_timeout=timeout,
                          connect_timeout=timeout, validate_cert=self.validate_cert)
        try:
            self.ws = await asyncio.wait_for(
                websocket_connect(req, subprotocols=["bokeh", token],
                                  max_message_size=256 * 1024 * 1024), timeout)
        except Exception as exc:                               # noqa: BLE001
            self.stats.status, self.stats.error = "error", f"websocket {type(exc).__name__}: {exc}"
            return False
        self.stats.status = "connected"
        # 1. the server's ACK first (sending earlier makes the server ignore us)
        msg = await self.next_message(timeout)
        if msg is None or msg[0]["msgtype"] != "ACK":
            self.stats.status = "error"
            self.stats.error = f"expected ACK, got {msg and msg[0]['msgtype']}"
            return False
        self.stats.t_ack = time.monotonic() - t0
        # 2. the document
        pull = _msg("PULL-DOC-REQ", {})
        await self._send(pull)
        while True:
            msg = await self.next_message(timeout)
            if msg is None:
                self.stats.status, self.stats.error = "error", "closed before the document"
                return False
            header, content, size = msg
            if header["msgtype"] == "PULL-DOC-REPLY":
                self.doc = content
                self.stats.doc_bytes = size
                if FULL_MARKER in self._last_raw:       # the polite refusal page
                    self.stats.status = "refused"
                    self.ws.close()
                    return False
                break
            if header["msgtype"] == "ERROR":
                self.stats.errors += 1
                self.stats.status, self.stats.error = "error", str(content)[:200]
                return False
        self.stats.t_doc = time.monotonic() - t0
        # 3. document_ready: Panel runs pn.state.onload (starts the simulation callback)
        await self._send(_msg("PATCH-DOC", {"events": [
            {"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": DOCUMENT_READY}]}))
        self._ready_at = time.monotonic()
        self.stats.status = "ready"
        if self.echo_ranges:
            self._echo_ids = [m["id"] for m in self.find_models("DataRange1d")
                              if m.get("attributes", {}).get("follow") == "end"]
        return True

    async def _send(self, fragments):
        for frag in fragments:
            await self.ws.write_message(frag)

    async def next_message(self, timeout=None):
        """The next Bokeh message ``(header, content, n_bytes)``, or None when closed.

        PATCH-DOC content is left as the raw JSON text (parse it if needed). Raises
        ``asyncio.TimeoutError`` after ``timeout`` s; a message whose fragments are still
        arriving is kept and finished by the next call (cancelling a read half-way would
        lose the framing of the fragment stream).
        """
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._read_message(parse=False))
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            raise asyncio.TimeoutError
        task, self._pending = self._pending, None
        try:
            return task.result()
        except WebSocketClosedError:
            return None

    async def _read_message(self, parse=True):
        """One Bokeh message: (header, content, n_bytes); content unparsed if not ``parse``."""
        frag = await self.ws.read_message()
        if frag is None:
            return None
        header = json.loads(frag)
        size = len(frag)
        await self.ws.read_message()                             # metadata
        content = await self.ws.read_message()
        if content is None:
            return None
        size += len(content)
        for _ in range(header.get("num_buffers", 0)):
            bh = await self.ws.read_message()
            payload = await self.ws.read_message()
            if bh is None or payload is None:
                return None
            size += len(bh) + len(payload)
        self.stats.bytes_in += size
        self._last_raw = content
        if parse or header["msgtype"] != "PATCH-DOC":
            content = json.loads(content)
        return header, content, size

    async def listen(self, until):
        """Count patches and frames until monotonic time ``until`` (or the socket closes)."""
        st = self.stats
        while not self._stop:
            left = until - time.monotonic()
            if left <= 0:
                break
            try:
                msg = await self.next_message(left)
            except asyncio.TimeoutError:
                break
            if msg is None:
                if st.status == "ready":
                    st.status, st.error = "closed", "server closed the connection"
                return
            header, content, _ = msg
            kind = header["msgtype"]
            if kind == "PATCH-DOC":
                st.patches += 1
                if self.completion is None and "gle-complete" in content:
                    self.completion = json.loads(content)
                if '"ColumnsStreamed"' in content and self.frame_marker in content:
                    now = time.monotonic()
                    st.frames += 1
                    if st.frames == 1 and self._ready_at is not None:
                        st.t_first_frame = now - self._ready_at
                    if self.keep_times:
                        st.frame_times.append(now)
                    if self._echo_ids:
                        await self._echo(st.frames)
            elif kind == "ERROR":
                st.errors += 1
                st.error = str(content)[:200]

    async def wait_frames(self, n, timeout=30.0):
        """Listen until ``n`` frames in all arrived (or ``timeout`` s); True if they did."""
        until = time.monotonic() + timeout
        while self.stats.frames < n and not self._stop and time.monotonic() < until:
            await self.listen(min(until, time.monotonic() + 0.2))
            if self.stats.status == "closed":
                break
        return self.stats.frames >= n

    async def wait_complete(self, timeout=30.0):
        """Listen (counting frames) until the session's layout is complete: every control
        is then in :meth:`find_models`. True if it completed within ``timeout`` s."""
        until = time.monotonic() + timeout
        while self.completion is None and not self._stop and time.monotonic() < until:
            await self.listen(min(until, time.monotonic() + 0.2))
            if self.stats.status == "closed":
                break
        return self.completion is not None

    async def _echo(self, k):
        """What BokehJS does after painting a frame: report the followed x range back."""
        events = []
        for mid in self._echo_ids:
            events += [{"kind": "ModelChanged", "model": {"id": mid}, "attr": "start",
                        "new": k * 0.01}, {"kind": "ModelChanged", "model": {"id": mid},
                                           "attr": "end", "new": k * 0.01 + 20.0}]
        try:
            await self.send_patch(events)
        except WebSocketClosedError:
            pass

    async def send_patch(self, events):
        """Send document events as the browser would (e.g. a widget value change)."""
        await self._send(_msg("PATCH-DOC", {"events": events}))

    def find_models(self, type_name, **attrs):
        """Models of the pulled document (and of the patch that completed its layout, once
        received) whose type name matches (and attributes equal)."""
        found = []

        def walk(obj):
            if isinstance(obj, dict):
                if obj.get("type") == "object" and obj.get("name") == type_name:
                    a = obj.get("attributes", {})
                    if all(a.get(k) == v for k, v in attrs.items()):
                        found.append(obj)
                for v in obj.values():
                    walk(v)
            elif isinstance(obj, list):
                for v in obj:
                    walk(v)
        walk(self.doc)
        walk(self.completion)
        return found

    def close(self):
        self._stop = True
        if self.ws is not None:
            self.ws.close()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


# ---------------------------------------------------------------------- server process stats
def _children(pid):
    kids = []
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    kids.append(int(entry))
            except OSError:
                continue
    except OSError:
        pass
    return kids


def process_tree(pid):
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def proc_sample(pid, tree=True):
    """(cpu_seconds, rss_bytes) of ``pid`` (a pid or a list of pids) and their descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu, rss = 0.0, 0
    pids = pid if isinstance(pid, (list, tuple)) else [pid]
    for p in (q for r in pids for q in (process_tree(r) if tree else [r])):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            with open(f"/proc/{p}/statm") as fh:
                rss += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


# ---------------------------------------------------------------------- a load run
@dataclass
class LoadResult:
    sessions: int
    duration: float
    ready: int
    refused: int
    failed: int
    closed: int
    errors: int
    fps: list                 # frames/s of each ready session over the measurement window
    patches_per_s: float      # total PATCH-DOC per second (all sessions)
    mbit_per_s: float         # received, all sessions
    connect_s: list           # page GET + ws + document, per ready session
    gaps: list = field(default_factory=list)   # each ready session's longest_gap (s)
    server_cpu: float = float("nan")    # cores busy (CPU seconds per second)
    server_rss_mb: float = float("nan")
    server_rss_start_mb: float = float("nan")
    server_ms_per_frame: float = float("nan")   # server CPU per delivered session-frame
    loadavg: float = float("nan")               # 1-min load average at the end (contention)
    messages: list = field(default_factory=list)

    @property
    def fps_min(self):
        return min(self.fps) if self.fps else 0.0

    @property
    def fps_median(self):
        return statistics.median(self.fps) if self.fps else 0.0

    def row(self):
        return (f"{self.sessions:>4} {self.ready:>5} {self.refused:>7} {self.failed + self.closed:>6} "
                f"{self.errors:>6} {self.fps_median:>8.1f} {self.fps_min:>7.1f} "
                f"{self.patches_per_s:>8.0f} {self.mbit_per_s:>7.2f} {self.server_cpu:>6.2f} "
                f"{self.server_ms_per_frame:>7.2f} {self.server_rss_mb:>7.0f} "
                f"{max(self.connect_s or [float('nan')]):>8.2f} {self.loadavg:>5.1f} "
                f"{1000 * statistics.median(self.gaps or [math.nan]):>7.0f} "
                f"{1000 * max(self.gaps or [math.nan]):>7.0f}")


#: gap_med / gap_max: the median and the largest over sessions of each session's longest
#: wait for a frame (ms); at 30 frames/s a smooth stream waits ~33-70 ms at worst
HEADER = (" ses ready refused failed errors  fps_med fps_min patch/s  Mbit/s  cores "
          "ms/frame  RSS_MB conn_max  load gap_med gap_max")


async def run_load(url, n, duration, warmup=3.0, ramp=0.05, server_pid=None, auth=None,
                   cookie=None, connect_timeout=60.0, keep_open=False, echo_ranges=False,
                   validate_cert=True):
    """Open ``n`` sessions (``ramp`` s apart), measure ``duration`` s after ``warmup`` s.

    Returns a :class:`LoadResult` (and the tabs if ``keep_open``; otherwise all are closed).
    """
    tabs = [BokehTab(url, i, auth=auth, cookie=cookie, echo_ranges=echo_ranges,
                     validate_cert=validate_cert) for i in range(n)]
    rss0 = proc_sample(server_pid)[1] if server_pid else None

    async def one(tab, delay):
        await asyncio.sleep(delay)
        t0 = time.monotonic()
        try:
            ok = await asyncio.wait_for(tab.connect(connect_timeout), connect_timeout + 5)
        except asyncio.TimeoutError:
            tab.stats.status, tab.stats.error = "error", "connect timeout"
            return None
        return time.monotonic() - t0 if ok else None

    connect_times = await asyncio.gather(*(one(t, i * ramp) for i, t in enumerate(tabs)))
    ready = [t for t in tabs if t.stats.status == "ready"]
    t_start = time.monotonic()
    m_start = t_start + warmup
    m_end = m_start + duration
    cpu0 = None

    async def sample_cpu_at_start():
        nonlocal cpu0
        await asyncio.sleep(max(0.0, m_start - time.monotonic()))
        if server_pid:
            cpu0 = (time.monotonic(), *proc_sample(server_pid))

    listeners = [asyncio.ensure_future(t.listen(m_end)) for t in ready]
    await sample_cpu_at_start()
    bytes0 = sum(t.stats.bytes_in for t in ready)
    patches0 = sum(t.stats.patches for t in ready)
    await asyncio.gather(*listeners)
    t_end = time.monotonic()
    res = LoadResult(
        sessions=n, duration=duration,
        ready=len(ready),
        refused=sum(t.stats.status == "refused" for t in tabs),
        failed=sum(t.stats.status == "error" for t in tabs),
        closed=sum(t.stats.status == "closed" for t in tabs),
        errors=sum(t.stats.errors for t in tabs),
        fps=[t.stats.fps(m_start, m_end) for t in ready],
        gaps=[t.stats.longest_gap(m_start, m_end) for t in ready],
        patches_per_s=(sum(t.stats.patches for t in ready) - patches0) / max(t_end - m_start, 1e-9),
        mbit_per_s=(sum(t.stats.bytes_in for t in ready) - bytes0) * 8 / 1e6
        / max(t_end - m_start, 1e-9),
        connect_s=[c for c in connect_times if c is not None],
        messages=sorted({t.stats.error for t in tabs if t.stats.error}),
    )
    if server_pid and cpu0 is not None:
        t1, cpu1, rss1 = time.monotonic(), *proc_sample(server_pid)
        res.server_cpu = (cpu1 - cpu0[1]) / (t1 - cpu0[0])
        res.server_rss_mb = rss1 / 2**20
        res.server_rss_start_mb = (rss0 or 0) / 2**20
        frames_per_s = sum(res.fps)
        if frames_per_s > 0:
            res.server_ms_per_frame = 1000 * res.server_cpu / frames_per_s
    try:
        res.loadavg = os.getloadavg()[0]
    except OSError:
        pass
    if keep_open:
        return res, tabs
    for t in tabs:
        t.close()
    await asyncio.sleep(0.2)
    return res


@dataclass
class ArrivalResult:
    """A class arriving: ``n`` visitors spread evenly over ``over`` seconds."""
    sessions: int
    over: float
    ttff: list                # s from page request to first frame, per visitor that got one
    no_frame: int             # visitors with no frame within the timeout (or refused/failed)
    refused: int
    errors: int
    fps: list                 # frames/s per session once all had arrived
    gaps: list = field(default_factory=list)   # each one's longest wait for a frame then (s)
    server_ms_per_frame: float = float("nan")
    server_cores: float = float("nan")  # CPU of the server's processes over that window
    client_cores: float = float("nan")  # CPU of this client process over the frames/s window
    loadavg: float = float("nan")
    messages: list = field(default_factory=list)
    #: per visitor (arrival order): s for the page GET, websocket open to document, and
    #: document_ready to first frame (where the time to the first frame went)
    phases: list = field(default_factory=list)

    def quantile(self, q):
        if not self.ttff:
            return float("nan")
        xs = sorted(self.ttff)
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

    def report(self):
        fps = self.fps or [float("nan")]
        return (f"{self.sessions} visitors over {self.over:.0f} s: first frame median "
                f"{self.quantile(0.5):.2f} s, p95 {self.quantile(0.95):.2f} s, max "
                f"{max(self.ttff or [float('nan')]):.2f} s; no frame {self.no_frame}, refused "
                f"{self.refused}, server errors {self.errors}; then frames/s per session "
                f"median {statistics.median(fps):.1f}, min {min(fps):.1f}, longest wait for "
                f"a frame median {1000 * statistics.median(self.gaps or [math.nan]):.0f} ms, "
                f"max {1000 * max(self.gaps or [math.nan]):.0f} ms; server "
                f"{self.server_ms_per_frame:.2f} ms/frame; cores: server "
                f"{self.server_cores:.2f}, client {self.client_cores:.2f}; load {self.loadavg:.1f}")


async def run_arrival(url, n, over, duration, warmup=2.0, first_frame_timeout=60.0,
                      server_pid=None, auth=None):
    """``n`` visitors arriving evenly over ``over`` s, each streaming as soon as it is in.

    Time to first frame counts from the visitor's page request to its first streamed frame
    (what a student waits for). Once the last visitor is in (or has given up), frames/s per
    session are measured for ``duration`` s after ``warmup`` s.
    """
    tabs = [BokehTab(url, i, auth=auth) for i in range(n)]
    starts = [None] * n
    end = {"t": float("inf")}

    async def visitor(i, tab):
        await asyncio.sleep(i * over / n)
        starts[i] = time.monotonic()
        try:
            ok = await asyncio.wait_for(tab.connect(first_frame_timeout), first_frame_timeout)
        except asyncio.TimeoutError:
            tab.stats.status, tab.stats.error = "error", "connect timeout"
            return
        if not ok:
            return
        give_up = starts[i] + first_frame_timeout
        while not tab._stop and tab.stats.status == "ready":
            now = time.monotonic()
            if now >= end["t"] or (tab.stats.frames == 0 and now >= give_up):
                break
            await tab.listen(min(now + 0.5, end["t"]))

    tasks = [asyncio.ensure_future(visitor(i, t)) for i, t in enumerate(tabs)]
    await asyncio.sleep(over)
    # everyone has asked by now; wait until each visitor is streaming or out of time
    while any(t.stats.frames == 0 and t.stats.status in ("new", "connected", "ready")
              and time.monotonic() < starts[k] + first_frame_timeout
              for k, t in enumerate(tabs)):
        await asyncio.sleep(0.1)
    m_start = time.monotonic() + warmup
    end["t"] = m_start + duration
    await asyncio.sleep(warmup)
    cpu0 = (time.monotonic(), *proc_sample(server_pid)) if server_pid else None
    mine0 = (time.monotonic(), time.process_time())
    await asyncio.gather(*tasks)
    mine1 = (time.monotonic(), time.process_time())
    ttff = [t.stats.frame_times[0] - starts[k] for k, t in enumerate(tabs)
            if t.stats.frame_times]
    streaming = [t for t in tabs if t.stats.frame_times]
    res = ArrivalResult(
        sessions=n, over=over, ttff=ttff, no_frame=n - len(ttff),
        refused=sum(t.stats.status == "refused" for t in tabs),
        errors=sum(t.stats.errors for t in tabs),
        fps=[t.stats.fps(m_start, end["t"]) for t in streaming],
        gaps=[t.stats.longest_gap(m_start, end["t"]) for t in streaming],
        messages=sorted({t.stats.error for t in tabs if t.stats.error}),
        phases=[(t.stats.t_get, t.stats.t_doc, t.stats.t_first_frame) for t in tabs])
    if cpu0 is not None:
        t1, cpu1, _ = time.monotonic(), *proc_sample(server_pid)
        frames_per_s = sum(res.fps)
        res.server_cores = (cpu1 - cpu0[1]) / (t1 - cpu0[0])
        if frames_per_s > 0:
            res.server_ms_per_frame = 1000 * res.server_cores / frames_per_s
    res.client_cores = (mine1[1] - mine0[1]) / max(mine1[0] - mine0[0], 1e-9)
    res.loadavg = os.getloadavg()[0]
    for t in tabs:
        t.close()
    await asyncio.sleep(0.2)
    return res


#: the server's log line for each session opened or closed (gle_lab.capacity)
LIVE_RE = re.compile(r"gle-lab: session (?:opened|closed) \((\d+) live\)")


class GleLabServer:
    """``gle-lab`` (``python -m gle_lab.serve``) on 127.0.0.1 and a free port; log drained.

    ``plain=True``: ``panel serve <gle_lab/main.py>`` instead (what a notebook user or a
    ``panel serve`` deployment runs), with ``extra`` as panel-serve options. ``python``: the
    interpreter to run it with (default: this one), e.g. a venv GLE Lab was installed into."""

    def __init__(self, *extra, timeout=60.0, plain=False, python=None, cwd=None):
        python = python or sys.executable
        if plain:
            main = os.path.join(os.path.dirname(os.path.abspath(__file__)), "main.py")
            cmd = [python, "-m", "panel", "serve", main, "--address",
                   "127.0.0.1", "--port", "0", "--allow-websocket-origin", "*", *extra]
        else:
            cmd = [python, "-m", "gle_lab.serve", "--address", "127.0.0.1", "--port", "0",
                   *extra]
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.log, self.url = [], None
        ready = threading.Event()

        def drain():
            for line in self.proc.stdout:
                self.log.append(line)
                m = re.search(r"(?:GLE Lab running at|Bokeh app running at:) "
                              r"http://[^:]+:(\d+)/(\S+)", line)
                if m and not ready.is_set():
                    self.url = f"http://127.0.0.1:{m.group(1)}/{m.group(2)}"
                    ready.set()
            ready.set()
        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError("gle-lab did not start:\n" + "".join(self.log[-30:]))

    @property
    def pid(self):
        return self.proc.pid

    def live_sessions(self):
        """The process' live sessions by its last "session opened/closed (N live)" log line
        (0 before the first one)."""
        for line in reversed(self.log):
            m = LIVE_RE.search(line)
            if m:
                return int(m.group(1))
        return 0

    def wait_live_sessions(self, at_most=0, timeout=30.0):
        """Wait until at most ``at_most`` sessions are live; True if so within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.live_sessions() > at_most:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return True

    def wait_for_log(self, pattern, timeout=30.0, since=0):
        """Wait until a log line from index ``since`` on matches ``pattern`` (a regex);
        returns the match or None after ``timeout`` s."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log[since:]:
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return None
            time.sleep(0.05)

    def stop(self):
        """Terminate the server and, with --num-procs > 1, its forked workers (by pid: the
        workers outlive a terminated parent)."""
        if self.proc.poll() is not None:
            return
        workers = [p for p in process_tree(self.proc.pid) if p != self.proc.pid]
        self.proc.terminate()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + 10
        for pid in workers:
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
                time.sleep(0.05)
            if os.path.exists(f"/proc/{pid}"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", help="app URL, e.g. http://127.0.0.1:5006/gle-lab")
    p.add_argument("-n", "--sessions", type=int, default=5)
    p.add_argument("-d", "--duration", type=float, default=20.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--server-pid", type=int, action="append", default=None,
                   help="report this process' CPU/RSS (repeatable: summed)")
    p.add_argument("--auth", default=None,
                   help="USER:PASSWORD for a server started with --basic-auth")
    p.add_argument("--echo-ranges", action="store_true",
                   help="send the followed x range back after every frame, as BokehJS does")
    p.add_argument("--insecure", action="store_true",
                   help="accept a self-signed certificate (https test setups)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    host = urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1") and not (host or "").startswith("127."):
        sys.exit("loadclient: only loopback servers (127.0.0.0/8, localhost, ::1)")
    if not 1 <= args.sessions <= 200 or not 0 < args.duration <= 3600:
        sys.exit("loadclient: 1..200 sessions, 0..3600 s")
    res = asyncio.run(run_load(args.url, args.sessions, args.duration, warmup=args.warmup,
                               server_pid=args.server_pid, auth=args.auth,
                               echo_ranges=args.echo_ranges,
                               validate_cert=not args.insecure))
    if args.json:
        d = dict(res.__dict__)
        print(json.dumps(d, default=float))
    else:
        print(HEADER)
        print(res.row())
        for m in res.messages:
            print("  !", m)
    return 0 if res.failed == 0 and res.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
