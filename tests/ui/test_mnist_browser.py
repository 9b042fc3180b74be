"""End-to-end: the MNIST-1D preset (?preset=mnist1d) served by `panel serve app/main.py` in
headless Chromium; data read from the BokehJS document, waits on conditions only.

``GLE_UPDATE_SCREENSHOTS=1`` also writes ``assets/screenshot-mnist1d.png`` (the README's)."""
from __future__ import annotations

import os

import pytest

from .conftest import ARTIFACTS, ROOT
from .test_layout import TARGETS

#: the output view's bar source: (title of the sample view, the bars' sums)
STATE = """() => {
  let bars = null, title = null, cursor = null, running = null;
  for (const m of Bokeh.documents[0].all_models) {
    if (m.data && m.data.cls !== undefined && m.data.sum !== undefined)
      bars = Array.from(m.data.sum);
    if (m.data && m.data.samples !== undefined && m.data.acc !== undefined)
      running = m.data.samples.length;
    if (m.title && m.title.text !== undefined && String(m.title.text).startsWith('Sample '))
      title = m.title.text;
    if (m.type === 'Span' && m.line_color === '#d62728') cursor = m.location;
  }
  return {bars, title, cursor, running};
}"""


TOGGLE = """(() => {
  for (const m of Bokeh.documents[0].all_models) if (m.type === 'Toggle') return m.active;
})"""


def state(page):
    return page.evaluate(STATE)


def wait_for(page, condition_js, arg=None):
    page.wait_for_function(f"(arg) => {{ const s = ({STATE})(); return {condition_js}; }}",
                           arg=arg)


#: every plot's title: the width of its text (in its own font) and the room it has, from
#: the frame's left edge (where a title starts) to the canvas' right edge (where it is cut)
TITLES = """() => {
  const out = [];
  const ctx = document.createElement('canvas').getContext('2d');
  const walk = (v) => {
    if (v == null) return;
    if (v.model && v.model.type === 'Figure' && v.frame) {
      const t = v.model.title;
      ctx.font = `${t.text_font_style} ${t.text_font_size} ${t.text_font}`;
      out.push({text: t.text, need: Math.ceil(ctx.measureText(t.text).width),
                room: Math.floor(v.bbox.width - v.frame.bbox.left), shown: v.bbox.width > 0});
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const root of Bokeh.index.roots) walk(root);
  return out;
}"""
#: the views of the page, top to bottom on a phone
VIEWS = ("sample", "output", "accuracy", "confusion", "credit")
#: the page's layout is settled: the later views are on it and the running accuracy has a value
READY = ("() => [...Bokeh.documents[0].all_models].some(m => m.text !== undefined && "
         "String(m.text).startsWith('Accuracy, last') && String(m.text).includes('%'))")
FITS = f"() => ({TITLES})().every(t => t.need <= t.room)"


