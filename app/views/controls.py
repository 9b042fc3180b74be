"""Controls: every widget is generated from a :class:`~app.state.LabState` parameter
(``pn.Param`` / ``Widget.from_param``: bounds, labels and ``doc`` tooltips come from the state);
time constants, frequency, speed, learning rate and β get log-scaled sliders."""
from __future__ import annotations

import math
from contextlib import nullcontext

import panel as pn
from bokeh.models import CustomJSTickFormatter, PreText

from ..compat import patch_enabled

#: server-side debounce (ms) of slider changes (Panel's default: 50)
SLIDER_DEBOUNCE_MS = 5
#: phones: every button and slider handle at least 44 px in its smaller dimension (WCAG
#: 2.5.5 target size); the page's text colours at ≥ 4.5:1 contrast on white
TOUCH_CSS = """
@media (max-width: 480px) {
  /* Bokeh's own .bk-input {min-height: ...} outranks a bare element selector */
  .bk-btn, select, input, .bk-input {min-height: 44px;}
  .bk-slider-title {margin-bottom: 16px;}
  .noUi-horizontal {height: 12px; margin: 8px 22px 18px;}
  .noUi-horizontal .noUi-handle {width: 44px; height: 44px; right: -22px; top: -17px;
                                 border-radius: 22px;}
  .noUi-handle::before, .noUi-handle::after {display: none;}
}
"""
#: read by screen readers, not shown (the usual visually-hidden pattern)
SR_ONLY_CSS = """
.gle-sr-only {position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0;
              overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;}
"""
#: LabState parameter -> the ControlsView attributes of its control (lock icons, messages)
PARAM_WIDGETS = {"preset": ("preset",), "seed": ("seed",), "neuron": ("neuron",),
                 "tau_m": ("tau_m",), "tau_r": ("tau_r",), "weight": ("weight_select", "weight"),
                 "waveform": ("waveform",), "omega": ("omega",), "amplitude": ("amplitude",),
                 "error_mode": ("error_mode",), "lr": ("lr",), "beta": ("beta",),
                 "gamma": ("gamma", "gamma_input"), "am_window": ("am_window",),
                 "window": ("window",), "speed": ("speed",), "play": ("play",),
                 "step": ("step",), "reset": ("reset",)}
#: LabState parameter -> the sidebar card holding its control
PARAM_CARD = {"preset": "experiment", "seed": "experiment", "neuron": "neuron",
              "tau_m": "neuron", "tau_r": "neuron", "weight": "neuron",
              "weight_select": "neuron", "waveform": "input", "omega": "input",
              "amplitude": "input", "error_mode": "learning", "am_window": "learning",
              "learn_W": "learning", "learn_b": "learning", "learn_tau_m": "learning",
              "learn_tau_r": "learning", "lr": "learning", "beta": "learning",
              "gamma": "learning", "window": "display"}
#: the sidebar cards a served session's first document holds, per layout: the first screen's
#: open cards at the top of the sidebar. The others, Share and Export arrive with the later
#: views right after the first frame, below them (nothing already shown moves): every model
#: left out of the first document is CPU the server does not spend between a visitor's
#: request and the page (issue #11)
FIRST_SCREEN_CARDS = {"wide": ("experiment", "neuron"), "present": ("neuron",),
                      "phone": ("neuron",)}
LOCK = "🔒 "
LOG_FORMAT_JS = "const v = Math.pow(10, tick); return Number(v.toPrecision(3)).toString();"


def _round_sig(x, sig=3):
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, sig - 1 - int(math.floor(math.log10(abs(x)))))


def batch_changes(widget, rebuilds=False):
    """Send everything one browser change of ``widget`` causes as ONE websocket message.

    A change runs the state's watchers (new Fourier curves, readouts, the link's URL, ...);
    the Bokeh server would otherwise send each model change as its own PATCH-DOC message,
    each serialised against the whole document (~1.3 ms each here, 4-6 per τ change).
    ``pn.io.unlocked()`` holds them and writes them together (a no-op outside a server).

    ``rebuilds``: the change replaces figures (preset, error engine); the document's model
    graph is then recomputed once at the end instead of after every replaced figure (~30 %
    of a preset change). Not for the other widgets: the final recompute costs ~0.1 s."""
    if not patch_enabled("panel_batched_events"):
        return widget
    process = widget._process_events

    def batched(events):
        doc = pn.state.curdoc
        with (doc.models.freeze() if rebuilds and doc is not None else nullcontext()):
            with pn.io.unlocked():
                process(events)
    widget._process_events = batched
    return widget


