// GLE Lab page script (installed once per page at document_ready, see gle_lab.views.style).
//
// 1. Keyboard: Space = play/pause, → = one step, R = reset, ? = help overlay listing the
//    shortcuts. They work whatever has the focus, except text inputs (and → on a slider,
//    which moves the slider). The focus stays where it was; if the element that had it was
//    re-rendered (the Play/Pause button relabels itself), the new Play button gets it.
// 2. Assistive technology: every slider handle is named after its slider ("τr prospective
//    (a.u.)") and reads its real value (aria-valuetext "0.1", not the log slider's -1.00);
//    plot toolbars and plot canvases are out of the Tab order (~45 stops otherwise); the
//    header, the lesson and the dashboard are landmarks (banner, region, main).
// 3. The page reports its viewport size ("1280x720") to the server through the hidden
//    `gle-viewport` text input, at load and after a resize: the server picks the layout
//    (presentation below 1600 px, phone up to 480 px; gle_lab.main.Dashboard.set_viewport).
// 4. The help button opens the help overlay; "Copy link" copies the teacher link.
// 5. The phase cards never shrink at a given page width (a shorter text would move, and
//    make BokehJS lay out and repaint, the whole page below them).
// 6. A τm, τr or ω slider is answered in the page, in the frame of the change: the phase
//    cards' analytic phase and word, the relation line and the Fourier view's analytic
//    curves and ω marker, while the server's own answer is on its way (~50 ms from an idle
//    server, more from one a class is loading). The server's answer then replaces the page's.
(function () {
  if (typeof Bokeh === "undefined") return;
  const gle = window.__gle_lab || (window.__gle_lab = {});

  // ------------------------------------------------------------------ DOM across shadow roots
  function deepFind(selector, root) {
    root = root || document;
    const hit = root.querySelector(selector);
    if (hit) return hit;
    for (const el of root.querySelectorAll("*")) {
      if (el.shadowRoot) {
        const found = deepFind(selector, el.shadowRoot);
        if (found) return found;
      }
    }
    return null;
  }
  function deepActive() {
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    return el;
  }
  function buttonOf(cls) {
    const host = deepFind("." + cls);
    if (host == null) return null;
    const root = host.shadowRoot || host;
    return root.querySelector("button") || null;
  }
  function model(cls) {
    for (const doc of Bokeh.documents)
      for (const m of doc.all_models)
        if (m.css_classes && m.css_classes.includes(cls)) return m;
    return null;
  }
  gle.deepFind = deepFind;

  // ------------------------------------------------------------------ BokehJS patches
  const req = (name) => { try { return Bokeh.require(name); } catch (e) { return null; } };
  const tb = req("models/tools/tool_button");
  const tbv = tb && tb.ToolButtonView && tb.ToolButtonView.prototype;
  if (tbv && !tbv.__gle_notab) {
    const render = tbv.render;
    tbv.render = function (...a) { const r = render.apply(this, a); this.el.tabIndex = -1; return r; };
    tbv.__gle_notab = true;
  }
  const tbar = req("models/tools/toolbar");
  const tbarv = tbar && tbar.ToolbarView && tbar.ToolbarView.prototype;
  if (tbarv && !tbarv.__gle_notab) {
    const render = tbarv.render;
    tbarv.render = function (...a) {
      const r = render.apply(this, a);
      if (this._overflow_el) this._overflow_el.tabIndex = -1;
      return r;
    };
    tbarv.__gle_notab = true;
  }
  const cnv = req("models/canvas/canvas");
  const cnvv = cnv && cnv.CanvasView && cnv.CanvasView.prototype;
  if (cnvv && !cnvv.__gle_notab) {
    const init = cnvv.initialize;
    cnvv.initialize = function (...a) {
      const r = init.apply(this, a);
      if (this.events_el) this.events_el.tabIndex = -1;
      return r;
    };
    cnvv.__gle_notab = true;
  }
  // the widgets bundle's modules are not reachable by Bokeh.require: the view class of the
  // Slider model is (its AbstractSliderView base holds render)
  const sliderModel = (Bokeh.Widgets && Bokeh.Widgets.Slider) || null;
  const sliderView = sliderModel && sliderModel.prototype.default_view;
  const slv = sliderView && Object.getPrototypeOf(sliderView.prototype);
  if (slv && !slv.__gle_aria) {
    const render = slv.render;
    const plain = (s) => String(s == null ? "" : s).replace(/\$+/g, "").trim();
    slv._gle_aria = function (values) {
      if (!this.slider_el) return;
      const name = plain(this.model.title) || "slider";
      const handles = this.slider_el.querySelectorAll(".noUi-handle");
      handles.forEach((h, i) => {
        const v = values != null ? values[i] : (Array.isArray(this.model.value) ?
          this.model.value[i] : this.model.value);
        h.setAttribute("aria-label", name);
        if (v != null && this.pretty) h.setAttribute("aria-valuetext", `${this.pretty(Number(v))}`);
      });
    };
    slv.render = function (...a) {
      const r = render.apply(this, a);
      try {
        this._gle_aria();
        this.__gle_hooked = true;
        if (this._noUiSlider)
          this._noUiSlider.on("update.gle", (_v, _h, unencoded) => this._gle_aria(unencoded));
      } catch (e) { /* accessibility only: never break a slider */ }
      return r;
    };
    slv.__gle_aria = true;
  }
  // accessible names where BokehJS renders none: spinner arrows, checkboxes, file inputs
  const NAMERS = {
    Spinner: (v) => {
      const root = v.shadow_el || v.el;
      const title = plain(v.model.title) || "value";
      for (const [cls, what] of [[".bk-spin-btn-up", "increase"], [".bk-spin-btn-down", "decrease"]])
        for (const b of root.querySelectorAll(cls)) b.setAttribute("aria-label", `${what} ${title}`);
    },
    Checkbox: (v) => {
      const root = v.shadow_el || v.el;
      const input = root.querySelector("input");
      if (input && v.model.label) input.setAttribute("aria-label", plain(v.model.label));
    },
    FileInput: (v) => {
      const root = v.shadow_el || v.el;
      const input = root.querySelector("input");
      if (input) input.setAttribute("aria-label", plain(v.model.title) || "Choose a file");
    },
  };
  function plain(s) { return String(s == null ? "" : s).replace(/\$+/g, "").trim(); }
  for (const [name, namer] of Object.entries(NAMERS)) {
    const cls = Bokeh.Widgets && Bokeh.Widgets[name];
    const view = cls && cls.prototype.default_view;
    const proto = view && view.prototype;
    if (proto && !proto.__gle_named) {
      const render = proto.render;
      proto.render = function (...a) {
        const r = render.apply(this, a);
        try { namer(this); } catch (e) { /* names only: never break a widget */ }
        return r;
      };
      proto.__gle_named = true;
      proto.__gle_namer = namer;
    }
  }
  // views rendered before this script ran (the header's speed slider)
  function eachView(fn) {
    const seen = new Set();
    const visit = (v) => {
      if (v == null || seen.has(v)) return;
      seen.add(v);
      fn(v);
      const kids = v.child_views;
      if (kids) for (const k of (kids.values ? kids.values() : kids)) visit(k);
    };
    for (const v of Object.values(Bokeh.index || {})) visit(v);
  }
  eachView((v) => { if (v.__gle_namer) try { v.__gle_namer(v); } catch (e) { /* */ } });
  if (sliderView) eachView((v) => {
    if (v instanceof sliderView && !v.__gle_hooked && v._noUiSlider) {
      v.__gle_hooked = true;
      v._gle_aria();
      v._noUiSlider.on("update.gle", (_v, _h, unencoded) => v._gle_aria(unencoded));
    }
  });

  // landmarks (a screen reader's map of the page): the header, the lesson, the dashboard
  const LANDMARKS = {"gle-header-row": ["banner", null], "gle-lesson": ["region", "Lesson"],
                     "gle-body": ["main", null], "gle-phone-main": ["main", null]};
  function landmark(v) {
    const classes = (v.model && v.model.css_classes) || [];
    for (const cls of classes) {
      const lm = LANDMARKS[cls];
      if (lm && v.el && v.el.getAttribute("role") !== lm[0]) {
        v.el.setAttribute("role", lm[0]);
        if (lm[1]) v.el.setAttribute("aria-label", lm[1]);
      }
    }
  }
  const ldom = req("models/layouts/layout_dom");
  const ldv = ldom && ldom.LayoutDOMView && ldom.LayoutDOMView.prototype;

  // the phase cards keep the tallest height they have had at the page's current width. Their
  // texts change with every τr or τm change ("rate lags, error leads" and "rate leads, error
  // lags" wrap differently; "measuring…" comes and goes), and a card row 10 px shorter or
  // taller moved everything below it: BokehJS then laid the whole page out again and
  // repainted every plot, in the very frame that should show the change (measured at
  // 1280x720: the root, the body, the main column and the cards resized on every τr change).
  function holdHeight(v) {
    const classes = (v.model && v.model.css_classes) || [];
    const el = v.el;
    if (!classes.includes("gle-view-phase") || el == null || el.__gle_held ||
        typeof ResizeObserver !== "function") return;
    el.__gle_held = true;
    let width = -1, tallest = 0;
    new ResizeObserver(() => {
      const box = el.getBoundingClientRect();
      if (Math.abs(box.width - width) >= 1) {     // another layout or window: measure afresh
        width = box.width;
        el.style.minHeight = "";
        tallest = el.getBoundingClientRect().height;
        el.style.minHeight = `${Math.ceil(tallest)}px`;
      } else if (box.height > tallest) {
        tallest = box.height;
        el.style.minHeight = `${Math.ceil(tallest)}px`;
      }
    }).observe(el);
  }
  // ------------------------------------------------------------------ sliders answered here
  // A user's change of τm, τr or ω (a change the page sends to the server: `sync`) is
  // answered at once from the same formulas the server uses: the selected neuron's analytic
  // phases at the input's ω, Euler-exact (gle_lab.state.LabState.analytic: D⁺τr I⁻τm;
  // D⁺τm I⁻τr for GLE errors, e = ε otherwise), the continuous gain and phase curves of the
  // Fourier view (gle_lab.views.fourier) and its ω marker. The cards then say "measuring…",
  // as the server's will. The server's cards carry the τ and ω they are for
  // (`data-answer`), its curves their taus (the source's tags): whatever the server sends
  // for other values while the change is on its way is answered again, so nothing flips
  // back. A change the server makes to a slider (a refused value, learning, another neuron),
  // or no answer within 5 s, withdraws the page's answer: the server's last is shown again.
  // the relation line's words, as gle_lab.views.phase.STORIES
  const STORIES = {"<": "rate <b>lags</b>, error <b>leads</b>",
                   ">": "rate <b>leads</b>, error <b>lags</b>", "=": "no lag: the LE limit"};
  const SIG3 = (x) => (x === 0 || !isFinite(x)) ? x : Number(x.toPrecision(3));
  const G3 = (x) => String(Number(x.toPrecision(3)));         // Python's f"{x:.3g}" here
  const same = (a, b) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b));
  const signed = (x, n) => `${x < 0 ? "-" : "+"}${Math.abs(x).toFixed(n)}`;
  function degrees(phase) {                                   // gle_lab.state.format_degrees
    const d = Math.round(phase * 1800 / Math.PI) / 10;
    return d === 0 ? "0.0°" : `${signed(d, 1)}°`;
  }
  function signWord(phase, zero) {                            // gle_lab.state.sign_word
    if (!isFinite(phase)) return ["", "…"];
    if (Math.abs(phase) < zero) return ["zero", "IN PHASE"];
    return phase > 0 ? ["lead", "LEADS"] : ["lag", "LAGS"];
  }
  // arg of (1 + a σ)/(1 + b σ), σ = (e^{iω dt} − 1)/dt (gle_core.fourier, Euler-exact)
  function eulerPhase(omega, dt, a, b) {
    const half = Math.sin(0.5 * omega * dt);
    const re = -2 * half * half / dt, im = Math.sin(omega * dt) / dt;
    let p = Math.atan2(a * im, 1 + a * re) - Math.atan2(b * im, 1 + b * re);
    if (p > Math.PI) p -= 2 * Math.PI; else if (p <= -Math.PI) p += 2 * Math.PI;
    return p;
  }
  const text = (root, sel, value) => { const el = root.querySelector(sel);
                                       if (el && el.textContent !== value) el.textContent = value; };
  function phaseBox() {
    const v = gle.phaseView;
    const root = v && v.el && v.el.isConnected ? v.shadow_el : null;
    return root ? root.querySelector(".gle-phase[data-answer]") : null;
  }
  function serverState() {
    const box = phaseBox();
    if (box) try { const a = JSON.parse(box.dataset.answer);
                   return {tm: a.tm, tr: a.tr, omega: a.omega}; }
             catch (e) { /* no answer data: the curves' */ }
    const src = curvesSource();
    return src && src.tags.length === 2 ? {tm: src.tags[0], tr: src.tags[1], omega: null} : null;
  }
  function answerCards(want) {
    const box = phaseBox();
    if (box == null) return true;
    const a = JSON.parse(box.dataset.answer);
    // a constant input has no ω: the ω slider changes nothing here
    const omega = a.omega == null || want.omega == null ? a.omega : want.omega;
    if (same(a.tm, want.tm) && same(a.tr, want.tr) && (omega == null || same(a.omega, omega)))
      return true;                                     // the server's text is current
    const key = `${want.tm} ${want.tr} ${omega}`;
    if (box.dataset.answered === key) return false;
    box.dataset.answered = key;
    const {tm, tr} = want;
    const rel = tr < tm * (1 - 1e-9) ? "<" : (tr > tm * (1 + 1e-9) ? ">" : "=");
    text(box, ".gle-tr", `τr = ${G3(tr)}`);
    text(box, ".gle-rel", rel);
    text(box, ".gle-tm", `τm = ${G3(tm)}`);
    const story = box.querySelector(".gle-story");
    if (story) story.innerHTML = STORIES[rel];
    if (omega == null) return false;                   // a constant input: no phase to show
    text(box, ".gle-omega-text", `ω = ${G3(omega)} rad/a.u.`);
    for (const [key, num, den] of [["forward", tr, tm], ["error", tm, tr]]) {
      const card = box.querySelector(`#gle-${key}`);
      if (card == null) continue;
      const phase = key === "error" && a.error !== "gle" ? 0 : eulerPhase(omega, a.dt, num, den);
      const [cls, word] = signWord(phase, a.zero);
      card.className = `gle-card ${cls}`;
      card.dataset.verdict = "measuring";
      const big = card.querySelector(".gle-big");
      if (big && isFinite(parseFloat(big.dataset.phase))) big.classList.add("gle-stale");
      else if (big) { big.classList.remove("gle-none"); big.textContent = "—"; }
      text(card, ".gle-word", word);
      text(card, ".gle-note", "measuring…");
      const ana = card.querySelector(".gle-analytic");
      if (ana) {
        ana.textContent = `analytic ${degrees(phase)} (${signed(phase, 3)} rad) · ${word.toLowerCase()}`;
        ana.dataset.phase = phase.toFixed(4);
      }
    }
    const settle = Math.min(3 * Math.max(tm, tr), 60), period = 2 * Math.PI / omega;
    text(box, ".gle-status", `measuring… (settling ${G3(settle)} a.u. + one period ${G3(period)} a.u.)`);
    return false;
  }
  function curvesSource() {
    const src = gle.curves;
    if (src && src.document != null) return src;
    gle.curves = null;
    for (const doc of Bokeh.documents)
      for (const m of doc.all_models)
        if (m.data && m.data.forward_gain !== undefined && m.data.w !== undefined) {
          gle.curves = m;
          m.properties.data.change.connect(() => {
            if (gle.setting) return;
            m.__gle_answered = m.__gle_saved = null;  // the server's data: answer it afresh
            if (gle.want) answer();
          });
          // the gain plot (a log y axis over these curves) and both plots' ω markers
          m.__gle_markers = [];
          for (const p of doc.all_models)
            if (p.renderers && p.center && p.renderers.some((r) => r.data_source === m)) {
              if (p.y_scale && p.y_scale.type === "LogScale") m.__gle_gain_range = p.y_range;
              for (const span of p.center)
                if (span.type === "Span" && span.dimension === "height") {
                  m.__gle_markers.push(span);
                  span.properties.location.change.connect(() => {
                    if (gle.setting) return;
                    m.__gle_saved_markers = null;
                    if (gle.want) answer();
                  });
                }
            }
          return m;
        }
    return null;
  }
  // a change of the page's own (the listeners above then know it is not the server's)
  function ownSet(model, attrs) {
    gle.setting = true;
    try { model.setv(attrs, {sync: false}); } finally { gle.setting = false; }
  }
  function setGainRange(src, gains) {                   // gle_lab.streaming.decade_bounds
    const range = src.__gle_gain_range;
    let lo = Infinity, hi = -Infinity;
    for (const g of gains) for (const x of g) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    if (range == null || !isFinite(lo) || lo <= 0) return;
    const a = Math.floor(Math.log10(lo / 1.2)), b = Math.ceil(Math.log10(hi * 1.2));
    const start = 10 ** a, end = 10 ** Math.max(b, a + 1);
    if (range.start !== start || range.end !== end) ownSet(range, {start, end});
  }
  function answerCurves(want) {
    const src = curvesSource();
    if (src == null) return true;
    if (want.omega != null)                            // the ω marker (the server's, at once)
      for (const span of src.__gle_markers)
        if (span.location !== want.omega) {
          if (src.__gle_saved_markers == null)
            src.__gle_saved_markers = src.__gle_markers.map((m) => m.location);
          ownSet(span, {location: want.omega});
        }
    const [tm, tr] = src.tags;
    if (same(tm, want.tm) && same(tr, want.tr)) return true;
    const key = `${want.tm} ${want.tr}`;
    if (src.__gle_answered === key) return false;
    src.__gle_answered = key;
    const w = src.data.w, n = w.length, deg = 180 / Math.PI;
    const cols = {};
    for (const k of ["forward", "gle_error", "am_adjoint"])
      for (const c of ["gain", "phase"]) cols[`${k}_${c}`] = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      // (1 + iωτr)/(1 + iωτm); the GLE error is its inverse, the AM adjoint its conjugate
      const x = w[i] * want.tr, y = w[i] * want.tm;
      const gain = Math.sqrt((1 + x * x) / (1 + y * y)), phase = (Math.atan(x) - Math.atan(y)) * deg;
      cols.forward_gain[i] = gain; cols.forward_phase[i] = phase;
      cols.gle_error_gain[i] = 1 / gain; cols.gle_error_phase[i] = -phase;
      cols.am_adjoint_gain[i] = gain; cols.am_adjoint_phase[i] = -phase;
    }
    if (src.__gle_saved == null) src.__gle_saved = src.data;
    ownSet(src, {data: Object.assign({}, src.data, cols)});
    setGainRange(src, [cols.forward_gain, cols.gle_error_gain]);
    return false;
  }
  // the page's answer withdrawn (the server changed a slider, or its answer did not come):
  // what the server last sent is shown again
  function withdraw() {
    gle.want = null;
    const box = phaseBox(), v = gle.phaseView;
    if (box && box.dataset.answered && typeof v.set_html === "function" &&
        typeof v.process_tex === "function") v.set_html(v.process_tex());
    const src = gle.curves;
    if (src == null) return;
    if (src.__gle_saved != null) {
      const data = src.__gle_saved;
      src.__gle_saved = src.__gle_answered = null;
      ownSet(src, {data});
      setGainRange(src, ["forward_gain", "gle_error_gain", "am_adjoint_gain"].map((k) => data[k]));
    }
    if (src.__gle_saved_markers != null) {
      src.__gle_markers.forEach((span, i) => ownSet(span, {location: src.__gle_saved_markers[i]}));
      src.__gle_saved_markers = null;
    }
  }
  function answer() {
    const want = gle.want;
    if (want == null) return;
    if (performance.now() - want.t > 5000) { withdraw(); return; }   // no answer came
    let done = true;
    try { done = answerCards(want) && done; } catch (e) { /* the server's cards stand */ }
    try { done = answerCurves(want) && done; } catch (e) { /* the server's curves stand */ }
    if (done) {
      gle.want = null;
      const src = gle.curves;
      if (src) src.__gle_saved = src.__gle_saved_markers = null;
    }
  }
  gle.answer = answer;
  function onDocChange(ev) {
    if (ev.kind !== "ModelChanged" || ev.attr !== "value" || ev.model == null) return;
    const classes = ev.model.css_classes || [];
    const kind = classes.includes("gle-tau-m") ? "tm" : classes.includes("gle-tau-r") ? "tr" :
                 classes.includes("gle-omega") ? "omega" : null;
    if (kind == null) return;
    if (!ev.sync) { if (gle.want) withdraw(); return; }  // the server set it: its answer stands
    if (ev.model.disabled) return;                     // locked by the teacher: to be refused
    const base = gle.want || serverState();
    if (base == null || !isFinite(ev.value)) return;
    gle.want = {tm: base.tm, tr: base.tr, omega: base.omega, [kind]: SIG3(10 ** ev.value),
                t: performance.now()};
    answer();
  }
  for (const doc of Bokeh.documents)
    if (!doc.__gle_answers) { doc.__gle_answers = true; doc.on_change(onDocChange); }
  // the phase cards' view: whatever the server's text brings while a change is on its way
  // (a mutation observer's callback runs before the page is painted)
  function watchCards(v) {
    const classes = (v.model && v.model.css_classes) || [];
    if (!classes.includes("gle-view-phase") || v.shadow_el == null) return;
    gle.phaseView = v;
    if (v.__gle_watched || typeof MutationObserver !== "function") return;
    v.__gle_watched = true;
    new MutationObserver(() => { if (gle.want) answer(); })
      .observe(v.shadow_el, {childList: true, subtree: true});
  }

  // every layout view, when it renders (and those rendered before this script ran): its
  // landmark role, and the held height of the phase cards
  function onRender(v) {
    try { landmark(v); } catch (e) { /* roles only: never break a layout */ }
    try { holdHeight(v); } catch (e) { /* a steadier page only: never break a layout */ }
    try { watchCards(v); } catch (e) { /* an earlier answer only: never break a layout */ }
  }
  if (ldv && !ldv.__gle_on_render) {
    const render = ldv.render;
    ldv.render = function (...a) {
      const r = render.apply(this, a);
      onRender(this);
      return r;
    };
    ldv.__gle_on_render = true;
  }
  eachView(onRender);

  // ------------------------------------------------------------------ viewport report
  gle.report = function () {
    const m = model("gle-viewport");
    if (m == null) return false;
    const v = `${window.innerWidth}x${window.innerHeight}`;
    if (m.value !== v) { m.value = v; gle.reported = performance.now(); }
    return true;
  };
  if (!gle.report()) setTimeout(gle.report, 200);
  if (!gle.resize) {
    let timer = null;
    gle.resize = () => { clearTimeout(timer); timer = setTimeout(gle.report, 250); };
    window.addEventListener("resize", gle.resize);
  }

  // ------------------------------------------------------------------ help overlay
  const SHORTCUTS = [["Space", "play / pause"], ["→", "one step (speed / 30 a.u.)"],
                     ["R", "reset to t = 0"], ["?", "this help"], ["Esc", "close this help"]];
  function helpEl() {
    let el = document.getElementById("gle-help");
    if (el) return el;
    el = document.createElement("div");
    el.id = "gle-help";
    el.setAttribute("role", "dialog");
    el.setAttribute("aria-modal", "true");
    el.setAttribute("aria-labelledby", "gle-help-title");
    el.hidden = true;
    el.style.cssText = "position:fixed;inset:0;background:rgba(0,0,0,0.45);z-index:10000;" +
      "display:none;align-items:center;justify-content:center;font-family:system-ui,sans-serif;";
    const rows = SHORTCUTS.map(([k, what]) =>
      `<tr><th scope="row" style="text-align:left;padding:6px 18px 6px 0"><kbd style="font:inherit;` +
      `border:1px solid #595959;border-radius:4px;padding:2px 8px;background:#f2f2f2">${k}</kbd></th>` +
      `<td style="padding:6px 0">${what}</td></tr>`).join("");
    el.innerHTML =
      `<div style="background:#fff;color:#1a1a1a;border-radius:10px;padding:20px 28px;` +
      `min-width:300px;max-width:90vw;font-size:18px;box-shadow:0 8px 30px rgba(0,0,0,.3)">` +
      `<h2 id="gle-help-title" style="margin:0 0 10px;font-size:22px">Keyboard shortcuts</h2>` +
      `<table style="border-collapse:collapse">${rows}</table>` +
      `<p style="font-size:15px;color:#4d4d4d;margin:12px 0">They work wherever the focus is, ` +
      `except in text fields; on a slider, ← and → move the slider (Page Up and Page Down: ` +
      `five times as far).</p>` +
      `<button type="button" id="gle-help-close" style="font-size:17px;min-height:44px;` +
      `min-width:44px;padding:6px 18px;border:1px solid #595959;border-radius:6px;` +
      `background:#fff;color:#1a1a1a;cursor:pointer">Close</button></div>`;
    document.body.appendChild(el);
    el.addEventListener("click", (e) => { if (e.target === el) gle.help(false); });
    el.querySelector("#gle-help-close").addEventListener("click", () => gle.help(false));
    return el;
  }
  gle.help = function (show) {
    const el = helpEl();
    const open = show == null ? el.hidden : !!show;
    if (open && el.hidden) {
      gle.helpReturn = deepActive();
      el.hidden = false;
      el.style.display = "flex";
      el.querySelector("#gle-help-close").focus();
    } else if (!open && !el.hidden) {
      el.hidden = true;
      el.style.display = "none";
      const back = gle.helpReturn;
      if (back && back.isConnected && back.focus) back.focus();
    }
    return !el.hidden;
  };

  // ------------------------------------------------------------------ buttons that act here
  // The help button ("?") and the teacher link's "Copy link" act in the browser only. One
  // click listener on the page, not a Panel js_on_click: a Panel JS link puts the session
  // in Panel's link registry, and then every later layout change of that session walks the
  // whole document for links (~40 % of the CPU of completing a session's layout).
  const hostWith = (path, cls) => path.find((n) => n.classList && n.classList.contains(cls));
  gle.copyLink = function () {
    const link = model("gle-teacher-link"), button = model("gle-teacher-copy");
    if (link == null) return;
    const text = link.value;
    function fallback() {
      const ta = document.createElement("textarea");
      ta.value = text; ta.setAttribute("readonly", "");
      ta.style.position = "fixed"; ta.style.opacity = "0";
      document.body.appendChild(ta); ta.select();
      try { document.execCommand("copy"); } finally { ta.remove(); }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).catch(fallback);
    } else { fallback(); }
    if (button != null) {
      button.label = "Copied ✓";
      setTimeout(() => { button.label = "Copy link"; }, 1500);
    }
  };
  if (!gle.clicks) {
    gle.clicks = true;
    document.addEventListener("click", (e) => {
      const path = e.composedPath();
      if (hostWith(path, "gle-help-button")) gle.help(true);
      else if (hostWith(path, "gle-teacher-copy")) gle.copyLink();
    });
  }

  // ------------------------------------------------------------------ keyboard
  const TEXT_TYPES = new Set(["text", "search", "email", "url", "tel", "password", "number",
                              "date", "time", "datetime-local", "month", "week"]);
  function typing(el) {
    if (el == null) return false;
    if (el.isContentEditable) return true;
    const tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && TEXT_TYPES.has((el.type || "text").toLowerCase());
  }
  function keepFocus(before) {
    // the control that had the focus may be re-rendered by the change: give the focus to
    // the new Play button instead of losing it to the page (gle.focusPending: restores
    // still to come, for tests that move the focus themselves)
    gle.focusPending = (gle.focusPending || 0) + 1;
    setTimeout(() => {
      gle.focusPending -= 1;
      const now = deepActive();
      if (before && before.isConnected && now !== before && before.focus) before.focus();
      else if ((now == null || now === document.body) && before && !before.isConnected) {
        const play = buttonOf("gle-play");
        if (play) play.focus();
      }
    }, 300);
  }
  // a control the teacher hid or locked has no shortcut either
  const usable = (cls) => { const m = model(cls); return m != null && m.visible !== false &&
                                                         !m.disabled; };
  function act(key) {
    if (key === " ") {
      if (!usable("gle-play")) return false;
      const m = model("gle-play");
      m.active = !m.active;
      return true;
    }
    const cls = key === "ArrowRight" ? "gle-step" : "gle-reset";
    if (!usable(cls)) return false;
    const b = buttonOf(cls);
    if (b && !b.disabled) { b.click(); return true; }
    return false;
  }
  if (!gle.keys) {
    gle.keys = true;
    window.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const target = e.composedPath()[0];
      const helpOpen = !helpEl().hidden;
      if (helpOpen) {
        if (e.key === "Escape" || e.key === "?") { gle.help(false); e.preventDefault(); }
        return;                            // the dialog is modal: no other shortcut
      }
      if (typing(target)) return;
      if (e.key === "?") { gle.help(true); e.preventDefault(); return; }
      if (e.key === "ArrowRight" && target && target.getAttribute &&
          target.getAttribute("role") === "slider") return;
      if (e.key === " " || e.key === "ArrowRight" || e.key === "r" || e.key === "R") {
        if (e.repeat) { e.preventDefault(); return; }
        const before = deepActive();
        if (act(e.key)) {
          e.preventDefault();
          e.stopPropagation();
          keepFocus(before);
        }
      }
    }, true);
    // a focused button or checkbox would also act on Space's keyup: it already did
    window.addEventListener("keyup", (e) => {
      if (e.key === " " && !typing(e.composedPath()[0])) e.preventDefault();
    }, true);
  }
})();
