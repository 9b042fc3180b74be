"""Chromium tells ``gle-lab`` its window before the first document (gle_lab.client_hints):
a projector's page starts in the presentation layout instead of switching to it."""
from __future__ import annotations

import pytest

from gle_lab.loadclient import GleLabServer

#: the phase cards' layout class in the first document the page received (recorded before
#: the page reports its size and the server could switch the layout)
FIRST_MODE = """
window.__gle_first_mode = null;
(function poll() {
  try {
    if (window.Bokeh && Bokeh.documents.length)
      for (const m of Bokeh.documents[0].all_models)
        for (const c of (m.css_classes || []))
          if (c.startsWith('gle-phase-')) { window.__gle_first_mode = c.slice(10); return; }
  } catch (e) {}
  setTimeout(poll, 5);
})();
"""


@pytest.fixture(scope="module")
def lab_server():
    srv = GleLabServer("--max-sessions", "0", "--idle-timeout", "0")
    yield srv
    srv.stop()


def first_mode(page, url):
    response = page.goto(url)
    page.wait_for_function("() => window.__gle_first_mode !== null", timeout=60000)
    return response, page.evaluate("() => window.__gle_first_mode")


@pytest.mark.parametrize("width,height,mode", [(1280, 720, "present"), (1600, 1000, "wide")])
def test_the_first_document_is_built_for_the_window(browser, lab_server, width, height, mode):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    try:
        ctx.add_init_script(FIRST_MODE)
        page = ctx.new_page()
        response, first = first_mode(page, lab_server.url)
        assert first == mode
        assert "sec-ch-viewport-width" in response.headers.get("accept-ch", "").lower()
        # the page keeps its window in a cookie (a later visit in any browser, and the
        # websocket that builds a --reuse-sessions session, carry it)
        page.wait_for_function("() => document.cookie.includes('gle_viewport=')")
        cookies = {c["name"]: c["value"] for c in ctx.cookies()}
        assert cookies["gle_viewport"] == f"{width}x{height}"
        # the same browser after its window changed: the next document follows the hints
        other = (1600, 1000) if mode == "present" else (1280, 720)
        page.set_viewport_size({"width": other[0], "height": other[1]})
        _, again = first_mode(page, lab_server.url)
        assert again == ("wide" if mode == "present" else "present")
        # and the page is the dashboard, streaming (not the placeholder)
        page.locator(".gle-view-activity").first.wait_for(timeout=60000)
        assert page.get_by_text("Loading GLE Lab").count() == 0
    finally:
        ctx.close()


def test_a_browser_that_does_not_repeat_the_request_reloads_with_the_cookie(browser,
                                                                           lab_server):
    """The placeholder's own way (a browser ignoring Critical-CH, emulated by removing the
    client-hint headers from the server's answers): it stores the window in the cookie and
    reloads; the reload gets the dashboard in the layout for that window."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    seen = []
    try:
        def strip_hints(route):
            cookie = route.request.headers.get("cookie", "")
            seen.append("gle_viewport=" in cookie)
            if "gle_viewport=" in cookie:
                # as the server sent it (a fulfilled page is not "local" to Chromium's
                # local-network checks: its websocket to 127.0.0.1 would be refused)
                route.continue_()
                return
            response = route.fetch()
            assert "location.reload" in response.text()          # the placeholder
            headers = {k: v for k, v in response.headers.items()
                       if k.lower() not in ("accept-ch", "critical-ch")}
            route.fulfill(response=response, headers=headers)
        ctx.route(lab_server.url, strip_hints)
        ctx.add_init_script(FIRST_MODE)
        page = ctx.new_page()
        _, first = first_mode(page, lab_server.url)
        assert first == "present"
        # first the placeholder (no cookie, no hints), then the dashboard with the cookie
        assert seen[:2] == [False, True]
        page.locator(".gle-view-activity").first.wait_for(timeout=60000)
    finally:
        ctx.close()


def test_reused_sessions_get_the_layout_from_the_pages_first_script(browser):
    """``--reuse-sessions``: a page comes from a cached session (built by the first request:
    never the placeholder) and each later visitor's own session is built when its websocket
    connects, which carries the cookie the page's first script stored: a class's first
    visits get their layout at once, no request repeated."""
    srv = GleLabServer("--max-sessions", "0", "--idle-timeout", "0", "--reuse-sessions")
    try:
        with browser.new_context(viewport={"width": 1600, "height": 1000}) as ctx:
            ctx.new_page().goto(srv.url)                      # the teacher: builds the cache
        for width, height, mode in ((1280, 720, "present"), (1600, 1000, "wide"),
                                    (1366, 768, "present")):
            ctx = browser.new_context(viewport={"width": width, "height": height})
            try:
                ctx.add_init_script(FIRST_MODE)
                page = ctx.new_page()
                response, first = first_mode(page, srv.url)
                assert first == mode
                assert "critical-ch" not in response.headers
                page.locator(".gle-view-activity").first.wait_for(timeout=60000)
            finally:
                ctx.close()
    finally:
        srv.stop()
