"""A τ or ω slider is answered in the page, in the frame of the change (assets/js/page.js, 6).

The page draws what the server will send for the new τ or ω (the phase cards' analytic
phase, word and relation line; the Fourier view's analytic curves, gain axis and ω marker)
as soon as the slider moves; the server's answer then replaces it. These tests hold the
page's answer against the server's own, taken once it has arrived, for the changes a lesson
makes (τr across τm, τm, the LE limit, ω), in GLE and IE mode, for a constant input and for
another neuron of a network; and check that what the server sends for the old τ meanwhile
does not flip the cards or curves back.
"""
from __future__ import annotations

import math
import re

import pytest

pytestmark = pytest.mark.ui

#: the page's state: the cards (as HTML, the page's own mark removed), the relation line,
#: the status line and the Fourier curves, gain axis and the τ they are for
SNAPSHOT = """() => {
  const gle = window.__gle_lab;
  const box = gle.deepFind('.gle-view-phase').shadowRoot.querySelector('.gle-phase');
  const cards = [...box.querySelectorAll('.gle-card')].map(c => c.outerHTML);
  const pick = (sel) => { const el = box.querySelector(sel); return el ? el.textContent : null; };
  let src = null, range = null, markers = [];
  for (const m of Bokeh.documents[0].all_models) {
    if (m.data && m.data.forward_gain !== undefined) src = m;
  }
  for (const p of Bokeh.documents[0].all_models)
    if (p.renderers && p.y_scale &&
        p.renderers.some(r => r.data_source === src)) {
      if (p.y_scale.type === 'LogScale') range = [p.y_range.start, p.y_range.end];
      for (const s of p.center) if (s.type === 'Span' && s.dimension === 'height')
        markers.push(s.location);
    }
  const curves = {};
  for (const k of Object.keys(src.data)) curves[k] = Array.from(src.data[k]);
  return {cards, tr: pick('.gle-tr'), rel: pick('.gle-rel'), tm: pick('.gle-tm'),
          story: box.querySelector('.gle-story').innerHTML, status: pick('.gle-status'),
          omega: pick('.gle-omega-text'), markers,
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
SERVER_AT = """([tm, tr, omega]) => {
  const s = (SNAPSHOT)();
  const near = (a, b) => Math.abs(a - b) <= 1e-9 * Math.abs(b);
  return near(s.answer.tm, tm) && near(s.answer.tr, tr) && near(s.tags[0], tm) &&
         near(s.tags[1], tr) && (omega == null || near(s.answer.omega, omega)) &&
         window.__gle_lab.want === null;
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
    w = mine["want"]
    tm, tr, omega = w["tm"], w["tr"], w.get("omega")
    a = before["answer"]
    assert (tm, tr, omega) != (a["tm"], a["tr"], a["omega"])
    page.wait_for_function(SERVER_AT, arg=[tm, tr, omega if a["omega"] is not None else None])
    theirs = page.evaluate(SNAPSHOT)
    assert mine["cards"] == theirs["cards"]
    for key in ("tr", "rel", "tm", "story", "status", "range", "omega", "markers"):
        assert mine[key] == theirs[key], key
    if (tm, tr) != (a["tm"], a["tr"]):              # the page's curves came before the server's
        assert mine["tags"] != theirs["tags"]
    for col, values in theirs["curves"].items():
        assert len(mine["curves"][col]) == len(values) == 241, col
        for a, b in zip(mine["curves"][col], values):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (col, a, b)
    return mine, theirs


def test_tau_and_omega_changes_are_answered_in_the_page_as_the_server_answers_them(page, server):
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
    # ω: the phases at the new frequency, the ω line, the Fourier view's marker
    mine, _ = move_and_compare(page, "gle-omega", 2.0)
    assert mine["omega"] == "ω = 2 rad/a.u." and mine["markers"] == [2.0, 2.0]
    # τr = 0.1, τm = 0.5 at ω = 2: the continuous phase, within the Euler step's ±0.01 rad
    shown = re.search(r'gle-forward-analytic" data-phase="([-+0-9.]+)"', mine["cards"][0])
    assert abs(float(shown.group(1)) - (math.atan(2 * 0.1) - math.atan(2 * 0.5))) < 0.01


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
    # a change the server makes to a slider (a refused value, learning) ends the page's
    # answer, and what the server last sent is shown again (cards, curves, axis, marker)
    served = page.evaluate(SNAPSHOT)
    ended = page.evaluate("""() => {
      let tau = null, omega = null;
      for (const m of Bokeh.documents[0].all_models) {
        if (m.css_classes && m.css_classes.includes('gle-tau-r') && m.start !== undefined)
          tau = m;
        if (m.css_classes && m.css_classes.includes('gle-omega') && m.start !== undefined)
          omega = m;
      }
      omega.value = Math.log10(3.0);
      tau.value = Math.log10(0.2);
      const answered = (SNAPSHOT)();
      tau.setv({value: Math.log10(2.0)}, {sync: false});
      return [answered, window.__gle_lab.want, (SNAPSHOT)()];
    }""".replace("SNAPSHOT", SNAPSHOT))
    answered, want, restored = ended
    assert answered["rel"] == "<" and answered["markers"] == [3.0, 3.0]
    assert answered["curves"]["forward_phase"] != served["curves"]["forward_phase"]
    assert want is None
    for key in ("cards", "tr", "rel", "tm", "story", "status", "omega", "curves", "tags",
                "range", "markers"):
        assert restored[key] == served[key], key


def test_a_mouse_drag_across_tau_m_flips_the_cards_once_each_way(page, server):
    """A teacher drags τr from 0.1 up past τm = 1 and back while the traces stream: at every
    animation frame the rate card and the relation line follow the handle — the card flips
    LAGS → LEADS once and back once, τr's text rises then falls, nothing jumps back to an
    older value (the server's answers arrive all along, each for an older position)."""
    page.set_default_timeout(30000)
    page.goto(server.url)
    page.locator(".gle-complete").wait_for(state="attached")
    page.wait_for_function("() => window.__gle_lab && window.__gle_lab.answer !== undefined")
    page.evaluate("""() => {
      window.__rec = [];
      const host = window.__gle_lab.deepFind('.gle-view-phase');
      const tick = () => {
        const box = host.shadowRoot.querySelector('.gle-phase');
        window.__rec.push([box.querySelector('#gle-forward').className,
                           parseFloat(box.querySelector('.gle-tr').textContent.slice(5)),
                           JSON.parse(box.dataset.answer).tr]);
        if (!window.__stop) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    }""")
    handle = page.locator(".gle-tau-r .noUi-handle").bounding_box()
    base = page.locator(".gle-tau-r .noUi-base").bounding_box()
    x0, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    x1 = base["x"] + base["width"] * 0.75                     # τr ≈ 1.5
    page.mouse.move(x0, y)
    page.mouse.down()
    for a, b in ((x0, x1), (x1, x0)):
        for i in range(1, 31):
            page.mouse.move(a + (b - a) * i / 30, y)
            page.wait_for_timeout(30)
    page.mouse.up()
    # until the server's cards are back at τr = 0.1, then a few frames more
    page.wait_for_function("() => window.__rec.length > 0 && "
                           "window.__rec[window.__rec.length - 1][2] === 0.1 && "
                           "window.__gle_lab.want === null")
    rec = page.evaluate("() => { window.__stop = true; return window.__rec; }")
    shown = [r[1] for r in rec]
    top = shown.index(max(shown))
    assert max(shown) > 1.3 and shown[0] == shown[-1] == 0.1
    assert all(a <= b for a, b in zip(shown[:top], shown[1:top + 1])), shown
    assert all(a >= b for a, b in zip(shown[top:], shown[top + 1:])), shown
    classes = [c.split()[-1] for c, *_ in rec]
    runs = [c for i, c in enumerate(classes) if i == 0 or c != classes[i - 1]]
    assert [c for c in runs if c != "zero"] == ["lag", "lead", "lag"], runs
    # the page was ahead of the server: some frames showed a τr the server had not answered
    assert any(abs(r[1] - r[2]) > 1e-9 for r in rec)


def test_a_locked_slider_is_not_answered(page, server):
    """With τr locked by the teacher, a change that gets past the disabled slider (a script)
    is not answered by the page: the server refuses it and puts the slider back."""
    load(page, server.url + "?lock=tau_r")
    before = page.evaluate(SNAPSHOT)
    after = page.evaluate("""() => {
      let slider = null;
      for (const m of Bokeh.documents[0].all_models)
        if (m.css_classes && m.css_classes.includes('gle-tau-r') && m.start !== undefined)
          slider = m;
      const disabled = slider.disabled;
      slider.value = Math.log10(2.0);
      return [disabled, (SNAPSHOT)()];
    }""".replace("SNAPSHOT", SNAPSHOT))
    assert after[0] is True
    assert not after[1]["want"]
    for key in ("cards", "tr", "rel", "curves", "tags"):
        assert after[1][key] == before[key], key
    page.wait_for_function("""() => [...Bokeh.documents[0].all_models].some(m =>
        m.css_classes && m.css_classes.includes('gle-tau-r') && m.start !== undefined &&
        Math.abs(m.value + 1) < 1e-9)""")                # τr = 0.1 again: refused
