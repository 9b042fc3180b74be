// GLE Lab: skip no-op stylesheet rewrites in BokehJS (3.9).
//
// Every Bokeh renderer rewrites its own <style> element (its position) on every paint, even
// when the text is unchanged. Each rewrite invalidates the styles of the plot's shadow tree,
// and the very next colour lookup of the next renderer (getComputedStyle, for CSS-variable
// themes) then recomputes them: measured in headless Chromium on the live dashboard, style
// recalculation took 20 % of the page's main thread, halving the plots' frame rate.
// Writing only a changed text keeps the behaviour identical and the recalculations rare.
(function () {
  if (typeof Bokeh === "undefined" || Bokeh.require == null) return;
  const dom = Bokeh.require("core/dom");
  const proto = dom && dom.InlineStyleSheet && dom.InlineStyleSheet.prototype;
  if (proto == null || proto.__gle_quiet) return;
  const update = proto._update;
  proto._update = function (css) {
    if (this.el.textContent !== css) update.call(this, css);
  };
  proto.__gle_quiet = true;
})();