@pytest.fixture(scope="module")
def mnist_page(browser, server):
    """One MNIST-1D session for the module (a server runs one at a time, --max-heavy-sessions)
    in a phone's browser (mobile emulation: without a viewport tag it lays pages out 980 px
    wide), opened at 390×844; the console's warnings are kept in ``page.gle_console``."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                              has_touch=True, device_scale_factor=2)
    page = ctx.new_page()
    page.gle_console = []
    page.on("console", lambda m: page.gle_console.append(m.text)
            if m.type in ("warning", "error") else None)
    page.set_default_timeout(60000)
    page.goto(server.url + "?preset=mnist1d")
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                           "Bokeh.documents[0].roots().length > 0")
    yield page
    ctx.close()


def _fail_shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_mnist_on_a_phone_is_one_column_and_every_title_fits(mnist_page):
    page = mnist_page
    try:
        for name in VIEWS:
            page.locator(f".gle-view-mnist-{name}").first.wait_for(state="attached")
        page.wait_for_function(READY)
        # the page at the phone's width: nothing wider than the screen
        page.wait_for_function("() => document.documentElement.scrollWidth <= 390")
        boxes = [page.locator(f".gle-view-mnist-{n}").first.bounding_box() for n in VIEWS]
        for name, b in zip(VIEWS, boxes):
            assert b["x"] >= -1 and b["x"] + b["width"] <= 391, (name, b)
            assert b["width"] >= 390 - 30, (name, b)              # the column's full width
        # one column: each view below the one before
        for (n1, b1), (n2, b2) in zip(zip(VIEWS, boxes), zip(VIEWS[1:], boxes[1:])):
            assert b1["y"] + b1["height"] <= b2["y"] + 1, (n1, n2)
        # every title whole (the accuracy's value too)
        page.wait_for_function(FITS)
        titles = page.evaluate(TITLES)
        assert len(titles) == 8 and all(t["need"] <= t["room"] for t in titles), titles
        small = [t for t in page.evaluate(TARGETS) if t[2] < 44]
        assert small == [], small
    except Exception:
        _fail_shot(page, "test_mnist_phone")
        raise


def test_mnist_on_a_projector_shows_every_title_and_no_range_warning(mnist_page):
    page = mnist_page
    try:
        page.set_viewport_size({"width": 1280, "height": 720})
        # the page reports its window; the server composes the projector's layout
        page.locator(".gle-mnist-phone").wait_for(state="detached")
        page.wait_for_function(READY)
        page.wait_for_function("() => document.documentElement.scrollWidth <= 1280")
        page.wait_for_function(FITS)
        titles = page.evaluate(TITLES)
        assert len(titles) == 8 and all(t["need"] <= t["room"] for t in titles), titles
        # the controls beside the views
        controls = page.locator(".gle-view-mnist-controls").first.bounding_box()
        sample = page.locator(".gle-view-mnist-sample").first.bounding_box()
        assert controls["x"] + controls["width"] <= sample["x"] + 1
        # legends beside the data, not over it
        inside = page.evaluate("() => [...Bokeh.documents[0].all_models].filter(m => "
                               "m.type === 'Figure' && m.center.some(c => c.type === "
                               "'Legend')).map(m => m.title.text)")
        assert inside == []
        assert not [m for m in page.gle_console if "initial ranges" in m], page.gle_console
    except Exception:
        _fail_shot(page, "test_mnist_projector")
        raise


def test_mnist_preset_loads_plays_and_predicts(mnist_page):
    page = mnist_page
    page.set_viewport_size({"width": 1600, "height": 1000})
    for name in ("sample", "output", "accuracy", "credit", "confusion"):
        page.locator(f".gle-view-mnist-{name}").first.wait_for(state="visible")
    try:
        # it plays on load: samples follow one another and the prediction bars change
        wait_for(page, "s.title !== null && s.bars !== null && s.running >= 1")
        first = state(page)
        wait_for(page, "s.title !== arg.title && JSON.stringify(s.bars) !== "
                       "JSON.stringify(arg.bars)", arg=first)
        second = state(page)
        assert second["title"] != first["title"] and second["bars"] != first["bars"]
        assert "true label" in second["title"]
        # pause, then play again: the cursor moves on
        page.get_by_role("button", name="❚❚ Pause").click()
        page.wait_for_function(TOGGLE + "() === false")
        page.get_by_role("button", name="▶ Play").wait_for()
        paused = state(page)["cursor"]
        page.get_by_role("button", name="▶ Play").click()
        page.wait_for_function(TOGGLE + "() === true")
        wait_for(page, "s.cursor !== arg", arg=paused)
        wait_for(page, "s.running >= 6")
        if os.environ.get("GLE_UPDATE_SCREENSHOTS"):
            page.screenshot(path=str(ROOT / "assets" / "screenshot-mnist1d.png"),
                            full_page=True)
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "test_mnist_browser.png"), full_page=True)
        raise
