"""End-to-end: the served dashboard in headless Chromium (data read from the BokehJS document)."""
from __future__ import annotations

import math
import time

TRACES = """() => {
  for (const m of Bokeh.documents[0].all_models) {
    if (m.data && m.data.eps0 !== undefined) {
      const t = m.data.t; return [t.length, t.length ? t[t.length - 1] : null];
    }
  }
  return null;
}"""
SLIDER = """(title) => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.title === title && m.start !== undefined && m.value !== undefined) return m.value;
  return null;
}"""
TOGGLE = """() => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.type === 'Toggle' && m.css_classes.includes('gle-play')) return m.active;
}"""
CLOCK = """() => { const find = (root) => { const h = root.querySelector('.gle-clock');
    if (h) return h; for (const el of root.querySelectorAll('*')) if (el.shadowRoot) {
      const f = find(el.shadowRoot); if (f) return f; } return null; };
  const host = find(document);
  const pre = host && host.shadowRoot && host.shadowRoot.querySelector('pre');
  return pre ? pre.textContent : ''; }"""
FIGURES = """() => [...Bokeh.documents[0].all_models]
  .filter(m => m.type === 'Figure' || (m.title && m.title.text !== undefined && m.renderers))
  .map(m => m.title.text)"""


def traces(page):
    return page.evaluate(TRACES)


def wait_streaming(page, min_rows=20):
    page.wait_for_function(TRACES.replace("return [t.length", "return t.length >= %d && [t.length"
                                          % min_rows).replace("return null;\n}", "return false;\n}"))


def phase(page, key):
    return float(page.locator(f".gle-{key}-measured").get_attribute("data-phase"))


def wait_until(predicate, timeout=10.0):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


def press(page, selector, key, times=1):
    handle = page.locator(f"{selector} .noUi-handle")
    handle.focus()
    for _ in range(times):
        page.keyboard.press(key)


def pause(page):
    """Click Pause and wait until the server has paused (it relabels the button "Play")."""
    page.locator(".gle-play button").click()
    page.wait_for_function(f"() => ({TOGGLE})() === false")
    page.wait_for_function("""() => [...Bokeh.documents[0].all_models].some(m =>
        m.type === 'Toggle' && m.css_classes.includes('gle-play') && m.label === 'Play')""")


def test_page_loads_with_all_views(app_page):
    page = app_page
    wait_streaming(page)
    titles = page.evaluate(FIGURES)
    for want in ("Activity", "Errors", "Gain", "Phase", "Weights", "Time constants", "Loss"):
        assert any(t.startswith(want) for t in titles), (want, titles)
    assert page.locator(".gle-forward-analytic").get_attribute("data-phase") == "-0.6882"
    assert page.locator(".gle-error-analytic").get_attribute("data-phase") == "0.6882"
    n1, t1 = traces(page)
    page.wait_for_function(f"() => ({TRACES})()[1] > {t1}")      # data keep streaming


def test_tau_r_slider_flips_phase_readout(app_page):
    page = app_page
    wait_streaming(page)
    press(page, ".gle-speed", "PageUp", 7)      # 4 → 20 a.u./s: settles within ~1 s
    # before: τr = 0.1 < τm = 1 → rate lags, error leads (measured, once the fit window
    # holds only the steady state: on a loaded machine that may take a few seconds)
    wait_until(lambda: math.isclose(phase(page, "forward"), -0.688, abs_tol=5e-3) and
               math.isclose(phase(page, "error"), 0.688, abs_tol=5e-3), timeout=20)
    press(page, ".gle-tau-r", "PageUp", 13)     # τr: 0.1 → 10^0.3 ≈ 2 (> τm)
    page.wait_for_function(f"() => ({SLIDER})('τr prospective (a.u.)') > 0.25")
    expect = math.atan(2.0) - math.atan(1.0)    # ≈ +0.32 rad: the rate now leads
    wait_until(lambda: math.isclose(phase(page, "forward"), expect, abs_tol=0.01) and
               math.isclose(phase(page, "error"), -expect, abs_tol=0.01), timeout=20)
    card = page.locator("#gle-forward")
    assert "lead" in card.get_attribute("class")
    assert "LEADS" in card.inner_text()
    assert "LAGS" in page.locator("#gle-error").inner_text()


