"""A τ slider is answered in the page, in the frame of the change (assets/js/page.js, 6).

The page draws what the server will send for the new τ (the phase cards' analytic phase,
word and relation line; the Fourier view's analytic curves and gain axis) as soon as the
slider moves; the server's answer then replaces it. These tests hold the page's answer
against the server's own, taken once it has arrived, for the changes a lesson makes (τr
across τm, τm, the LE limit), in GLE and IE mode, for a constant input and for another
neuron of a network; and check that what the server sends for the old τ meanwhile does not
flip the cards or curves back.
"""
from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.ui

#: the page's state: the cards (as HTML, the page's own mark removed), the relation line,
#: the status line and the Fourier curves, gain axis and the τ they are for
SNAPSHOT = """() => {
  const gle = window.__gle_lab;
  const box = gle.deepFind('.gle-view-phase').shadowRoot.querySelector('.gle-phase');
  const cards = [...box.querySelectorAll('.gle-card')].map(c => c.outerHTML);
  const pick = (sel) => { const el = box.querySelector(sel); return el ? el.textContent : null; };
  let src = null, range = null;
  for (const m of Bokeh.documents[0].all_models) {
    if (m.data && m.data.forward_gain !== undefined) src = m;
  }
  for (const p of Bokeh.documents[0].all_models)
    if (p.renderers && p.y_scale && p.y_scale.type === 'LogScale' &&
        p.renderers.some(r => r.data_source === src)) range = [p.y_range.start, p.y_range.end];
  const curves = {};
  for (const k of Object.keys(src.data)) curves[k] = Array.from(src.data[k]);
  return {cards, tr: pick('.gle-tr'), rel: pick('.gle-rel'), tm: pick('.gle-tm'),
          story: box.querySelector('.gle-story').innerHTML, status: pick('.gle-status'),
          answer: JSON.parse(box.dataset.answer), curves, tags: Array.from(src.tags), range,
          want: gle.want};
}"""
#: a user's move of a τ slider (a change the page sends: the slider's own path), then the
#: page's state in the same task, before anything else can run
MOVE = """([cls, value]) => {
  let slider = null;
  for (const m of Bokeh.documents[0].all_models)
    if (m.css_classes && m.css_classes.includes(cls) && m.start !== undefined) slider = m;
  slider.value = Math.log10(value);
  return (SNAPSHOT)();
}""".replace("SNAPSHOT", SNAPSHOT)
SERVER_AT = """([tm, tr]) => {
  const s = (SNAPSHOT)();
  const near = (a, b) => Math.abs(a - b) <= 1e-9 * Math.abs(b);
  return near(s.answer.tm, tm) && near(s.answer.tr, tr) && near(s.tags[0], tm) &&
         near(s.tags[1], tr) && window.__gle_lab.want === null;
}""".replace("SNAPSHOT", SNAPSHOT)


def load(page, url):
    page.set_default_timeout(30000)
    page.goto(url)
    page.locator(".gle-complete").wait_for(state="attached")
    page.wait_for_function("() => window.__gle_lab && window.__gle_lab.answer !== undefined")
    # paused: the server's cards then say "measuring…" until the next change, as the page's
    page.locator(".gle-play button").click()
    page.wait_for_function("""() => [...Bokeh.documents[0].all_models].some(m =>
        m.type === 'Toggle' && m.css_classes.includes('gle-play') && m.label === 'Play')""")


def move_and_compare(page, cls, value):
    """Move a τ slider; the page's answer (same task) must be what the server then sends."""
    before = page.evaluate(SNAPSHOT)
    mine = page.evaluate(MOVE, [cls, value])
    tm, tr = mine["want"]["tm"], mine["want"]["tr"]
    assert (tm, tr) != (before["answer"]["tm"], before["answer"]["tr"])
    page.wait_for_function(SERVER_AT, arg=[tm, tr])
    theirs = page.evaluate(SNAPSHOT)
    assert mine["cards"] == theirs["cards"]
    for key in ("tr", "rel", "tm", "story", "status", "range"):
        assert mine[key] == theirs[key], key
    assert mine["tags"] != theirs["tags"]           # the page's curves came before the server's
    for col, values in theirs["curves"].items():
        assert len(mine["curves"][col]) == len(values) == 241, col
        for a, b in zip(mine["curves"][col], values):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (col, a, b)
    return mine, theirs


