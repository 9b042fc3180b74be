"""GLE Lab: the dashboard composed from the state and its views.

Serve it with ``gle-lab`` (or ``panel serve app/main.py``), or show it in a notebook with
``from gle_lab import dashboard; dashboard()``.

One :class:`Dashboard` per browser session: its own :class:`~app.state.LabState` (and so its
own simulator), views and periodic callback. The callback starts from ``pn.state.onload`` (a
bare page fetch never runs a simulation), stops while paused (no CPU), and is removed when the
session is destroyed.
"""
from __future__ import annotations

import contextlib
import html
import time
import weakref
from urllib.parse import urlencode

import panel as pn
from bokeh.core.property.validation import validate

from gle_lab import (bokeh_defaults, client_hints, collector, patch_refs, write_queue,
                     ws_nodelay)
from gle_lab.capacity import frame_failed
from gle_lab.frame_clock import FrameClock
from gle_lab.adjoint_overlay import AdjointOverlay
from gle_lab.presets import PRESETS
from gle_lab.state import LabState
from gle_lab.streaming import TraceStream
from gle_lab.views.activity import ActivityView
from gle_lab.views.controls import ControlsView, children, on_click
from gle_lab.views.errors import ErrorsView
from gle_lab.views.fourier import FourierView
from gle_lab.views.learning import LearningView
from gle_lab.views.phase import PhaseView
from gle_lab.export import ExportView
from gle_lab.sharing import Sharing
from gle_lab.views.lesson import LessonView
from gle_lab.views.microcircuit import MicrocircuitView
from gle_lab.views.style import install_paint_fixes

#: frame period of the live callback (ms): 30 frames/s
FRAME_MS = 33
#: parameter traces (and the microcircuit) are updated every this many frames (5 Hz): four
#: figures repainted 10 times a second cost the browser more than the live traces themselves
LEARNING_EVERY = 6
#: phase fits, Fourier dots and the clock are refreshed every this many frames (3 Hz), on
#: frames that never carry a learning update (odd ones), so that no frame does both
MEASURE_EVERY, MEASURE_PHASE = 10, 3
#: sliders of learning parameters follow their learned values every this many frames
SYNC_EVERY = 15

#: views a served session adds right after its first frame (Dashboard.complete_layout): the
#: first document is then ~half the models, built, sent and drawn sooner
LATER_VIEWS = ("errors", "fourier", "microcircuit", "learning")
#: ms after the page's first frame callback: the first frame is painted before the browser
#: builds the rest; then one later view is built every BUILD_STEP_MS
COMPLETE_AFTER_MS, BUILD_STEP_MS = 300, 60
#: while visitors keep arriving (a session was created in this process within the last
#: ARRIVAL_QUIET_S), completing layouts waits: everyone's first screen comes first (a class
#: opening the link at once); never longer than COMPLETE_MAX_WAIT_S
ARRIVAL_QUIET_S, COMPLETE_MAX_WAIT_S = 1.0, 20.0
#: meanwhile, sessions already streaming send only every this many frames (7.5 frames/s;
#: their simulation keeps real time, in bigger steps): the CPU goes to the newcomers
ARRIVAL_FRAME_EVERY = 4
#: completing layouts is paced per process: after one step (a later view built, or the final
#: patch) of any session, the next step of any session waits COMPLETE_PACE × that step's
#: time, while other sessions of the process are live (sessions already streaming keep
#: their frames while a class's layouts complete: at most ~1/(1 + COMPLETE_PACE) of the
#: loop goes to completing). A lone session completes at full speed.
COMPLETE_PACE = 1.0


class CompletionPacer:
    """When the next completion step of any session of this process may run."""

    def __init__(self, pace=COMPLETE_PACE):
        self.pace, self.next_at = pace, float("-inf")

    def wait(self, now):
        """Seconds until a step may run (≤ 0: now)."""
        return self.next_at - now

    def done(self, took, now, others_live):
        """A step took ``took`` s and ended at ``now``; other sessions live or not."""
        self.next_at = now + (self.pace * took if others_live else 0.0)


_completion_pacer = CompletionPacer()
#: time.monotonic() of the last session created in this process, and a weak reference to it
_last_arrival = [float("-inf"), None]
#: served sessions of this process that have not streamed their first frame yet -> when
#: created; one older than AWAIT_FIRST_FRAME_S no longer counts (a page fetched without a
#: browser behind it, or whose websocket went to another process)
_awaiting_first_frame = weakref.WeakKeyDictionary()
AWAIT_FIRST_FRAME_S = 8.0
#: ... and one whose page has had no websocket for ORPHAN_AFTER_S neither: with --num-procs
#: the kernel may hand the websocket to another process, which builds the session again;
#: the page's own copy would otherwise hold this process "arriving" (every 4th frame, no
#: layouts completed) for AWAIT_FIRST_FRAME_S. It counts again if its websocket comes late.
ORPHAN_AFTER_S = 2.0
_session_docs = weakref.WeakKeyDictionary()      # dashboard -> weak reference to its document


def _connected(doc):
    """Whether a browser is connected to ``doc``'s server session (True when unknown)."""
    session = getattr(getattr(doc, "session_context", None), "_session", None)
    count = getattr(session, "connection_count", None)
    return count is None or count > 0


