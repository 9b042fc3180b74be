"""Two browser sessions on one server: settings, errors and a crashed tab of one never reach
the other (each session has its own LabState and simulator)."""
from __future__ import annotations

import time

import pytest

from .test_browser import SLIDER, wait_until
from .test_browser import TOGGLE as PLAYING

TRACES = """() => {
  for (const m of Bokeh.documents[0].all_models) {
    if (m.data && m.data.eps0 !== undefined) {
      const t = m.data.t; return t.length ? t[t.length - 1] : null;
    }
  }
  return null;
}"""
SET_SLIDER = """([title, value]) => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.title === title && m.start !== undefined && m.value !== undefined) {
      m.value = value; return true;
    }
  return false;
}"""
SET_CHECKBOX = """(label) => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.type === 'Checkbox' && m.label === label) { m.active = true; return true; }
  return false;
}"""
ALERT = """() => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.css_classes && m.css_classes.includes('gle-alert') && m.text !== undefined)
      return [m.visible, m.text];
  return null;
}"""

def open_session(page, url):
    page.set_default_timeout(30000)
    page.goto(url)
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                           "Bokeh.documents[0].roots().length > 0")
    page.wait_for_function(f"() => ({TRACES})() > 0.5")
    # every view is on the page (they come right after the first frame) ...
    page.locator(".gle-complete").wait_for(state="attached")
    # ... and the learning card, collapsed in this (presentation) layout, is opened: its
    # controls join the page then
    header = page.locator(".gle-view-controls .card-header", has_text="Errors and learning")
    header.first.click()
    page.locator(".gle-error-mode").wait_for(state="visible")
    return page


def advancing(page, by=0.4, within=10.0):
    """The session's traces keep moving forward (by ``by`` a.u. within ``within`` s)."""
    t0 = page.evaluate(TRACES)
    wait_until(lambda: (page.evaluate(TRACES) or 0) > t0 + by, within)
    return True


@pytest.fixture
def two_sessions(browser, server):
    ctx_a = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx_b = browser.new_context(viewport={"width": 1400, "height": 900})
    a = open_session(ctx_a.new_page(), server.url)
    b = open_session(ctx_b.new_page(), server.url)
    yield a, b
    ctx_a.close()
    ctx_b.close()


def test_settings_errors_and_crash_stay_in_their_session(two_sessions):
    a, b = two_sessions
    analytic = ".gle-forward-analytic"
    assert a.locator(analytic).get_attribute("data-phase") == "-0.6882"
    assert b.locator(analytic).get_attribute("data-phase") == "-0.6882"

    # 1. a setting: τr = 2 in A (rate leads there), B keeps τr = 0.1 (rate lags)
    assert a.evaluate(SET_SLIDER, ["τr prospective (a.u.)", 0.30103])
    wait_until(lambda: float(a.locator(analytic).get_attribute("data-phase")) > 0, timeout=15)
    assert float(a.locator(analytic).get_attribute("data-phase")) == pytest.approx(
        0.3218, abs=2e-3)
    time.sleep(0.5)
    assert b.locator(analytic).get_attribute("data-phase") == "-0.6882"
    assert abs(b.evaluate(SLIDER, "τr prospective (a.u.)") - (-1.0)) < 1e-9
    assert advancing(b)

    # 2. an error: A learns with η = 1 and strong nudging until it diverges
    assert a.evaluate(SET_SLIDER, ["β nudging", 1.0])              # β = 10
    assert a.evaluate(SET_CHECKBOX, "learn W")
    assert a.evaluate(SET_SLIDER, ["Learning rate η", 0.0])        # η = 1
    a.wait_for_function(f"() => {{ const r = ({ALERT})(); "
                        f"return r && r[0] && r[1].includes('diverged'); }}", timeout=40000)
    assert a.evaluate(PLAYING) is False
    assert a.locator(".gle-alert-reset button").is_visible()
    visible_b, text_b = b.evaluate(ALERT)
    assert not visible_b and "diverged" not in text_b
    assert b.evaluate(PLAYING) is True
    assert abs(b.evaluate(SLIDER, "Learning rate η") - a.evaluate(SLIDER, "Learning rate η")) > 1
    assert advancing(b)

    # 3. a crash: A's tab goes away without a goodbye; B streams on
    a.context.close()
    time.sleep(1.0)
    assert advancing(b, by=0.8)
    visible_b, text_b = b.evaluate(ALERT)
    assert not visible_b