def test_tau_changes_are_answered_in_the_page_as_the_server_answers_them(page, server):
    load(page, server.url)
    # τr across τm: both cards flip (rate LAGS → LEADS, error LEADS → LAGS)
    mine, _ = move_and_compare(page, "gle-tau-r", 2.0)
    assert 'class="gle-card lead" id="gle-forward"' in mine["cards"][0]
    assert 'class="gle-card lag" id="gle-error"' in mine["cards"][1]
    assert "analytic +18.5° (+0.323 rad) · leads" in mine["cards"][0]   # atan 2 − atan 1
    assert mine["rel"] == ">" and mine["status"].startswith("measuring… (settling 6 a.u.")
    g = mine["curves"]
    i = g["w"].index(1.0)
    assert math.isclose(g["forward_gain"][i], math.sqrt(5 / 2), rel_tol=1e-12)
    assert math.isclose(g["forward_phase"][i], math.degrees(math.atan(2) - math.atan(1)),
                        rel_tol=1e-12)
    # τm, then the LE limit (τr = τm): in phase, "no lag"
    move_and_compare(page, "gle-tau-m", 0.5)
    mine, _ = move_and_compare(page, "gle-tau-r", 0.5)
    assert 'class="gle-card zero"' in mine["cards"][0] and "IN PHASE" in mine["cards"][0]
    assert mine["story"] == "no lag: the LE limit"
    # and back below τm
    mine, _ = move_and_compare(page, "gle-tau-r", 0.1)
    assert 'class="gle-card lag" id="gle-forward"' in mine["cards"][0]


def test_ie_mode_constant_input_and_another_neuron(page, server):
    # IE: the error card is in phase whatever τ (e = ε)
    load(page, server.url + "?error_mode=ie")
    mine, _ = move_and_compare(page, "gle-tau-r", 3.0)
    assert 'class="gle-card lead" id="gle-forward"' in mine["cards"][0]
    assert 'class="gle-card zero" id="gle-error"' in mine["cards"][1]
    # a constant input: no phase on the cards, the relation line still follows
    load(page, server.url + "?waveform=constant")
    mine, _ = move_and_compare(page, "gle-tau-r", 2.0)
    assert mine["rel"] == ">" and "no phase" in mine["status"]
    # the small network's second neuron (its own τ, its own ω: the three-sine input)
    load(page, server.url + "?preset=small_network&neuron=1")
    before = page.evaluate(SNAPSHOT)
    move_and_compare(page, "gle-tau-m", before["answer"]["tm"] * 2)


def test_what_the_server_sent_for_the_old_tau_does_not_flip_the_page_back(page, server):
    load(page, server.url)
    before = page.evaluate(SNAPSHOT)
    # the user's change, then (same task) the server's cards and curves for the old τ, as a
    # frame that left the server before the change would bring them
    after = page.evaluate("""async ([cls, value]) => {
      const doc = Bokeh.documents[0];
      let slider = null, pane = null, src = null;
      for (const m of doc.all_models) {
        if (m.css_classes && m.css_classes.includes(cls) && m.start !== undefined) slider = m;
        if (m.css_classes && m.css_classes.includes('gle-view-phase')) pane = m;
        if (m.data && m.data.forward_gain !== undefined) src = m;
      }
      const oldText = pane.text, oldData = src.data, oldTags = src.tags;
      slider.value = Math.log10(value);
      pane.setv({text: oldText}, {sync: false});
      src.setv({tags: oldTags}, {sync: false});
      src.setv({data: oldData}, {sync: false});
      await Promise.resolve();                   // the cards' mutation observer has run
      await new Promise(r => requestAnimationFrame(r));
      return (SNAPSHOT)();
    }""".replace("SNAPSHOT", SNAPSHOT), ["gle-tau-r", 2.0])
    assert 'class="gle-card lead" id="gle-forward"' in after["cards"][0]
    assert after["rel"] == ">"
    i = after["curves"]["w"].index(1.0)
    assert after["curves"]["forward_phase"][i] > 0 > before["curves"]["forward_phase"][i]
    # then the server's own answer arrives and stands
    page.wait_for_function(SERVER_AT, arg=[1.0, 2.0])
    # a change the server makes to a slider (a refused value, learning) ends the page's answer
    ended = page.evaluate("""() => {
      let slider = null;
      for (const m of Bokeh.documents[0].all_models)
        if (m.css_classes && m.css_classes.includes('gle-tau-r') && m.start !== undefined)
          slider = m;
      slider.value = Math.log10(5.0);
      const wanted = window.__gle_lab.want !== null;
      slider.setv({value: Math.log10(2.0)}, {sync: false});
      return [wanted, window.__gle_lab.want];
    }""")
    assert ended == [True, None]