def visitors_arriving(now=None, besides=None):
    """True while visitors arrive: a session (other than ``besides``) was created within
    ARRIVAL_QUIET_S, or one created within AWAIT_FIRST_FRAME_S still waits for its first
    frame."""
    now = time.monotonic() if now is None else now
    last = _last_arrival[1]() if _last_arrival[1] is not None else None
    if now - _last_arrival[0] < ARRIVAL_QUIET_S and (last is None or last is not besides):
        return True
    return any(d is not besides and _awaits_first_frame(d, t, now)
               for d, t in list(_awaiting_first_frame.items()))


def sessions_settling(now=None):
    """True while this process' sessions are being built: visitors arriving, or, with more
    than a few sessions live, a served session (alive, its browser connected) whose later
    views are not all built yet. The garbage collector's full collections are held
    meanwhile (:mod:`gle_lab.collector`): each would walk every live session (0.5-0.9 s
    with 20 of them here), and the builds would trigger one every few sessions. With a few
    live a full collection is cheap, and holding it only lets the builds' garbage pile up."""
    if visitors_arriving(now):
        return True
    from gle_lab.capacity import live_dashboards
    if live_dashboards() <= collector.CHEAP_LIVE:
        return False
    for dash, ref in list(_session_docs.items()):
        doc = ref()
        if not dash.complete and dash.state.sim is not None and doc is not None and \
                _connected(doc):
            return True
    return False


def _awaits_first_frame(dash, created, now):
    """Whether ``dash`` (created at ``created``) still counts as a visitor arriving."""
    age = now - created
    if age >= AWAIT_FIRST_FRAME_S:
        return False
    if age < ORPHAN_AFTER_S:
        return True
    ref = _session_docs.get(dash)
    doc = ref() if ref is not None else None
    return doc is None or _connected(doc)

#: layouts: "wide" (large monitors), "present" (projector, and any window below
#: PRESENT_BELOW px wide), "phone" (up to PHONE_MAX px wide: one column)
PRESENT_BELOW, PHONE_MAX = 1600, 480
#: the page's viewport meta tag (phones render at device width, not a shrunk desktop page)
#: and, first of all, the window's size in a cookie (gle_lab.client_hints: the next visit's
#: first document, and a --reuse-sessions session built at its websocket, fit it at once)
VIEWPORT_TEMPLATE = ("{% block postamble %}" + client_hints.COOKIE_SCRIPT +
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                     "{% endblock %}")

CSS = """
.gle-header {font-family: system-ui, sans-serif;}
.gle-alert {font-size: 16px;}
"""
TITLE_SHORT_HTML = ("<h1 class='gle-header' style='font-size:26px;font-weight:700;margin:0'>"
                    "GLE Lab</h1>")
TITLE_HTML = ("<div class='gle-header'><h1 style='display:inline;font-size:26px;"
              "font-weight:700;margin:0'>GLE Lab</h1> <span style='color:#4d4d4d;"
              "font-size:15px'>Generalized Latent Equilibrium neurons, live</span></div>")
#: the page's own look (root container): no horizontal overflow, text ≥ 4.5:1 contrast
ROOT_CSS = """
:host {max-width: 100vw; overflow-x: hidden; font-family: system-ui, sans-serif;
       color: #1a1a1a;}
@media (max-width: 480px) { :host, .gle-body {min-width: 0 !important;} }
"""
#: the toast: bottom corner, above everything, never moves the page
TOAST_CSS = """
.gle-toast {position: fixed; right: 16px; bottom: 16px; z-index: 9000; max-width: min(460px,
            calc(100vw - 32px)); padding: 12px 16px; border-radius: 8px; font-size: 16px;
            line-height: 1.35; background: #1a1a1a; color: #ffffff;
            box-shadow: 0 6px 24px rgba(0,0,0,.3); font-family: system-ui, sans-serif;
            animation: gle-toast 7s forwards;}
.gle-toast.warning {background: #5c3d00;} .gle-toast.danger {background: #8a1c1c;}
.gle-toast.success {background: #0d4d2a;}
@keyframes gle-toast {0% {opacity: 0; transform: translateY(8px);}
                      4% {opacity: 1; transform: none;} 88% {opacity: 1;}
                      100% {opacity: 0; visibility: hidden;}}
"""
CARD_TOUCH_CSS = """
@media (max-width: 480px) { .card-header {min-height: 44px;} .card-button {min-width: 44px;} }
"""
#: the divergence message beside the control that caused it
CAUSE_CSS = """
.gle-cause {border: 2px solid #8a1c1c; background: #fdf0f0; color: #1a1a1a; font-size: 15px;
            border-radius: 6px; padding: 6px 10px;}
"""

pn.extension("katex", raw_css=[CSS])   # katex: the lessons' equations
# a dropped websocket (classroom Wi-Fi) reconnects by itself to the same, still living session
# (the server keeps an unused session for --unused-session-lifetime, 15 s by default)
pn.config.reconnect = True
# a frame's PATCH-DOC costs what it carries, not what the document holds (gle_lab.patch_refs)
patch_refs.install()
# a property default is computed once per class, not at every read (gle_lab.bokeh_defaults)
bokeh_defaults.install()
# every queued message reaches the browser, the last one too (gle_lab.write_queue)
write_queue.install()
# a message's websocket frames leave at once, not after the browser's delayed ACK
# (gle_lab.ws_nodelay: Nagle's algorithm cost a τ change ~25 ms)
ws_nodelay.install()