def on_click(button, action):
    """Run ``action()`` when ``button`` is clicked, its model changes written as one message.

    Panel runs a click that arrives while a widget change is still pending (debounced: Pause
    then Reset within 50 ms) as an asyncio task, outside the document lock, where Bokeh
    refuses any model change ("_pending_writes should be non-None ..."). ``pn.io.unlocked()``
    holds the changes and writes them itself, with or without the lock."""
    def clicked(event):
        with pn.io.unlocked():
            action()
    button.on_click(clicked)
    return button


def log_slider(state, name, lo, hi, step=0.02, **kw):
    """A slider over log10 of ``state.<name>`` showing the value itself (3 significant digits).

    The widget's name and tooltip come from the parameter's label and doc.
    """
    p = state.param[name]
    value = getattr(state, name)
    # ends on the step grid, so that round values (0.1, 1, 10) are reachable
    start = math.floor(math.log10(lo) / step + 1e-9) * step
    end = math.ceil(math.log10(hi) / step - 1e-9) * step
    slider = pn.widgets.FloatSlider(
        label=p.label, start=start, end=end, step=step,
        value=min(max(math.log10(value), start), end),
        # a formatter per slider: a Bokeh model may belong to one document (session) only
        format=CustomJSTickFormatter(code=LOG_FORMAT_JS),
        **{"sizing_mode": "stretch_width", **kw})
    slider.doc = p.doc

    echo = [False]                    # the slider is following the state: not a user change

    def to_state(event):
        if echo[0]:
            return
        new = _round_sig(10 ** event.new)
        if not math.isclose(new, getattr(state, name), rel_tol=1e-9):
            setattr(state, name, new)

    def to_widget(event):
        v = getattr(state, name)      # the current value (a refused change was reverted)
        if math.isclose(_round_sig(10 ** slider.value), v, rel_tol=1e-9):
            return                    # the change came from this slider: no echo
        if v > 0:
            # a value off the slider's 3-digit grid (learned, loaded, from a link) or beyond
            # its end must not come back rounded or clamped as a new setting
            echo[0] = True
            try:
                slider.value = min(max(math.log10(v), slider.start), slider.end)
            finally:
                echo[0] = False

    slider.param.watch(to_state, "value")
    state.param.watch(to_widget, name)
    slider.css_classes = [f"gle-{name.replace('_', '-')}"]
    slider.stylesheets = [TOUCH_CSS]
    return slider


def lazy_card(objects, **kw):
    """A collapsed :class:`pn.Card` that takes in ``objects`` the first time it is expanded
    (by the user, a layout or a message placed in it).

    A collapsed card's children are hidden in the browser, yet their Bokeh models are built,
    serialised and sent with the page all the same: in the presentation and phone layouts
    the sidebar's cards but the neuron's start collapsed (~50 models, 0.1-0.25 s of a
    session's completion here, for controls most visitors never open). Expanding one costs
    that card's models then (one patch)."""
    card = pn.Card(collapsed=True, **kw)
    card._gle_pending = list(objects)

    def fill(event):
        if event.new:
            return
        card.param.unwatch(watcher)
        pending, card._gle_pending = card._gle_pending, []
        card.extend(pending)            # after anything put in meanwhile (a divergence note)
    watcher = card.param.watch(fill, "collapsed")
    return card


def children(obj):
    """The objects of a layout, with those a :func:`lazy_card` has not taken in yet."""
    return list(getattr(obj, "objects", None) or []) + list(getattr(obj, "_gle_pending", ()))


def with_tip(widget, doc=None):
    """The widget with a (?) tooltip icon showing the parameter's doc (sliders have none)."""
    doc = doc or getattr(widget, "doc", None)
    if not doc:
        return widget
    return pn.Row(widget, pn.widgets.TooltipIcon(value=doc, margin=(28, 0, 0, -8), width=20),
                  sizing_mode=widget.sizing_mode, margin=0, css_classes=["gle-tip-row"])


