"""What the page draws, and the repaint fixes GLE Lab installs in BokehJS (assets/js)."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

from .test_browser import pause, press, wait_streaming, wait_until

FIXES = """() => [
  !!Bokeh.require('core/dom').InlineStyleSheet.prototype.__gle_quiet,
  !!Bokeh.require('core/visuals/visual').VisualProperties.prototype.__gle_no_css_vars,
  !!Bokeh.require('models/plots/plot_canvas').PlotView.prototype.__gle_font_kept,
  !!Bokeh.require('models/plots/plot_canvas').PlotView.prototype.__gle_offscreen_waits,
  !!Bokeh.require('models/widgets/pretext').PreTextView.prototype.__gle_text_in_place,
  !!Bokeh.require('models/annotations/legend').LegendView.prototype.__gle_glyphs_kept,
  !!Bokeh.require('core/util/bitset').BitSet.prototype.__gle_full_slice]"""
# every --bk-* custom property defined anywhere in the page's style sheets (document and
# shadow roots): the second fix assumes there is none
BK_VARIABLES = """() => {
  const found = new Set();
  const scan = (sheets) => { for (const sheet of sheets) {
    let rules; try { rules = sheet.cssRules; } catch (e) { continue; }
    for (const rule of rules) { const st = rule.style; if (!st) continue;
      for (let i = 0; i < st.length; i++) if (st[i].startsWith('--bk-')) found.add(st[i]); } } };
  scan(document.styleSheets);
  const walk = (root) => { for (const el of root.querySelectorAll('*')) if (el.shadowRoot) {
    scan(el.shadowRoot.styleSheets); scan(el.shadowRoot.adoptedStyleSheets || []);
    walk(el.shadowRoot); } };
  walk(document);
  return [...found];
}"""
# wrap every titled plot's paint() with a counter; also count the frames streamed into the
# trace source meanwhile. window.__gle_paints() reads both; window.__gle_painted_at() gives,
# per plot, the frame count at its latest paint.
COUNT_PAINTS = """() => {
  const counts = {frames: 0};
  const at = {};
  const seen = new Set();
  const views = [];
  const visit = (v) => { if (!v || seen.has(v)) return; seen.add(v); views.push(v);
    for (const k of ['child_views', 'renderer_views']) { const c = v[k];
      if (c) for (const x of (c.values ? c.values() : c)) visit(x); } };
  for (const rv of Object.values(Bokeh.index)) visit(rv);
  for (const v of views) if (v.model && v.model.title && v.model.title.text !== undefined &&
                             v.paint) {
    const title = v.model.title.text.split(':')[0];
    const paint = v.paint.bind(v);
    counts[title] = 0;
    v.paint = (...a) => { counts[title]++; at[title] = counts.frames; return paint(...a); };
  }
  for (const m of Bokeh.documents[0].all_models)
    if (m.data && m.data.eps0 !== undefined) m.streaming.connect(() => counts.frames++);
  window.__gle_paints = () => ({...counts});
  window.__gle_painted_at = () => ({...at});
}"""


def view_search(match, none="null"):
    """A page function ``(arg) => …``: the first non-null ``match(view, arg)`` over every
    BokehJS view (depth first through child and renderer views), else ``none``."""
    return f"""(arg) => {{
  const match = {match};
  const seen = new Set();
  const visit = (v) => {{ if (!v || seen.has(v)) return null; seen.add(v);
    const hit = match(v, arg); if (hit !== null) return hit;
    for (const k of ['child_views', 'renderer_views']) {{ const c = v[k];
      if (c) for (const x of (c.values ? c.values() : c)) {{ const r = visit(x);
        if (r !== null) return r; }} }}
    return null; }};
  for (const rv of Object.values(Bokeh.index)) {{ const r = visit(rv); if (r !== null) return r; }}
  return {none};
}}"""


# whether the plot titled ``title…`` is out of view for the paint fix (its observer said so)
AWAY = view_search("""(v, title) => v.model && v.model.title &&
    String(v.model.title.text).startsWith(title) && v.__gle_view !== undefined ?
    v.__gle_away === true : null""", none="false")
LEGEND_CLICK = """(label) => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.type === 'LegendItem' && m.label && m.label.value === label) {
      const proxy = m.renderers[0];
      proxy.visible = !proxy.visible;        // what a click on the entry does
      return proxy.id;
    }
  return null;
}"""
REAL_VISIBLE = """(column) => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.type === 'GlyphRenderer' && m.glyph.y && m.glyph.y.field === column &&
        m.data_source.data.eps0 !== undefined) return m.visible;
  return null;
}"""


def test_paint_fixes_are_installed_and_no_bk_variable_exists(app_page):
    page = app_page
    wait_streaming(page)
    assert page.evaluate(FIXES) == [True] * 7
    assert page.evaluate(BK_VARIABLES) == []


def test_live_plots_repaint_every_frame_and_the_rest_rarely(app_page):
    """Every frame sent to the trace plots gets painted, and they paint for nothing else;
    the analytic and learning plots paint only when their data change (at most 5/s, i.e.
    one paint per 6 frames). Streaming, the browser may fold several frames into one paint
    when it falls behind (how often it keeps up on a given machine is bench_app's "painted"
    figure, not a test); so the "every frame" is checked where it cannot fold: the last
    frame before a pause, then frames stepped one at a time, each painted."""
    page = app_page
    wait_streaming(page, 50)
    page.evaluate(COUNT_PAINTS)
    page.wait_for_function("() => window.__gle_paints().frames >= 60")
    counts = page.evaluate("() => window.__gle_paints()")
    frames = counts["frames"]
    live = [t for t in counts if t.split(" (")[0] in ("Activity", "Errors")]   # titled by mode
    assert len(live) == 2, counts
    for title in live:
        # a paint per received frame at most (+1: a paint the counter's first frame began)
        assert 1 <= counts[title] <= frames + 1, counts
    for title in ("Gain |H(ω)|", "Phase arg H(ω)  (+ = leads)", "Weights W, biases b (teacher "
                  "dashed)", "Loss (mean squared error)"):
        assert counts[title] <= frames / 6 + 1, counts
    # paused: the frames in flight arrive, and the last of them is painted
    pause(page)
    caught_up = ("(titles) => { const n = window.__gle_paints().frames, "
                 "at = window.__gle_painted_at(); return titles.every(t => at[t] === n) && n; }")
    page.wait_for_function(caught_up, arg=live)
    # one step = one frame, painted by both trace plots
    for _ in range(3):
        before = page.evaluate("() => window.__gle_paints().frames")
        page.locator(".gle-step button").click()
        page.wait_for_function(f"() => window.__gle_paints().frames > {before}")
        assert page.wait_for_function(caught_up, arg=live).json_value() == before + 1


def test_plots_out_of_view_wait_and_repaint_as_they_come_into_view(app_page):
    """The fourth paint fix: a plot scrolled out of view does not repaint while its data
    stream (the Errors plot gets every frame), and repaints as soon as it is back."""
    page = app_page
    wait_streaming(page, 50)
    page.set_viewport_size({"width": 1600, "height": 400})
    page.evaluate("() => window.scrollTo(0, 0)")
    errors = page.locator(".gle-view-errors")
    box = errors.bounding_box()
    # the Errors view must start below a 400 px window for this test to mean anything
    assert box is not None and box["y"] > 400, box
    page.wait_for_function(AWAY, arg="Errors")    # its observer saw it leave the view
    page.evaluate(COUNT_PAINTS)
    # in view: Activity paints what streams in (a paint of the 30th frame or a later one)
    page.wait_for_function("() => (window.__gle_painted_at().Activity || 0) >= 30")
    counts = page.evaluate("() => window.__gle_paints()")
    errors_paints = [n for t, n in counts.items() if t.split(" (")[0] == "Errors"][0]
    assert counts["frames"] >= 30 and counts["Activity"] >= 1, counts
    assert errors_paints == 0, counts                               # out of view: none
    errors.scroll_into_view_if_needed()
    page.wait_for_function("() => Object.entries(window.__gle_paints()).some("
                           "([t, n]) => t.startsWith('Errors') && n > 0)")


# the clock's <pre> (in its widget's shadow root) and its model
CLOCK = """() => {
  const find = (root) => { for (const el of root.querySelectorAll('*')) if (el.shadowRoot) {
      const p = el.shadowRoot.querySelector('pre');
      if (p && p.textContent.startsWith('t = ')) return p;
      const f = find(el.shadowRoot); if (f) return f; }
    return null; };
  const model = [...Bokeh.documents[0].all_models].find(
    m => m.type === 'PreText' && m.css_classes.includes('gle-clock'));
  return [find(document), model];
}"""


def test_clock_text_changes_in_place_and_other_changes_still_render(app_page):
    """The fifth paint fix: the clock's text (8 changes a second) is set in its <pre>
    without re-rendering the widget (which laid the whole page out again each time); a
    change of any other property re-renders it as before."""
    page = app_page
    wait_streaming(page)
    page.evaluate(f"() => {{ const [pre, model] = ({CLOCK})(); window.__clock_pre = pre;"
                  f" window.__clock_text = model.text; }}")
    # the model's text changes twice, and the very same <pre> shows it
    for _ in range(2):
        page.wait_for_function(f"() => ({CLOCK})()[1].text !== window.__clock_text")
        page.evaluate(f"() => {{ window.__clock_text = ({CLOCK})()[1].text; }}")
    same, shown, text = page.evaluate(f"() => {{ const [pre, model] = ({CLOCK})();"
                                      f" return [pre === window.__clock_pre,"
                                      f" pre.textContent, model.text]; }}")
    assert same and shown == text, (same, shown, text)   # read in one synchronous call
    # another property: a full re-render (a new <pre>, the new style applied)
    page.evaluate(f"() => {{ const model = ({CLOCK})()[1];"
                  f" model.styles = {{...model.styles, color: 'rgb(1, 2, 3)'}}; }}")
    page.wait_for_function(f"() => {{ const [pre] = ({CLOCK})();"
                           f" return pre !== window.__clock_pre && !window.__clock_pre.isConnected"
                           f" && getComputedStyle(pre).color === 'rgb(1, 2, 3)'; }}")


# count the legend glyphs drawn (every renderer's draw_legend) and the frames streamed
COUNT_LEGEND_GLYPHS = """() => {
  const proto = Bokeh.require('models/renderers/glyph_renderer').GlyphRendererView.prototype;
  if (!proto.__gle_counted) {
    const draw = proto.draw_legend;
    proto.draw_legend = function (...a) {
      window.__gle_legend_draws++; window.__gle_frames_since_draw = 0;
      return draw.apply(this, a); };
    proto.__gle_counted = true;
  }
  window.__gle_legend_draws = 0; window.__gle_legend_frames = 0; window.__gle_frames_since_draw = 0;
  for (const m of Bokeh.documents[0].all_models)
    if (m.data && m.data.eps0 !== undefined) m.streaming.connect(() => {
      window.__gle_legend_frames++; window.__gle_frames_since_draw++; });
}"""
# whether the legend glyph canvas of the entry ``label`` shows magenta pixels
LEGEND_GLYPH_MAGENTA = view_search("""(v, label) => {
  if (!(v.model && v.model.type === 'Legend' && v.entries)) return null;
  for (const e of v.entries) if (e.label === label) {
    const c = e.glyph.canvas, px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < px.length; i += 4)
      if (px[i] > 200 && px[i + 1] < 80 && px[i + 2] > 200 && px[i + 3] > 100) return true;
    return false; }
  return null; }""")


def test_legend_glyphs_are_drawn_once_and_again_when_a_glyph_changes(app_page):
    """The sixth paint fix: streamed frames repaint the plots but not their legends' glyph
    canvases; a change of an entry's glyph (here the colour of ε n1) redraws them, and the
    legend shows the new colour."""
    page = app_page
    wait_streaming(page)
    page.evaluate(COUNT_LEGEND_GLYPHS)
    # The legends of the views built right after the first frame draw their glyphs when
    # they arrive, and again a few times in the next second while BokehJS settles those
    # views (their entries are rebuilt: a change of any model reachable from an item, and
    # BokehJS re-sets the stand-ins' shared CDSView's `masked` then). After that, 15 streamed
    # frames in a row without one glyph draw; without the fix every frame draws every glyph
    # (90 draws per 15 frames), so this never comes and the wait fails.
    page.wait_for_function("() => window.__gle_frames_since_draw >= 15", timeout=30000)
    draws = page.evaluate("() => window.__gle_legend_draws")
    # settling: a few rebuilds of the page's 25 entries (12-48 draws seen), not more
    assert draws < 200, draws
    assert page.evaluate(LEGEND_GLYPH_MAGENTA, "ε n1") is False
    page.evaluate("() => { window.__gle_legend_draws = 0; }")
    page.evaluate("""() => { for (const m of Bokeh.documents[0].all_models)
        if (m.type === 'LegendItem' && m.label && m.label.value === 'ε n1')
          m.renderers[0].glyph.line_color = 'rgb(255, 0, 255)'; }""")
    page.wait_for_function(f"() => ({LEGEND_GLYPH_MAGENTA})('ε n1') === true")
    assert page.evaluate("() => window.__gle_legend_draws") > 0


#: the seventh fix against BokehJS's own BitSet.select: [values, constructor name] of both
#: for full and partial sets over a typed array, a plain array and a longer column, and a
#: live line's x coordinates against its streamed source
SELECT_CASES = """() => {
  const {BitSet} = Bokeh.require('core/util/bitset');
  const {Indices} = Bokeh.require('core/types');
  const proto = BitSet.prototype;
  const show = (a) => [Array.from(a), a.constructor.name];
  const full = (n) => { const s = new BitSet(n, 1); return s; };
  const part = (n) => { const s = new BitSet(n, 1); s.unset(1); s.unset(n - 1); return s; };
  const f64 = Float64Array.from([0.5, 1.5, 2.5, 3.5, 4.5]);
  const out = [];
  for (const [set, col] of [[full(5), f64], [part(5), f64], [full(3), [7, 8, 9]],
                            [part(3), [7, 8, 9]], [full(3), f64]])
    out.push([show(proto.select.call(set, col)), show(proto.__gle_select.call(set, col))]);
  let live = null;
  for (const v of Object.values(Bokeh.index)) {
    const stack = [v];
    while (stack.length && live === null) { const x = stack.pop();
      if (x.model && x.model.type === 'GlyphRenderer' && x.model.data_source.data.eps0 !== undefined
          && x.glyph && x.glyph.x != null) {
        const src = x.model.data_source.data[x.model.glyph.x.field];
        live = [Array.from(x.glyph.x), Array.from(src), x.glyph.x.constructor.name,
                src.constructor.name];
      }
      for (const k of ['child_views', 'renderer_views']) { const c = x[k];
        if (c) for (const y of (c.values ? c.values() : c)) stack.push(y); } }
  }
  return {cases: out, live};
}"""


def test_streamed_coordinates_are_the_columns_slice_for_a_full_view(app_page):
    """The seventh paint fix: for a view that selects every row, a glyph's coordinates are
    the column's slice; the same values and array type as BokehJS's own copy, and a partial
    set still takes BokehJS's own path."""
    page = app_page
    wait_streaming(page)
    res = page.evaluate(SELECT_CASES)
    for fixed, original in res["cases"]:
        assert fixed == original
    assert res["cases"][0][0] == [[0.5, 1.5, 2.5, 3.5, 4.5], "Float64Array"]
    assert res["cases"][1][0] == [[0.5, 2.5, 3.5], "Float64Array"]
    assert res["cases"][4][0] == [[0.5, 1.5, 2.5], "Float64Array"]
    xs, column, kind, column_kind = res["live"]
    assert len(xs) > 10 and xs == column and kind == column_kind