def mode_for(width, present=None):
    """The layout for a window ``width`` px wide (None: not known): "phone" up to PHONE_MAX
    px; else the ``present`` flag's choice if set, else "present" below PRESENT_BELOW px."""
    if width is not None and width <= PHONE_MAX:
        return "phone"
    if present is not None:
        return "present" if present else "wide"
    return "present" if width is not None and width < PRESENT_BELOW else "wide"


def requested_window():
    """What the request that opened the current session tells of the visitor's window:
    "phone" (a phone's user agent), its ``(width, height)`` (client hints or the cookie of
    :mod:`gle_lab.client_hints`: the right layout in the first document), or None."""
    doc = pn.state.curdoc
    if doc is None:
        return None
    if "Mobi" in (pn.state.headers or {}).get("User-Agent", ""):
        return "phone"
    return client_hints.session_viewport(getattr(doc.session_context, "request", None))


def guess_layout(page, fallback):
    """The first document's layout for ``page`` (a dashboard with ``viewport`` and
    ``effective_mode()``) from :func:`requested_window`: "phone", the reported window's
    layout (kept in ``page.viewport``), or ``fallback`` when the request tells nothing."""
    window = requested_window()
    if window == "phone":
        return "phone"
    if window is not None:
        page.viewport = window
        return page.effective_mode()
    return fallback


def parse_viewport(text):
    """``(width, height)`` of a page's ``"<width>x<height>"`` report, or None if it is not
    one (assets/js/page.js sends it; anything else is ignored)."""
    try:
        w, h = (int(float(x)) for x in str(text).lower().split("x"))
    except ValueError:
        return None
    return (w, h) if w > 0 and h > 0 else None


def place(want):
    """Give each container of ``want`` (``[(container, objects)]``) exactly its objects,
    changing only the containers whose objects change (Panel keeps the models of what
    stays). First everything that moves is taken out, then put in its new place: a pane is
    in one place at a time (Panel keeps one model per pane and page)."""
    for container, objs in want:
        keep = [o for o in container.objects if any(o is x for x in objs)]
        if len(keep) != len(container.objects):
            container[:] = keep
    for container, objs in want:
        if len(container.objects) != len(objs) or \
                any(a is not b for a, b in zip(container.objects, objs)):
            container[:] = objs


def touch_targets(obj):
    """Phones: every button, input and card header of ``obj`` (recursively) at least 44 px
    in its smaller dimension (a media query: no effect on larger screens)."""
    from gle_lab.views.controls import TOUCH_CSS
    if isinstance(obj, pn.Card):
        if CARD_TOUCH_CSS not in obj.stylesheets:
            obj.stylesheets = [*obj.stylesheets, CARD_TOUCH_CSS]
    elif isinstance(obj, pn.widgets.Widget):
        if TOUCH_CSS not in obj.stylesheets:
            obj.stylesheets = [*obj.stylesheets, TOUCH_CSS]
    for child in children(obj):       # with a collapsed card's controls not in it yet
        touch_targets(child)


