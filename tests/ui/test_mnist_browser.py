"""End-to-end: the MNIST-1D preset (?preset=mnist1d) served by `panel serve app/main.py` in
headless Chromium; data read from the BokehJS document, waits on conditions only.

``GLE_UPDATE_SCREENSHOTS=1`` also writes ``assets/screenshot-mnist1d.png`` (the README's)."""
from __future__ import annotations

import os

from .conftest import ARTIFACTS, ROOT

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


def test_mnist_preset_loads_plays_and_predicts(page, server):
    page.set_default_timeout(60000)
    page.goto(server.url + "?preset=mnist1d")
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                           "Bokeh.documents[0].roots().length > 0")
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