def test_pause_play_reset(app_page):
    page = app_page
    wait_streaming(page, 50)
    pause(page)
    # paused: the clock shows the exact time and the traces end there (frames in flight in)
    page.wait_for_function(f"""() => {{ const c = parseFloat(({CLOCK})().split('=')[1]);
        const tr = ({TRACES})(); return tr && tr[1] !== null && Math.abs(tr[1] - c) <= 0.1; }}""")
    _, t_paused = traces(page)
    # nothing runs while paused: one Step adds exactly one frame (speed/30 = 0.13 a.u.)
    page.locator(".gle-step button").click()
    page.wait_for_function(f"() => ({TRACES})()[1] > {t_paused}")
    n2, t2 = traces(page)
    assert t2 - t_paused <= 4.0 / 30 + 0.02
    page.locator(".gle-play button").click()    # play: resumed at ~4 a.u./s
    page.wait_for_function(f"() => ({TRACES})()[1] > {t2} + 0.5")
    # reset while paused, so the cleared traces stay put however slowly the page polls
    page.locator(".gle-play button").click()    # pause
    page.wait_for_function(f"() => ({TOGGLE})() === false")
    page.locator(".gle-reset button").click()
    page.wait_for_function(TRACES.replace("return [t.length", "return t.length === 0 && [t.length"))
    page.wait_for_function(f"() => parseFloat(({CLOCK})().split('=')[1]) === 0")
    assert traces(page) == [0, None]             # cleared, and it stays cleared while paused
    page.locator(".gle-play button").click()    # play again: it runs on from t = 0
    first = page.wait_for_function(TRACES.replace(
        "return [t.length", "return t.length > 0 && t[t.length-1] > 1.0 && [t[0]")
    ).json_value()[0]
    assert first < 0.1                           # a new run from t = 0, not the old one


TIME_AXIS = """() => {
  const d = Bokeh.documents[0];
  const fig = [...d.all_models].find(m => m.title && m.title.text !== undefined &&
                                          m.title.text.startsWith('Activity'));
  const src = [...d.all_models].find(m => m.data && m.data.eps0 !== undefined);
  const t = src.data.t;
  return [fig.x_range.start, fig.x_range.end, t.length ? t[t.length - 1] : null];
}"""
SET_SLIDER = """([title, v]) => { for (const m of Bokeh.documents[0].all_models)
  if (m.title === title && m.start !== undefined && m.value !== undefined) m.value = v; }"""


def test_time_axis_follows_the_newest_sample_in_the_page(app_page):
    """The page moves the time axis itself (the server sends no range per frame): it shows
    the last window up to the newest sample, follows a new window width while paused, and
    goes back to [0, window] on a reset."""
    page = app_page
    # the Display card (collapsed at this size) takes in its controls when first opened
    page.locator(".gle-view-controls .card-header", has_text="Display").first.click()
    page.wait_for_function(f"() => ({SLIDER})('Window (a.u.)') !== null")
    page.evaluate(SET_SLIDER, ["Window (a.u.)", 2.0])
    # streaming past the 2 a.u. window (and past the 4 a.u. one set below): the axis ends at
    # the newest sample, 2 a.u. wide
    page.wait_for_function(f"""() => {{ const [s, e, last] = ({TIME_AXIS})();
        return last !== null && last > 5 && Math.abs(e - last) < 1e-9 &&
               Math.abs(e - s - 2) < 1e-9; }}""")
    pause(page)
    _, end, last = page.evaluate(TIME_AXIS)
    page.evaluate(SET_SLIDER, ["Window (a.u.)", 4.0])      # paused: no frame comes
    page.wait_for_function(f"() => Math.abs(({TIME_AXIS})()[0] - ({TIME_AXIS})()[1] + 4) < 1e-9")
    start, end, last2 = page.evaluate(TIME_AXIS)
    assert last2 == last and end == last2 and abs(end - start - 4) < 1e-9
    page.locator(".gle-reset button").click()
    page.wait_for_function(f"() => ({TIME_AXIS})()[2] === null")
    page.wait_for_function(f"() => ({TIME_AXIS})()[0] === 0 && ({TIME_AXIS})()[1] === 4")