class Dashboard:
    """A live GLE Lab session: state, views, layout and the frame callback."""

    def __init__(self, preset="phase_inversion", seed=None, progressive=False):
        #: False until the views below the first screen are in the layout (see
        #: :meth:`complete_layout`); a dashboard built outside a server is complete at once
        self.complete = not progressive
        self.state = st = LabState(preset=preset, seed=seed)
        self.traces = TraceStream(st)
        self.activity = ActivityView(st, self.traces)
        #: the views of LATER_VIEWS (and the λ overlay they share): built with the dashboard,
        #: or, for a served session, by complete_layout right after the first frame (their
        #: figures are ~60 % of the session's build)
        self.adjoint = self.errors = self.fourier = self.learning = self.microcircuit = None
        if self.complete:
            self._build_later_views()
        st.measure()                    # analytic readouts before the first frame
        self.phase = PhaseView(st)
        self.controls = ControlsView(st, self)
        self.lesson = LessonView(st)
        self.callback = None
        self.frame = 0
        self._loss_sum = 0.0
        self._loss_n = 0
        self._last_tick = None
        self._tick_pending = False
        self._doc = None                # the session's document (start())
        self._served = False            # ... and it is a server session
        self._arrival_skips = 0
        self.tick_seconds = []          # server CPU of recent ticks (benchmarks)
        st.param.watch(self._on_structure, "structure")
        st.param.watch(self._on_reseeded, "reseeded")
        st.param.watch(self._on_cleared, "cleared")
        st.param.watch(lambda *e: self._refresh_analytic(), "tau_version")
        st.param.watch(lambda e: self.traces.set_window(e.new), "window")
        st.param.watch(self._on_playing, "playing")
        st.param.watch(lambda *e: self._refresh_analytic(), ["omega", "waveform"])
        st.param.watch(self._tick_soon, ["tau_m", "tau_r", "weight", "omega", "waveform",
                                         "amplitude", "beta", "gamma"])
        self.sharing = Sharing(self)        # URL, teacher flags, session files
        #: the Export card; with the Share and Teacher-link cards built when the layout
        #: completes (a served session's first screen does not show them)
        self.export = None
        self.layout = self._layout()

    # ------------------------------------------------------------------ layout
    def _layout(self):
        st = self.state
        self.mode = None
        self.viewport = None            # (width, height) the page reported
        # (at least 260 px: on a phone the Dismiss button beside it wraps below it)
        self.alert = pn.pane.Alert(st.message, alert_type="info", visible=False,
                                   sizing_mode="stretch_width", css_classes=["gle-alert"],
                                   margin=(2, 10), min_width=260)
        self.alert_reset = pn.widgets.Button(label="Reset simulation", color="default",
                                             visible=False, width=180, height=40,
                                             css_classes=["gle-alert-reset"])
        self.alert_undo = pn.widgets.Button(label="Reset and undo the last change",
                                            color="primary", visible=False, width=270,
                                            height=40, css_classes=["gle-alert-undo"])
        # a notice (a link's values not used) can be put away: it takes room from the plots
        self.alert_dismiss = pn.widgets.Button(label="Dismiss", color="default",
                                               visible=False, width=120, height=40,
                                               css_classes=["gle-alert-dismiss"])
        on_click(self.alert_reset, self.reset)
        on_click(self.alert_undo, self.reset_and_undo)
        on_click(self.alert_dismiss, self.dismiss_message)
        # the same message beside the control that caused the divergence
        self.cause_text = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[CAUSE_CSS],
                                       margin=(4, 6))
        self.cause_undo = pn.widgets.Button(label="Reset and undo the last change",
                                            color="primary", sizing_mode="stretch_width",
                                            height=40, css_classes=["gle-cause-undo"],
                                            margin=(0, 6, 6, 6))
        on_click(self.cause_undo, self.reset_and_undo)
        self.cause_box = pn.Column(self.cause_text, self.cause_undo, margin=0,
                                   sizing_mode="stretch_width", css_classes=["gle-cause-box"])
        self._cause_card = None
        self.toast = pn.pane.HTML("", stylesheets=[TOAST_CSS], margin=0, width=0, height=0,
                                  css_classes=["gle-toast-host"])
        self._toasts = 0
        watched = [p for p in ("message", "message_level", "failed", "fail_cause")
                   if p in st.param]
        st.param.watch(self._on_message, watched)
        if "notice_serial" in st.param:
            st.param.watch(lambda e: self.show_toast(st.notice, st.notice_level),
                           "notice_serial")
        # the page's size arrives here (assets/js/page.js): the layout follows it
        self.viewport_input = pn.widgets.TextInput(value="", visible=False, width=1, margin=0,
                                                   css_classes=["gle-viewport"])
        self.viewport_input.param.watch(lambda e: self.set_viewport(e.new), "value")
        self.present_toggle = pn.widgets.Toggle(label="Present", value=False, width=100,
                                                height=40, css_classes=["gle-present"])
        self.present_toggle.param.watch(self._on_present_widget, "value")
        st.param.watch(lambda e: self.apply_mode(), "present")
        self.help_button = pn.widgets.Button(label="?", width=44, height=40,
                                             css_classes=["gle-help-button"],
                                             description="Keyboard shortcuts (?)")
        # opens the help overlay by itself (assets/js/page.js): no Panel JS link
        self.title = pn.pane.HTML(TITLE_HTML, margin=(8, 10), css_classes=["gle-title"])
        self.header = pn.Row(self.title, self.controls.playback_bar(), self.present_toggle,
                             self.help_button, self.viewport_input, self.toast,
                             sizing_mode="stretch_width", margin=0,
                             styles={"border-bottom": "1px solid #ccc", "flex-wrap": "wrap",
                                     "align-items": "center"},
                             css_classes=["gle-header-row"])
        self.sidebar = self.controls.sidebar()
        if self.complete:
            self._add_sidebar_extras()
        touch_targets(self.sidebar)
        self.messages = pn.Column(pn.Row(self.alert, self.alert_dismiss, margin=0,
                                         sizing_mode="stretch_width",
                                         styles={"align-items": "center",
                                                 "flex-wrap": "wrap"}),
                                  self.alert_undo, self.alert_reset,
                                  sizing_mode="stretch_width", margin=0)
        for obj in (self.header, self.lesson.panel, self.messages, self.cause_box):
            touch_targets(obj)
        # the containers stay; a layout change only rearranges what they hold (Panel keeps
        # the models of what stays in its container: a switch costs little)
        box = dict(sizing_mode="stretch_width", margin=0)
        self.top = pn.Column(**box)                 # messages, phase cards (, Activity)
        self.left, self.right = pn.Column(**box), pn.Column(**box)
        self.mid = pn.Row(self.left, self.right, **box)
        self.main = pn.Column(self.top, self.mid, **box)
        self.body = pn.Row(self.sidebar, self.main, css_classes=["gle-body"], **box)
        # the phone layout's single column below the header (the page's main landmark there)
        self.phone_main = pn.Column(css_classes=["gle-phone-main"], **box)
        # "gle-complete": every view is on the page (browser tests and page scripts wait on it)
        self.root = pn.Column(self.header, sizing_mode="stretch_width", margin=0,
                              css_classes=["gle-lab"] + (["gle-complete"] if self.complete
                                                         else []),
                              stylesheets=[ROOT_CSS])
        # the page reports its size once loaded; until then the likely layout (a phone says
        # so in its user agent; a link may ask for presentation mode)
        self.apply_mode(self._guess_mode())
        return self.root

    def _guess_mode(self):
        return guess_layout(self, "present" if self.state.present else "wide")

    def effective_mode(self):
        """The layout for the reported viewport and the ``present`` flag."""
        return mode_for(self.viewport[0] if self.viewport else None, self.state.present)

    def set_viewport(self, text):
        """The page's ``"<width>x<height>"`` (assets/js/page.js): pick the layout."""
        size = parse_viewport(text)
        if size is not None:
            self.viewport = size
            self.apply_mode()

    def _on_present_widget(self, event):
        if self._mode_guard:
            return
        if event.new != (self.effective_mode() == "present"):
            self.state.present = bool(event.new)

    _mode_guard = False

    def apply_mode(self, mode=None):
        """Compose the page for a layout (only when it changes: figures are kept)."""
        mode = mode or self.effective_mode()
        height = self.viewport[1] if self.viewport else (720 if mode == "present" else 1080)
        if mode == self.mode and height == getattr(self, "_mode_height", None):
            return
        # every container changed below makes Bokeh re-collect all of the document's models
        # (~700) once; frozen, it does so once for the whole re-layout (half of the CPU of
        # completing a served session's layout)
        doc = pn.state.curdoc or self._doc
        with (doc.models.freeze() if doc is not None else contextlib.nullcontext()):
            self._compose(mode, height)

    def _compose(self, mode, height):
        self.mode, self._mode_height = mode, height
        self._mode_guard = True
        try:
            self.present_toggle.value = mode == "present"
        finally:
            self._mode_guard = False
        self.controls.arrange(mode, complete=self.complete)
        # plot heights: in presentation the Activity plot takes what the header, the lesson
        # bar and the phase cards leave of the screen
        if mode == "present":
            act = int(min(max(height - 330, 260), 620))
            heights = (act, max(260, act - 40))
        elif mode == "phone":
            heights = (300, 280)
        else:
            heights = (250, 250)
        self.activity.set_height(heights[0])
        if self.errors is not None:
            self.errors.set_height(heights[1])
        for view in [self.activity, self.lesson] + self._later():
            view.set_mode(mode)
        self.phase.pane.css_classes = [c for c in self.phase.pane.css_classes
                                       if not c.startswith("gle-phase-")] + [f"gle-phase-{mode}"]
        self.title.object = TITLE_HTML if mode == "wide" else TITLE_SHORT_HTML
        self.present_toggle.visible = self.help_button.visible = mode != "phone"
        # before complete_layout (served sessions): what the first screen shows and the first
        # frame needs; the other views arrive in one patch right after the first frame
        v = self._views()
        if mode == "phone":
            # one column: cards, one plot, the lesson's steps (they change τ: their effect is
            # right above them), the τ sliders (sidebar); the rest further down
            want = [(self.top, []), (self.left, []), (self.right, []),
                    (self.main, [self.top, self.mid]), (self.body, [self.main]),
                    (self.phone_main, [self.messages, v["phase"], v["activity"], v["lesson"],
                                       self.sidebar, v["errors"], v["fourier"],
                                       v["learning"]]),
                    (self.root, [self.header, self.phone_main])]
        else:
            present = mode == "present"
            want = [(self.top, [self.messages, v["phase"]] + ([v["activity"]] if present else [])),
                    (self.left, [v["errors"], v["microcircuit"]] if present else
                     [v["activity"], v["errors"]]),
                    (self.right, [v["fourier"]] if present else [v["fourier"], v["microcircuit"]]),
                    (self.main, [self.top, self.mid, v["learning"]]),
                    (self.body, [self.sidebar, self.main]), (self.phone_main, []),
                    (self.root, [self.header, v["lesson"], self.body])]
        place([(container, [o for o in objs if o is not None]) for container, objs in want])

    def _complete_when_quiet(self, doc, since):
        """Complete the layout COMPLETE_AFTER_MS from now, or later while visitors arrive."""
        def check():
            now = time.monotonic()
            if self.state.sim is None or self.complete:
                return                                   # session gone, or done
            if visitors_arriving(now, besides=self) and now - since < COMPLETE_MAX_WAIT_S:
                doc.add_timeout_callback(check, COMPLETE_AFTER_MS)
                return
            if not _connected(doc):
                # the browser is away (a dropped websocket): new models sent now would be
                # lost, and the page could not apply the frames that refer to them
                doc.add_timeout_callback(check, COMPLETE_AFTER_MS)
                return
            wait = _completion_pacer.wait(now)
            if wait > 0:
                doc.add_timeout_callback(check, max(BUILD_STEP_MS, int(wait * 1000)))
                return
            # one view per callback (0.05-0.3 s each): the traces stream on in between
            t0 = time.perf_counter()
            built = self._build_next_later_view() or self._add_sidebar_extras()
            if not built:
                self.complete_layout()
            from gle_lab.capacity import live_dashboards
            _completion_pacer.done(time.perf_counter() - t0, time.monotonic(),
                                   live_dashboards() > 1)
            if built:
                doc.add_timeout_callback(check, BUILD_STEP_MS)
        doc.add_timeout_callback(check, COMPLETE_AFTER_MS)

    def _build_next_later_view(self):
        """Build the next missing later view (Errors with the λ overlay first: Fourier shows
        its fits); False when none is missing."""
        st = self.state
        if self.errors is None:
            self.adjoint = AdjointOverlay(st)       # λ and its fits, for Errors and Fourier
            self.errors = ErrorsView(st, self.traces, self.adjoint)
        elif self.fourier is None:
            self.fourier = FourierView(st)
        elif self.learning is None:
            self.learning = LearningView(st)
        elif self.microcircuit is None:
            self.microcircuit = MicrocircuitView(st)
        else:
            return False
        return True

    def _build_later_views(self):
        while self._build_next_later_view():
            pass

    def _add_sidebar_extras(self):
        """The Share and Teacher-link cards (Sharing's panel; ``dashboard.teacher``) and the
        Export card, below the controls; False if they were there already."""
        if self.export is not None:
            return False
        self.export = ExportView(self)
        extra = (self.sharing.panel(), self.export.panel)
        for obj in extra:
            touch_targets(obj)
        self.controls.extra = extra
        self.export.pane.visible = "export" not in self.sharing.hidden
        return True

    def _later(self):
        """The later views that exist (none before complete_layout in a served session)."""
        return [v for v in (self.errors, self.fourier, self.learning, self.microcircuit)
                if v is not None]

    def complete_layout(self):
        """Add the views left out of the first document (Errors, Fourier, microcircuit,
        Learning) in one patch. They were built and kept up to date all along; only their
        Bokeh models were not sent yet."""
        if self.complete:
            return
        self.complete = True
        mode, self.mode = self.mode, None
        with pn.io.unlocked():
            self._build_later_views()
            self._add_sidebar_extras()
            self.sharing.set_views(self.sharing.visible_views())   # a link's ?views=
            # the reported viewport decides; without one, the layout guessed so far stays
            self.apply_mode(None if self.viewport is not None else mode)
            self.render_frame(force=True)
            self.root.css_classes = [*self.root.css_classes, "gle-complete"]

    def _views(self):
        views = {"lesson": self.lesson, "phase": self.phase, "activity": self.activity,
                 "errors": self.errors, "fourier": self.fourier,
                 "microcircuit": self.microcircuit, "learning": self.learning}
        return {k: None if (v is None or (k in LATER_VIEWS and not self.complete)) else v.panel
                for k, v in views.items()}

    def show_toast(self, text, level="info"):
        """A transient message in the bottom corner (never moves the page)."""
        if not text:
            return
        self._toasts += 1
        level = level if level in ("info", "success", "warning", "danger") else "info"
        # a counter in the markup: the same text twice is a new element (a new animation)
        self.toast.object = (f'<div class="gle-toast {level}" role="status" aria-live="polite"'
                             f' data-n="{self._toasts}">{html.escape(text, quote=False)}</div>')

    def _on_message(self, *events):
        st = self.state
        # messages are plain text and may quote a value from the URL or a hostile client:
        # escaped here, once, so no message can become markup in the visitor's page
        serious = st.message_level in ("warning", "danger") or st.failed
        if st.message and not serious:
            # news (a lesson step, a rebuild): a toast, not a banner that moves the page
            if any(e.name in ("message", "message_level") for e in events):
                self.show_toast(st.message, st.message_level)
            self.alert.visible = False
        else:
            self.alert.object = html.escape(st.message, quote=False) or " "
            self.alert.alert_type = st.message_level
            self.alert.visible = bool(st.message)
        self.alert_reset.visible = st.failed
        self.alert_dismiss.visible = self.alert.visible and not st.failed
        cause = getattr(st, "fail_cause", "") if st.failed else ""
        self.alert_undo.visible = bool(cause) and hasattr(st, "reset_and_undo")
        self._show_cause(cause)

    def dismiss_message(self):
        """Put away the notice at the top (a paused simulation's message stays: it says how
        to go on)."""
        if not self.state.failed:
            self.state.notify("", "info")

    def _show_cause(self, cause):
        """The divergence message also at the card of the control that caused it."""
        from gle_lab.views.controls import PARAM_CARD
        card = self.controls.cards.get(PARAM_CARD.get(cause, "")) if cause else None
        old = self._cause_card
        if old is not None and old is not card and self.cause_box in old.objects:
            old.remove(self.cause_box)
        self._cause_card = card
        if card is None:
            return
        self.cause_text.object = (f'<div class="gle-cause" role="alert">'
                                  f'{html.escape(self.state.message, quote=False)}</div>')
        self.cause_undo.visible = hasattr(self.state, "reset_and_undo")
        card.collapsed = False
        if self.cause_box not in card.objects:
            card.insert(0, self.cause_box)

    # ------------------------------------------------------------------ reactions
    def _on_structure(self, event):
        self.traces.rebuild()
        self.activity.rebuild()
        for view in (self.errors, self.fourier, self.learning):
            if view is not None:
                view.rebuild()
        self.phase.update()

    def _on_reseeded(self, event):
        """Same network shape, new values (a seed change): keep every figure."""
        if self.learning is not None and not self.learning.refresh_references():
            self.learning.rebuild()
        if self.microcircuit is not None:
            self.microcircuit.refresh_weights()
        self.phase.update()

    def _on_cleared(self, event):
        self.traces.clear()
        for view in (self.errors, self.learning):
            if view is not None:
                view.clear()
        self._loss_sum, self._loss_n = 0.0, 0
        self.controls.show_time(self.state.sim.t)

    def _refresh_analytic(self):
        if self.fourier is not None:
            self.fourier.update_curves()
        self.state.measure()
        self.phase.update()
        if self.fourier is not None:
            self.fourier.update(self.errors.adjoint_fits)

    def _tick_soon(self, *events):
        """A control changed: run a frame right away rather than at the next period, so the
        traces show the change ~one frame sooner (skipped if a frame just ran)."""
        cb, doc = self.callback, getattr(self, "_doc", None)
        if cb is None or doc is None or not cb.running or self._tick_pending:
            return
        if self._last_tick is not None and time.perf_counter() - self._last_tick < 0.01:
            return
        self._tick_pending = True

        def run():
            self._tick_pending = False
            if self.callback is not None and self.callback.running:
                self.tick()
        doc.add_next_tick_callback(run)

    def _on_playing(self, event):
        if not event.new and self.state.sim is not None:
            # a session that left a shared run on pausing holds the run's latest samples,
            # which another member may have simulated since this session's last frame:
            # stream them, so the traces end where the clock stops
            data = self.state.collect()
            if data is not None:
                self.traces.push(data)
            # the clock follows at 3 Hz while playing: show the exact time once paused
            self.controls.show_time(self.state.sim.t)
        if self.callback is None:
            return
        if event.new and not self.callback.running:
            self._last_tick = None
            self.callback.start()
        elif not event.new and self.callback.running:
            self.callback.stop()
        if not event.new and self.state.sim is not None and self.errors is not None:
            self.errors.update_adjoint()        # λ of the paused window, once
            if self.fourier is not None:
                self.fourier.update(self.errors.adjoint_fits)

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        """Create the frame callback (from ``pn.state.onload``); runs only while playing."""
        if self.callback is None:
            doc = pn.state.curdoc
            self._doc = doc
            self._served = doc is not None and doc.session_context is not None
            if self._served:
                # the document's own periodic callback (gle_lab.frame_clock: ~0.5 ms of
                # server CPU per frame less than Panel's coroutine around it)
                self.callback = FrameClock(doc, self.tick, FRAME_MS)
            else:
                # Panel's PeriodicCallback with background=True: the same timer without the
                # per-frame busy-indicator bookkeeping; log=False: no two INFO log records
                # per frame
                from panel.io.callbacks import PeriodicCallback
                self.callback = PeriodicCallback(callback=self.tick, period=FRAME_MS,
                                                 background=True, log=False)
            # identical visitors of this process share one run until they change something
            # (gle_lab.shared_runs); not with callbacks on several threads
            self.state.share_runs = self._served and not pn.config.nthreads
            if not self.state.playing:
                _awaiting_first_frame.pop(self, None)    # paused: no first frame to wait for
            if self.state.playing:
                self.callback.start()
            if not self.complete:
                if doc is not None and doc.session_context is not None:
                    self._complete_when_quiet(doc, time.monotonic())
                else:
                    self.complete_layout()

    def destroy(self, session_context=None):
        """Release the session: stop the callback and drop the simulator."""
        if self.callback is not None:
            self.callback.stop()
            self.callback = None
        self.state.release()
        _awaiting_first_frame.pop(self, None)

    # ------------------------------------------------------------------ frames
    def tick(self, n_steps=None):
        """One frame: simulate ``speed × elapsed wall time`` (or ``n_steps``) and stream it."""
        t0 = time.perf_counter()
        if self.state.sim is None:
            return
        if n_steps is None and self.frame > 0 and self._served and \
                visitors_arriving(besides=self):
            self._arrival_skips = (self._arrival_skips + 1) % ARRIVAL_FRAME_EVERY
            if self._arrival_skips:
                return
        wall = 0.0 if self._last_tick is None else t0 - self._last_tick
        if self._last_tick is None and n_steps is None:
            wall = FRAME_MS / 1000
        self._last_tick = t0
        try:
            self.state.advance(wall_dt=wall, n_steps=n_steps)
            # All of a frame's model changes go out as ONE patch message: Bokeh otherwise
            # sends one PATCH-DOC per change, each building a serializer over every model of
            # the document (~660). pn.io.unlocked() collects them (streams stay incremental;
            # only pn.io.hold() turned them into full-data updates: 70 ms of CPU per frame;
            # it sends what it collected even when the frame fails). Bokeh's property
            # validation is off for the frame (its documented use in periodic updates): the
            # values are the engine's numbers, and checking a streamed window walked every
            # column of it (~40 µs a stream).
            with pn.io.unlocked(), validate(False):
                self.render_frame()
        except Exception as exc:                                   # noqa: BLE001
            frame_failed(self.state, exc, self._doc)
        _awaiting_first_frame.pop(self, None)
        self.tick_seconds.append(time.perf_counter() - t0)
        if len(self.tick_seconds) > 1000:
            del self.tick_seconds[:500]

    def render_frame(self, force=False):
        st = self.state
        self.frame += 1
        data = st.collect()
        if data is not None:
            self.traces.push(data)
            if data["loss"] == data["loss"]:
                self._loss_sum += data["loss"] * data["n_new"]
                self._loss_n += data["n_new"]
        if force or self.frame % LEARNING_EVERY == 0:
            loss = self._loss_sum / self._loss_n if self._loss_n else float("nan")
            self._loss_sum, self._loss_n = 0.0, 0
            if self.learning is not None:
                self.learning.push(loss)
            if self.microcircuit is not None:
                self.microcircuit.update()
        errors = self.errors
        adjoint = errors is not None and (force or self.frame % errors.adjoint_every == 0)
        if adjoint:
            errors.update_adjoint()
        # the first frame too: a session joining a shared run shows a whole window at once,
        # its clock and cards must not say t = 0 / "waiting for data" beside it
        if force or self.frame == 1 or self.frame % MEASURE_EVERY == MEASURE_PHASE:
            st.measure()
            self.phase.update()
            if self.fourier is not None:
                self.fourier.update(errors.adjoint_fits)
            self.controls.show_time(st.sim.t)
        elif adjoint and self.fourier is not None:
            # new λ: only its dots in the Fourier view (the phase fit keeps its 3 Hz)
            self.fourier.update(errors.adjoint_fits)
        if self.frame % SYNC_EVERY == 0:
            st.sync_learned()

    def single_step(self):
        """Advance one frame's worth of simulated time (speed/30 a.u.) while paused."""
        st = self.state
        n = max(1, int(round(st.speed * FRAME_MS / 1000 / st.net.dt)))
        st.advance(n_steps=n)
        self.render_frame(force=True)

    def reset(self):
        self.state.reset()
        self.render_frame(force=True)

    def reset_and_undo(self):
        """Back to t = 0 with the last change undone (after a divergence)."""
        undo = getattr(self.state, "reset_and_undo", None)
        if undo is None:
            self.state.reset()
        else:
            undo()
        self.render_frame(force=True)