class ControlsView:
    """The sidebar (model, input, learning) and the playback bar."""

    def __init__(self, state, dashboard):
        self.state, self.dashboard = state, dashboard
        st = state
        dt = st.net.dt
        tau_max = st.cfg["ui"]["tau_max"]
        # --- playback bar
        self.play = pn.widgets.Toggle(label="Pause" if st.playing else "Play",
                                      value=st.playing, color="primary", width=96,
                                      height=40, css_classes=["gle-play"])
        self.step = pn.widgets.Button(label="Step", width=80, height=40,
                                      css_classes=["gle-step"],
                                      description="Advance by one frame (speed/30 a.u.); "
                                                  "useful while paused (→).")
        # dark text on white (the old white-on-orange Reset had 1.95:1 contrast)
        self.reset = pn.widgets.Button(label="Reset", width=84, height=40, color="default",
                                       css_classes=["gle-reset"],
                                       description="Back to t = 0 with the current settings; "
                                                   "learned values are discarded (R).")
        for b in (self.play, self.step, self.reset):
            b.stylesheets = [TOUCH_CSS]
        self.speed = log_slider(st, "speed", 0.1, 100.0, width=200, sizing_mode=None)
        self.play.param.watch(self._on_play_widget, "value")
        st.param.watch(self._on_playing, "playing")
        on_click(self.step, dashboard.single_step)
        on_click(self.reset, dashboard.reset)
        # the clock changes 3× a second: a plain Bokeh PreText whose ``text`` alone is sent
        # (a Panel Str pane re-derives and re-sends all its properties on every change:
        # ~2 ms of server CPU per update)
        self.clock_text = PreText(text="t = 0.0 a.u.", styles={"font-size": "16px"},
                                  css_classes=["gle-clock"], width=130)
        self.clock = pn.pane.Bokeh(self.clock_text, margin=(12, 10), width=130)
        # --- model
        self.preset = pn.widgets.Select.from_param(st.param.preset, label="Preset",
                                                   sizing_mode="stretch_width")
        self.description = pn.pane.Markdown(st.cfg["description"], sizing_mode="stretch_width",
                                            styles={"font-size": "14px", "color": "#333"},
                                            margin=(0, 10))
        st.param.watch(lambda e: setattr(self.description, "object",
                                         st.cfg["description"]), "structure")
        self.seed = pn.widgets.IntInput.from_param(st.param.seed, width=120,
                                                   description=st.param.seed.doc + "")
        self.neuron = pn.widgets.Select.from_param(st.param.neuron, label="Neuron",
                                                   sizing_mode="stretch_width")
        self.tau_m = log_slider(st, "tau_m", dt / 2, tau_max)
        self.tau_r = log_slider(st, "tau_r", dt / 2, tau_max)
        self.weight_select = pn.widgets.Select.from_param(st.param.weight_select,
                                                          sizing_mode="stretch_width")
        self.weight = pn.widgets.FloatSlider.from_param(st.param.weight, start=-3.0, end=3.0,
                                                        step=0.01, sizing_mode="stretch_width")
        self.weight.doc = st.param.weight.doc
        # --- input
        self.waveform = pn.widgets.Select.from_param(st.param.waveform,
                                                     sizing_mode="stretch_width")
        self.omega = log_slider(st, "omega", 0.05, 20.0)
        self.amplitude = pn.widgets.FloatSlider.from_param(st.param.amplitude, step=0.05,
                                                           sizing_mode="stretch_width")
        self.amplitude.doc = st.param.amplitude.doc
        # --- learning
        self.learn = pn.Param(st, parameters=["learn_W", "learn_b", "learn_tau_m",
                                              "learn_tau_r"],
                              show_name=False, sizing_mode="stretch_width", margin=0)
        self.lr = log_slider(st, "lr", 1e-7, 1.0, step=0.05)
        self.beta = log_slider(st, "beta", 1e-3, 1e3, step=0.05)
        # a slider and a box for typed values, each bound to the state on its own. (Panel's
        # EditableFloatSlider joins its two parts with a Link: a class-level registry entry
        # that kept closed sessions alive and made every figure replacement walk the whole
        # document, ~140 ms per replaced figure.)
        self.gamma = pn.widgets.FloatSlider.from_param(
            st.param.gamma, start=0.0, end=2.0, step=0.01, sizing_mode="stretch_width")
        self.gamma.doc = st.param.gamma.doc
        self.gamma_input = pn.widgets.FloatInput.from_param(
            st.param.gamma, label="γ value", step=0.001, start=0.0, width=80,
            margin=(4, 4, 0, 0), css_classes=["gle-gamma-input"])
        self.error_mode = pn.widgets.RadioButtonGroup.from_param(
            st.param.error_mode, options={"GLE": "gle", "IE": "ie", "AM": "am"},
            color="default", sizing_mode="stretch_width", css_classes=["gle-error-mode"])
        self.error_mode.description = st.param.error_mode.doc
        self.am_window = pn.widgets.FloatSlider.from_param(
            st.param.am_window, start=0.1, end=20.0, step=0.1, sizing_mode="stretch_width",
            visible=st.error_mode == "am", css_classes=["gle-am-window"])
        self.am_window.doc = st.param.am_window.doc
        self.am_window_row = with_tip(self.am_window)
        self.am_window_row.visible = st.error_mode == "am"

        def show_am_window(event):
            self.am_window.visible = self.am_window_row.visible = event.new == "am"
        st.param.watch(show_am_window, "error_mode")
        self.window = pn.widgets.FloatSlider.from_param(st.param.window, step=1.0,
                                                        sizing_mode="stretch_width")
        self.window.doc = st.param.window.doc
        # Panel debounces browser→server widget changes by 50 ms (Syncable._debounce): half
        # the latency budget. 5 ms still coalesces a burst of drag events. (Panel's
        # "_priority_changes" would skip the debounce but runs outside the document lock.)
        sliders = (self.speed, self.tau_m, self.tau_r, self.weight, self.omega,
                   self.amplitude, self.lr, self.beta, self.gamma, self.window, self.am_window)
        if patch_enabled("panel_debounce"):
            # a click or a choice is one change, nothing to coalesce: Play/Pause, the
            # neuron, the waveform and the error engine answer 45 ms sooner
            for w in sliders + (self.play, self.neuron, self.weight_select, self.waveform,
                                self.error_mode):
                w._debounce = SLIDER_DEBOUNCE_MS
        for w in sliders + (self.play, self.gamma_input, self.neuron, self.weight_select,
                            self.waveform):
            batch_changes(w)
        for w in (self.preset, self.error_mode):
            batch_changes(w, rebuilds=True)
        self.optimizer = pn.pane.Str("", styles={"font-size": "13px", "color": "#4d4d4d",
                                                 "white-space": "normal"},
                                     sizing_mode="stretch_width")
        for w in sliders + (self.gamma_input, self.preset, self.neuron, self.weight_select,
                            self.waveform, self.error_mode, self.seed):
            if not w.stylesheets:
                w.stylesheets = [TOUCH_CSS]
        st.param.watch(lambda e: self._show_optimizer(), "structure")
        self._show_optimizer()

    def _show_optimizer(self):
        lrn = self.state.cfg.get("learning", {})
        per = ("one step per AM window (exact gradient)" if self.state.error_mode == "am"
               else "one step per Euler step")
        self.optimizer.object = (f"optimizer: {lrn.get('optimizer', 'adam')}, {per}, "
                                 f"learning from t = {lrn.get('learn_from', 0):g} a.u.")

    def _on_play_widget(self, event):
        if event.new:
            self.state.play()
            if not self.state.playing:       # refused (diverged)
                self.play.value = False
        else:
            self.state.pause()

    def _on_playing(self, event):
        self.play.value = event.new
        self.play.label = "Pause" if event.new else "Play"

    def show_time(self, t):
        """The clock's reading: simulated time ``t`` (a.u.)."""
        text = f"t = {t:.1f} a.u."
        if self.clock_text.text != text:
            self.clock_text.text = text

    def playback_bar(self):
        return pn.Row(self.play, self.step, self.reset, with_tip(self.speed), self.clock,
                      align="center", margin=(0, 5),
                      styles={"flex-wrap": "wrap", "align-items": "center"})

    def sidebar(self):
        """The sidebar; ``cards`` keeps each card by group name (teacher mode hides them);
        ``extra`` (set by the dashboard) goes below them."""
        card = dict(sizing_mode="stretch_width", margin=(4, 4), header_background="#eef2f7")
        # the neuron's card is on every layout's first screen; the others start collapsed
        # and take in their controls when first expanded (a layout's arrange() expands
        # those it shows open)
        self.cards = {
            "experiment": lazy_card([self.preset, self.description, self.seed, pn.pane.HTML(
                "<a href='?preset=mnist1d'>Learning a real task: MNIST-1D (paper Fig. 6) "
                "→</a>", css_classes=["gle-mnist-link"], margin=(2, 10))],  # its own page
                title="Experiment", **card),
            "neuron": pn.Card(self.neuron, with_tip(self.tau_m), with_tip(self.tau_r),
                              self.weight_select, with_tip(self.weight),
                              title="Neuron (student)", **card),
            "input": lazy_card([self.waveform, with_tip(self.omega), with_tip(self.amplitude)],
                               title="Input", **card),
            "learning": lazy_card([self.error_mode, self.am_window_row, self.learn,
                                   with_tip(self.lr), with_tip(self.beta),
                                   pn.Row(self.gamma_input, with_tip(self.gamma),
                                          sizing_mode="stretch_width", margin=0),
                                   self.optimizer],
                                  title="Errors and learning", **card),
            "display": lazy_card([with_tip(self.window)], title="Display", **card),
        }
        self.extra = ()
        # the cards' titles are h3: an h2 above them keeps the page's heading levels in
        # order wherever the sidebar sits (on phones it comes before the lesson's h2)
        self.heading = pn.pane.HTML("<h2 class='gle-sr-only'>Controls</h2>", margin=0,
                                    stylesheets=[SR_ONLY_CSS], sizing_mode="stretch_width",
                                    css_classes=["gle-controls-heading"])
        self.column = pn.Column(self.heading, *self.cards.values(), width=330, margin=0,
                                scroll=False, css_classes=["gle-view-controls"])
        st = self.state
        self._beyond = {}
        if "locked" in st.param:
            st.param.watch(lambda e: self.show_locks(), "locked")
            self.show_locks()
        if "out_of_range" in st.param:
            st.param.watch(lambda e: self.show_out_of_range(), "out_of_range")
        return self.column

    def arrange(self, mode, complete=True):
        """Card order and widths for a page layout: the selected neuron's τ sliders first
        in presentation and phone layouts (visible without scrolling). ``complete`` False: a
        served session's first document, with only the cards of :data:`FIRST_SCREEN_CARDS`
        (the others are kept up to date all along; only their models are not sent yet)."""
        names = (["neuron", "input", "learning", "experiment", "display"]
                 if mode in ("present", "phone") else
                 ["experiment", "neuron", "input", "learning", "display"])
        if complete:
            objs = [self.heading] + [self.cards[n] for n in names] + list(self.extra)
        else:
            objs = [self.heading] + [self.cards[n] for n in names
                                     if n in FIRST_SCREEN_CARDS[mode]]
        if list(self.column.objects) != objs:
            self.column[:] = objs
        if mode == "phone":
            self.column.param.update(width=None, sizing_mode="stretch_width")
        else:
            self.column.param.update(sizing_mode=None, width=300 if mode == "present" else 330)
        for name, card in self.cards.items():
            collapsed = mode in ("present", "phone") and name not in ("neuron",) or \
                (mode == "wide" and name == "display")
            if not (collapsed or complete or name in FIRST_SCREEN_CARDS[mode]):
                # not on the page yet: opened when it joins it, in the layout of that time
                # (a served page reports its size later: a projector's cards stay closed)
                continue
            card.collapsed = collapsed

    # ------------------------------------------------------------------ teacher mode, values
    def _widgets(self, name):
        return [getattr(self, a) for a in PARAM_WIDGETS.get(name, ())
                if getattr(self, a, None) is not None]

    def show_locks(self):
        """A lock before the label of every control the teacher locked (Sharing disables
        them): a locked slider must not look like an unlocked one."""
        st = self.state
        is_locked = getattr(st, "is_locked", None)
        for name in PARAM_WIDGETS:
            locked = bool(is_locked(name)) if is_locked is not None else False
            for w in self._widgets(name):
                label = getattr(w, "label", None)
                if not isinstance(label, str) or not label:
                    continue
                if locked and not label.startswith(LOCK):
                    w.label = LOCK + label
                elif not locked and label.startswith(LOCK):
                    w.label = label[len(LOCK):]
                if hasattr(w, "description") and locked:
                    w.description = "Locked by the teacher."

    def show_out_of_range(self):
        """A learned value beyond its control's range: shown beside the control, as it is."""
        beyond = dict(getattr(self.state, "out_of_range", {}) or {})
        for name in set(self._beyond) | set(beyond):
            ws = self._widgets(name)
            if not ws:
                continue
            w = ws[-1]
            base = self._beyond.get(name, (w.label,))[0] if name in self._beyond else w.label
            if name in beyond:
                self._beyond[name] = (base,)
                w.label = f"{base} (learned: {beyond[name]:.4g}, beyond the slider)"
            elif name in self._beyond:
                w.label = self._beyond.pop(name)[0]
