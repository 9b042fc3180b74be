"""The visitor's window size before the page exists (gle_lab.client_hints): client hints
and the cookie give the first document the layout the page would have switched to."""
import asyncio
import json
from http.cookies import SimpleCookie

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from gle_lab import client_hints as ch
from gle_lab.loadclient import BokehTab, GleLabServer

CHROMIUM = {"Sec-CH-UA": '"Not:A-Brand";v="8", "Chromium";v="156"', "Sec-CH-UA-Mobile": "?0"}


def hints(width, height):
    return {**CHROMIUM, "Sec-CH-Viewport-Width": str(width),
            "Sec-CH-Viewport-Height": str(height)}


def test_viewport_from_hints_then_cookie_and_nonsense_refused():
    assert ch.viewport(hints(1280, 720), {}) == (1280, 720)
    # Tornado spells header names its own way; a plain dict may use any case
    assert ch.viewport({"sec-ch-viewport-width": "390", "SEC-CH-VIEWPORT-HEIGHT": "844"}) \
        == (390, 844)
    assert ch.viewport(HTTPHeaders(hints(1600, 1000))) == (1600, 1000)
    # the hints win over a stale cookie
    assert ch.viewport(hints(1920, 1080), {"gle_viewport": "1280x720"}) == (1920, 1080)
    # a cookie as Bokeh's request proxy (str) and as Tornado's request (Morsel) hold it
    assert ch.viewport({}, {"gle_viewport": "1366x768"}) == (1366, 768)
    morsels = SimpleCookie("gle_viewport=1440x900")
    assert ch.viewport(HTTPHeaders(), morsels) == (1440, 900)
    for bad in ("", "1280", "x", "0x720", "1280x-1", "wide", "99999x720", "1280x720x3"):
        assert ch.viewport({}, {"gle_viewport": bad}) is None, bad
    assert ch.viewport({"Sec-CH-Viewport-Width": "1280"}) is None      # no height
    assert ch.viewport() is None


def test_chromium_version_from_the_brand_list():
    assert ch.chromium_version(CHROMIUM["Sec-CH-UA"]) == 156
    edge = '"Microsoft Edge";v="120", "Chromium";v="120", "Not?A_Brand";v="8"'
    assert ch.chromium_version(edge) == 120
    assert ch.chromium_version('"Some Browser";v="3"') == 0
    assert ch.chromium_version(None) == 0


@pytest.mark.parametrize("method,path,headers,cookies,expected", [
    ("GET", "/gle-lab", CHROMIUM, {}, True),                      # Chromium's first request
    ("GET", "/gle-lab", hints(1280, 720), {}, False),             # its repeat
    ("GET", "/gle-lab", CHROMIUM, {"gle_viewport": "1280x720"}, False),   # a later visit
    ("GET", "/gle-lab/ws", CHROMIUM, {}, False),                  # a websocket: no repeat
    ("POST", "/gle-lab", CHROMIUM, {}, False),
    ("GET", "/gle-lab", {**CHROMIUM, "Sec-CH-UA-Mobile": "?1"}, {}, False),   # a phone
    ("GET", "/gle-lab", {"Sec-CH-UA": '"Chromium";v="100"'}, {}, False),      # too old
    ("GET", "/gle-lab", {"User-Agent": "Mozilla/5.0 Firefox/140.0"}, {}, False),
])
def test_which_requests_are_asked_to_repeat(method, path, headers, cookies, expected):
    assert ch.wants_hints(method, path, headers, cookies) is expected


def _transform(headers, content_type="text/html", status=200):
    request = HTTPServerRequest(headers=HTTPHeaders({"Host": "127.0.0.1", **headers}),
                                start_line=RequestStartLine("GET", "/gle-lab", "HTTP/1.1"))
    out = HTTPHeaders({"Content-Type": content_type})
    t = ch.ClientHints(request)
    code, out, chunk = t.transform_first_chunk(status, out, b"<html>", True)
    assert code == status and chunk == b"<html>"
    return out


def test_transform_asks_for_the_hints_on_pages_and_makes_them_critical_once():
    first = _transform(CHROMIUM)
    assert first["Accept-CH"] == ch.ACCEPT_CH
    assert first["Critical-CH"] == ch.ACCEPT_CH
    assert "Sec-CH-Viewport-Width" in first["Vary"]
    again = _transform(hints(1280, 720))
    assert again["Accept-CH"] == ch.ACCEPT_CH and "Critical-CH" not in again
    firefox = _transform({"User-Agent": "Firefox"})
    assert "Accept-CH" in firefox and "Critical-CH" not in firefox
    for other in (_transform(CHROMIUM, content_type="application/javascript"),
                  _transform(CHROMIUM, status=404)):
        assert "Accept-CH" not in other and "Critical-CH" not in other


def _phase_mode(doc):
    """The phase cards' layout class (``gle-phase-<mode>``) in a document's JSON."""
    modes = []

    def walk(obj):
        if isinstance(obj, dict):
            classes = obj.get("css_classes")
            if isinstance(classes, list):
                modes.extend(c[len("gle-phase-"):] for c in classes
                             if isinstance(c, str) and c.startswith("gle-phase-"))
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)
    walk(doc)
    assert len(modes) == 1, modes
    return modes[0]


@pytest.fixture(scope="module")
def server():
    srv = GleLabServer("--max-sessions", "0", "--idle-timeout", "0")
    yield srv
    srv.stop()


def _first_document(url, **kw):
    async def go():
        tab = BokehTab(url, **kw)
        try:
            ok = await tab.connect(timeout=60)
            return ok, tab.doc, tab.stats
        finally:
            tab.close()
    return asyncio.run(go())


@pytest.mark.parametrize("kw,mode", [
    ({}, "wide"),                                               # nothing known: the guess
    ({"headers": hints(1280, 720)}, "present"),                 # a projector
    ({"headers": hints(1600, 1000)}, "wide"),
    ({"cookie": "gle_viewport=1280x720"}, "present"),           # any browser, a later visit
    ({"headers": hints(390, 844)}, "phone"),
])
def test_the_first_document_has_the_layout_for_the_reported_window(server, kw, mode):
    ok, doc, stats = _first_document(server.url, **kw)
    assert ok, stats.error
    assert _phase_mode(doc) == mode


def test_a_hintless_chromium_request_gets_the_placeholder_and_builds_no_session(server):
    opened = sum("session opened" in line for line in server.log)
    ok, doc, stats = _first_document(server.url, headers=CHROMIUM)
    assert ok, stats.error
    text = json.dumps(doc)
    assert "Loading GLE Lab" in text and "gle-view-activity" not in text
    # the placeholder is not a dashboard: no session counted, no simulation started
    assert sum("session opened" in line for line in server.log) == opened


def test_reused_sessions_take_the_window_from_the_cookie():
    """--reuse-sessions builds a session when its websocket connects (no client hints
    there); the page's first script stored the window in the cookie before that."""
    srv = GleLabServer("--max-sessions", "0", "--idle-timeout", "0", "--reuse-sessions")
    try:
        ok, doc, stats = _first_document(srv.url, cookie="gle_viewport=1280x720")
        assert ok, stats.error
        assert _phase_mode(doc) == "present"
    finally:
        srv.stop()


def test_the_page_stores_the_window_in_a_cookie_first():
    from gle_lab.main import VIEWPORT_TEMPLATE
    head = VIEWPORT_TEMPLATE.split("{% block postamble %}", 1)[1]
    assert head.startswith(ch.COOKIE_SCRIPT)
    assert "document.cookie='gle_viewport='+innerWidth+'x'+innerHeight" in ch.COOKIE_SCRIPT