def test_legend_click_hides_the_real_trace(app_page):
    page = app_page
    wait_streaming(page)
    assert page.evaluate(REAL_VISIBLE, "eps0") is True
    assert page.evaluate(LEGEND_CLICK, "ε n1") is not None
    page.wait_for_function(f"() => ({REAL_VISIBLE})('eps0') === false")
    page.evaluate(LEGEND_CLICK, "ε n1")
    page.wait_for_function(f"() => ({REAL_VISIBLE})('eps0') === true")


def test_address_bar_follows_a_slider(app_page):
    page = app_page
    wait_streaming(page)
    press(page, ".gle-tau-r", "PageUp", 5)          # τr 0.1 → 10^-0.5 ≈ 0.316

    def tau_r_in_url():             # replaceState: page.url does not follow, location does
        query = parse_qs(urlparse(page.evaluate("() => window.location.href")).query)
        return float(query["tau_r"][0].split(",")[0]) if "tau_r" in query else None
    wait_until(lambda: tau_r_in_url() is not None and abs(tau_r_in_url() - 0.316) < 0.01,
               timeout=5)
    time.sleep(0.5)                                  # and it stays there
    assert abs(tau_r_in_url() - 0.316) < 0.01


PRESET = """(value) => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.title === 'Preset' && m.options !== undefined) { m.value = value; return true; }
  return false;
}"""
STREAMING_COLUMN = """(column) => {
  for (const m of Bokeh.documents[0].all_models)
    if (m.data && m.data[column] !== undefined && m.data.t !== undefined &&
        m.data.eps0 !== undefined) return m.data.t.length;
  return -1;
}"""


def test_preset_switch_in_the_page_rebuilds_and_streams(app_page):
    """The preset select replaces every figure (one model-graph recompute, one message):
    the page then streams the new network's five neurons and shows its lesson."""
    page = app_page
    wait_streaming(page)
    assert page.evaluate(PRESET, "small_network")
    page.wait_for_function(f"() => ({STREAMING_COLUMN})('r4') > 20", timeout=30000)
    from gle_lab.lessons import lessons_for
    title = lessons_for("small_network")[0]["title"]
    page.wait_for_function("""(title) => [...Bokeh.documents[0].all_models].some(
        m => typeof m.text === 'string' && m.text.includes(title))""", arg=title)
    assert page.evaluate(FIXES) == [True] * 7