def _link_query(loc):
    """Give ``loc`` the link's query when its address has none: a session built when its
    websocket connects (a page rendered from a reused session, ``gle-lab --reuse-sessions``)
    sees the websocket's address, while the page request's arguments come in its token."""
    if loc is None or loc.search:
        return
    ctx = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
    args = getattr(getattr(ctx, "request", None), "arguments", None) or {}
    pairs = [(k, v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
             for k, values in args.items() for v in values]
    if pairs:
        loc.search = "?" + urlencode(pairs, safe=",")


def create_app(preset="phase_inversion", seed=None):
    """A new session's dashboard layout (servable); the simulation starts on page load.

    Under any server (``gle-lab``, ``panel serve app/main.py``): an error raised by one
    visitor's input is shown in that session only (:func:`gle_lab.capacity.report_exception`
    becomes Panel's exception handler unless one is set), and a closed session is released
    completely, Panel's link registry included (:func:`gle_lab.capacity.purge_links`)."""
    from gle_lab.capacity import (forget_session_callbacks, purge_links,
                                  quiet_closed_websockets, register_dashboard,
                                  report_exception, unregister_dashboard)
    collector.session_opened()        # no full garbage collection in the middle of builds
    loc = pn.state.location if pn.state.curdoc is not None else None
    _link_query(loc)
    if preset == "mnist1d" or (loc is not None and loc.query_params.get("preset") == "mnist1d"):
        from gle_lab.mnist import create_mnist_app      # its own page (issue #14)
        return create_mnist_app()
    served = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    if served:
        _last_arrival[0] = time.monotonic()
    linked = loc.query_params.get("preset") if loc is not None else None
    if seed is None and isinstance(linked, str) and linked in PRESETS:
        preset = linked                  # built as linked at once, not rebuilt from the default
    dash = Dashboard(preset=preset, seed=seed, progressive=served)
    if served:
        _awaiting_first_frame[dash] = _last_arrival[0]
        _session_docs[dash] = weakref.ref(pn.state.curdoc)
        _last_arrival[1] = weakref.ref(dash)
    dash.sharing.sync_location()      # the link's state (?preset=...&tau_m=...)
    doc = pn.state.curdoc
    if doc is not None:
        doc.template = VIEWPORT_TEMPLATE  # phones: device width, not a shrunk desktop page
    install_paint_fixes(doc)          # repaint fixes, keyboard, accessibility, viewport size
    pn.state.onload(dash.start)
    if doc is not None and doc.session_context is not None:
        quiet_closed_websockets()     # a vanished browser's frames: no traceback in the log
        register_dashboard(doc, dash)
        if pn.config.exception_handler is None:
            pn.config.exception_handler = report_exception

    def release(session_context):
        dash.destroy()
        unregister_dashboard(doc)
        purge_links(dash.layout)
        forget_session_callbacks(doc)
        collector.session_closed()     # its cycles are freed a few seconds later
    pn.state.on_session_destroyed(release)
    dash.layout.dashboard = dash       # reachable from the layout (tests, notebooks)
    return dash.layout


if __name__.startswith("bokeh_app"):
    # ``panel serve app/main.py`` runs this file as a new module per session (and clears it
    # when the session ends): build from the installed module instead, whose process-wide
    # state (visitors arriving, the session log) is shared by all sessions and outlives them
    from gle_lab.capacity import log_to_stdout
    from gle_lab.main import create_app as _create_app
    log_to_stdout()
    _create_app().servable(title="GLE Lab")
