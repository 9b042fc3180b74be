"""End-to-end: the AM adjoint λ overlay and the AM error mode in headless Chromium."""
from __future__ import annotations

LAMBDA = """() => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.data && m.data.lam0 !== undefined) {
      const l = Array.from(m.data.lam0), t = Array.from(m.data.t);
      return [t.length, t.length ? t[t.length - 1] : null, Math.max(...l.map(Math.abs)),
              l.every(Number.isFinite)];
    }
  return null;
}"""
LAMBDA_STYLE = """() => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.glyph && m.glyph.y && m.glyph.y.field === 'lam0')
      return [m.glyph.line_color.value ?? m.glyph.line_color,
              Array.from(m.glyph.line_dash.value ?? m.glyph.line_dash)];
  return null;
}"""
LEGEND = """() => {
  const labels = [];
  for (const m of Bokeh.documents[0].all_models)
    if (m.type === 'LegendItem' || (m.label && m.renderers)) labels.push(m.label.value);
  return labels;
}"""
TRACE_END = """() => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.data && m.data.eps0 !== undefined) { const t = m.data.t; return t[t.length - 1]; }
}"""


#: the end time of the newest trace source (a rebuild adds a new one; old ones may linger)
NEW_TRACES_END = """(() => {
  let best = null;
  for (const m of Bokeh.documents[0].all_models)
    if (m.data && m.data.eps0 !== undefined && (best === null ||
        Number(m.id.slice(1)) > Number(best.id.slice(1)))) best = m;
  const t = best.data.t; return t.length ? [t[0], t[t.length - 1], best.id] : [-1, -1, best.id];
})()"""


def test_lambda_overlay_streams_dash_dot_in_its_neurons_colour_with_a_legend(app_page):
    page = app_page
    page.wait_for_function(f"() => {{ const r = ({LAMBDA})(); return r && r[0] > 100; }}")
    n, t_end, lam_max, finite = page.evaluate(LAMBDA)
    assert finite and 0.05 < lam_max < 5.0       # phase_inversion: |λ| ~ 0.5
    color, dash = page.evaluate(LAMBDA_STYLE)
    # the neuron's colour (one colour per neuron across the page), told apart from e (solid)
    # and ε (dotted) by its dash-dot style
    from gle_lab.views.style import neuron_color
    assert color.lower() == neuron_color(0).lower() and len(dash) == 4     # dash-dot
    assert "λ n1 (AM)" in page.evaluate(LEGEND)
    # refreshed while running: the overlay's end follows the traces
    page.wait_for_function(f"() => ({LAMBDA})()[1] > {t_end} + 0.5")


def test_am_mode_button_switches_the_running_simulation_and_says_so(app_page):
    page = app_page
    page.wait_for_function(f"() => ({TRACE_END})() > 3")
    old_id = page.evaluate("() => " + NEW_TRACES_END)[2]
    assert not page.locator(".gle-am-window").is_visible()
    page.locator(".gle-error-mode button", has_text="AM").click()
    page.wait_for_function("() => [...Bokeh.documents[0].all_models].some(m => "
                           "typeof m.text === 'string' && m.text.includes('AM learning from t'))")
    page.locator(".gle-am-window").wait_for(state="visible")
    t_switch = page.evaluate("() => " + NEW_TRACES_END)[1]
    # the same trace source keeps streaming past the switch: time carries on
    page.wait_for_function("() => " + NEW_TRACES_END + f"[1] > {t_switch} + 1")
    t0, t_end, new_id = page.evaluate("() => " + NEW_TRACES_END)
    assert new_id == old_id and t_end > t_switch + 1 > 4