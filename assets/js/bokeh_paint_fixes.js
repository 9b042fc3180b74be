// GLE Lab: seven repaint costs of BokehJS 3.9 removed in the page (installed once per page).
//
// Measured in headless Chromium on the live dashboard (two plots streaming at 30 frames/s):
// style recalculation took 20 % of the page's main thread and the plots repainted at
// 14/s instead of 30/s. Three causes, fixed here without changing what is drawn:
//
// 1. Every Bokeh renderer rewrites its own <style> element (position and size) on every
//    paint, even when nothing moved; on a scrolling time axis the sizes also carry float
//    noise (437px, then 437.00000000000006px). Each rewrite invalidates the plot's styles.
//    Lengths are rounded to 1/1000 px (invisible) and an unchanged text is not rewritten.
// 2. Every colour, width and font of every visual (each tick label too) is first looked up
//    as a CSS variable (--bk-text-color, ...) with getComputedStyle, which recomputes any
//    invalidated styles first. GLE Lab defines no --bk-* variable, nor do Panel 1.9 or
//    Bokeh 3.9 themes (tests/ui checks the page for one), so the lookup always came back
//    empty: it now returns "" at once, and the model's own value is used as before.
// 3. Every axis asks its plot for the page's base font size (getComputedStyle again) on
//    every paint, for "em" font sizes. The plots' font size never changes here: it is read
//    once per plot and kept.
// 4. Every plot repaints when its data or ranges change, wherever it is: in presentation
//    mode at 1280x720 the Errors plot (streamed 30 times a second, like Activity), Fourier
//    and the microcircuit are below the fold, yet each frame drew them, and a software-
//    rasterised canvas costs the page's main thread both to draw and to hand over to the
//    compositor. A plot that has finished painting and is out of view now only remembers
//    that it must repaint, and does so as soon as any part of it comes into view
//    (an IntersectionObserver per plot). What is drawn on screen is unchanged.
// 5. A PreText (the clock, changed 8 times a second while playing) re-renders its element on
//    any change of its model, and every re-render lays the whole page out again: 15 ms of
//    the main thread each time, 12 % of it at 1600x1000. When only its text changed (every
//    other property the very same value as at the last render) the <pre>'s text is set in
//    place; any other change still re-renders.
// 6. Every paint of a plot also redraws each legend entry's glyph into its own small canvas
//    (16 of them on the Errors plot of the small network), though a legend glyph changes
//    only with its renderer's or glyph's properties (a colour, a dash, muted), never with
//    streamed data; each redrawn canvas is one more layer the compositor takes over again.
//    The glyphs are drawn when the legend's entries are (re)built, when one of their
//    renderers or glyphs changes, or when their size or the pixel ratio changes; otherwise
//    a paint leaves them as they are.
// 7. Every streamed frame gives every glyph of the streamed source its coordinates anew
//    through the renderer's view (BitSet.select: an array of all the selected row numbers
//    built first, then the column copied one element at a time through it): 5 % of the
//    page's main thread at 1600x1000. Every view here selects all rows; for a full set the
//    copy is now the column's own slice (the same values and array type; a partial set, a
//    filtered view, still goes the original way).
(function () {
  if (typeof Bokeh === "undefined" || Bokeh.require == null) return;
  const dom = Bokeh.require("core/dom");
  const sheet = dom && dom.InlineStyleSheet && dom.InlineStyleSheet.prototype;
  if (sheet != null && !sheet.__gle_quiet) {
    const update = sheet._update;
    const PX = /(-?\d+\.\d+)px/g;
    const round = (m, x) => `${Number(Number(x).toFixed(3))}px`;
    sheet._update = function (css) {
      if (typeof css === "string" && css.includes("px")) css = css.replace(PX, round);
      if (this.el.textContent !== css) update.call(this, css);
    };
    sheet.__gle_quiet = true;
  }
  const visual = Bokeh.require("core/visuals/visual");
  const props = visual && visual.VisualProperties && visual.VisualProperties.prototype;
  if (props != null && !props.__gle_no_css_vars) {
    props._get_css_value = function (_name) { return ""; };
    props.__gle_no_css_vars = true;
  }
  const canvas = Bokeh.require("models/plots/plot_canvas");
  const plot = canvas && canvas.PlotView && canvas.PlotView.prototype;
  const font = plot && Object.getOwnPropertyDescriptor(plot, "base_font_size");
  if (font != null && font.get != null && !plot.__gle_font_kept) {
    Object.defineProperty(plot, "base_font_size", {
      configurable: true,
      get() {
        if (this.__gle_font_size == null) this.__gle_font_size = font.get.call(this);
        return this.__gle_font_size;
      },
    });
    plot.__gle_font_kept = true;
  }
  if (plot != null && !plot.__gle_offscreen_waits && typeof IntersectionObserver === "function") {
    const schedule = plot.schedule_paint;
    const remove = plot.remove;
    plot.schedule_paint = function () {
      if (this.__gle_view === undefined && this.el != null) {
        this.__gle_view = new IntersectionObserver((entries) => {
          this.__gle_away = !entries[entries.length - 1].isIntersecting;
          if (!this.__gle_away && this.__gle_deferred) {
            this.__gle_deferred = false;
            schedule.call(this);
          }
        });
        this.__gle_view.observe(this.el);
      }
      // a plot waits only once it and every renderer in it have finished painting: the
      // document is ready (and Panel's onload callbacks run) only when all views have
      if (this.__gle_away && this.has_finished()) {
        this.__gle_deferred = true;
        return;
      }
      schedule.call(this);
    };
    plot.remove = function () {
      if (this.__gle_view) this.__gle_view.disconnect();
      return remove.call(this);
    };
    plot.__gle_offscreen_waits = true;
  }
  let legend = null;
  try { legend = Bokeh.require("models/annotations/legend"); } catch (e) { legend = null; }
  const legend_view = legend && legend.LegendView && legend.LegendView.prototype;
  if (legend_view != null && typeof legend_view._paint_glyphs === "function" &&
      !legend_view.__gle_glyphs_kept) {
    const paint_glyphs = legend_view._paint_glyphs;
    legend_view._paint_glyphs = function () {
      const key = `${this.model.glyph_width}x${this.model.glyph_height}@${devicePixelRatio}`;
      if (this.__gle_entries !== this.entries) {
        this.__gle_entries = this.entries;
        this.__gle_glyph_key = null;
        const dirty = () => { this.__gle_glyph_key = null; };
        for (const {item} of this.entries)
          for (const r of item.renderers)
            for (const m of [r, r.glyph, r.muted_glyph, r.nonselection_glyph])
              if (m != null && m.change != null) this.connect(m.change, dirty);
      }
      if (this.__gle_glyph_key === key) return;
      paint_glyphs.call(this);
      this.__gle_glyph_key = key;
    };
    legend_view.__gle_glyphs_kept = true;
  }
  let pretext = null;
  try { pretext = Bokeh.require("models/widgets/pretext"); } catch (e) { pretext = null; }
  const pre_view = pretext && pretext.PreTextView && pretext.PreTextView.prototype;
  if (pre_view != null && !pre_view.__gle_text_in_place) {
    const rerender = pre_view.rerender;
    const others = (model) => {
      const out = {};
      for (const [name, value] of Object.entries(model.attributes))
        if (name !== "text") out[name] = value;
      return out;
    };
    const same = (a, b) => {
      const keys = Object.keys(a);
      if (keys.length !== Object.keys(b).length) return false;
      for (const k of keys) if (a[k] !== b[k]) return false;
      return true;
    };
    pre_view.rerender = function () {
      const el = this.markup_el != null ? this.markup_el.querySelector("pre") : null;
      // only once the widget has finished (a render before the math provider loaded leaves
      // it unfinished, and the document is ready only when every view has finished)
      if (el != null && this.__gle_rendered != null && this.has_finished()
          && !this.contains_tex_string(this.model.text)
          && same(others(this.model), this.__gle_rendered)) {
        el.textContent = this.model.text;
        return;
      }
      rerender.call(this);
      this.__gle_rendered = others(this.model);
    };
    pre_view.__gle_text_in_place = true;
  }
  let bitset = null;
  try { bitset = Bokeh.require("core/util/bitset"); } catch (e) { bitset = null; }
  const bits = bitset && bitset.BitSet && bitset.BitSet.prototype;
  if (bits != null && typeof bits.select === "function" && !bits.__gle_full_slice) {
    const select = bits.select;
    bits.select = function (array) {
      if (array != null && typeof array.slice === "function" && array.length >= this.size
          && this.count === this.size)
        return array.slice(0, this.size);
      return select.call(this, array);
    };
    bits.__gle_full_slice = true;
    bits.__gle_select = select;         // the original (tests compare the two)
  }
})();
