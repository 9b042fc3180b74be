"""Session capacity and idle expiry for a shared GLE Lab server.

:class:`SessionLimiter` counts the live dashboard sessions of this server *process* (a
thread-safe set of Bokeh session ids, filled when the app factory builds a session and emptied
by ``pn.state.on_session_destroyed``). :func:`guarded_app` wraps the app factory: beyond the
cap a new visitor gets a small static page, "GLE Lab is full, please try again in a few
minutes", that runs no simulation and costs next to nothing.

:class:`IdleWatch` pauses a session's simulation after ``idle_timeout`` seconds without any
interaction from its browser (widget changes, button clicks) and closes the session after
twice that, which frees its place (the unused-session reaper then destroys it).

:func:`report_exception` (Panel's exception handler in every served session: set by
:func:`gle_lab.main.create_app` under ``gle-lab`` and plain ``panel serve`` alike) shows an
error raised while handling one browser's input (a value beyond a control's bounds sent by a
modified client, say) to *that* session only, as a visible message naming the parameter, and
puts the control back to the value in force; other sessions never see it.

With ``--num-procs N`` every process has its own counter: the server-wide cap is
``N × max_sessions``.
"""
from __future__ import annotations

import html
import logging
import re
import sys
import threading
import time
import weakref

import panel as pn
from bokeh.models import Widget

log = logging.getLogger("gle_lab.capacity")

FULL_MESSAGE = "GLE Lab is full, please try again in a few minutes"
#: client events that count as interaction (Bokeh event names)
INTERACTION_EVENTS = {"button_click", "menu_item_click", "value_submit"}


class SessionLimiter:
    """At most ``max_sessions`` live sessions in this process (``None`` or 0: unlimited)."""

    def __init__(self, max_sessions=None):
        self.max_sessions = max_sessions or None
        self._lock = threading.Lock()
        self._active = set()
        self.refused = 0            # visitors turned away since start
        self.peak = 0

    @property
    def active(self):
        with self._lock:
            return len(self._active)

    def try_acquire(self, session_id):
        """Take a place for ``session_id``; False when full (idempotent per id)."""
        with self._lock:
            if session_id in self._active:
                return True
            if self.max_sessions is not None and len(self._active) >= self.max_sessions:
                self.refused += 1
                return False
            self._active.add(session_id)
            self.peak = max(self.peak, len(self._active))
            return True

    def release(self, session_id):
        with self._lock:
            self._active.discard(session_id)

    def __repr__(self):
        return (f"SessionLimiter(active={self.active}, max={self.max_sessions}, "
                f"refused={self.refused})")


def full_page(message=FULL_MESSAGE):
    """The polite refusal: static HTML, no callbacks, no simulation."""
    return pn.pane.HTML(
        f"<div class='gle-full' style='font-family:system-ui,sans-serif;max-width:560px;"
        f"margin:80px auto;text-align:center'>"
        f"<div style='font-size:28px;font-weight:700'>{html.escape(message)}.</div>"
        f"<p style='font-size:16px;color:#555'>Every place in this lab is taken right now. "
        f"Places free up when other visitors close their tab or stay idle.</p>"
        f"<p style='font-size:16px'><a href='' onclick='location.reload();return false'>"
        f"Try again</a></p></div>",
        sizing_mode="stretch_width")


def session_id(doc):
    """The Bokeh session id of ``doc`` (None outside a served session): the log's name for
    a session."""
    ctx = getattr(doc, "session_context", None) if doc is not None else None
    return getattr(ctx, "id", None) if ctx is not None else None


class IdleWatch:
    """Pause after ``timeout`` s without interaction; close the session after ``2 × timeout``.

    Interaction is any change the browser makes to a widget, or a button click; the periodic
    frames the server streams do not count. ``dashboard`` (optional) is the session's
    :class:`gle_lab.main.Dashboard`: it is paused and told why.
    """

    def __init__(self, doc, timeout, dashboard=None, check_every=None, clock=time.monotonic):
        self.doc = doc
        self.timeout = float(timeout)
        self.dashboard = dashboard
        self.clock = clock
        self.last = clock()
        self.paused = False
        self.closed = False
        # at most 2 s: Bokeh keeps a stopped periodic callback, and with it the closed
        # session's document and dashboard, until its current period ends (a cheap check;
        # a 30 s period held every closed session 30 s longer in memory)
        self.check_every = check_every or min(max(self.timeout / 10, 0.5), 2.0)
        self.callback = None
        if doc is not None:
            doc.on_change(self._on_change)
            doc.callbacks.on_message("bokeh_event", self._on_event)

    # -- interaction
    def touch(self):
        self.last = self.clock()
        self.paused = False

    def _on_change(self, event):
        # Only the browser's changes to widgets count: it also sends plot ranges and sizes
        # on its own (a DataRange1d following the data reports start/end every frame).
        if getattr(event, "setter", None) is None:      # made on the server (frames)
            return
        if not isinstance(getattr(event, "model", None), Widget) and \
                getattr(event, "attr", None) != "collapsed":
            return
        log.debug("interaction: %s.%s", type(getattr(event, "model", None)).__name__,
                  getattr(event, "attr", getattr(event, "kind", "?")))
        self.touch()

    def _on_event(self, data):
        name = getattr(data, "event_name", None)
        if name is None and isinstance(data, dict):
            name = data.get("name")
        log.debug("client event: %s", name)
        if name in INTERACTION_EVENTS:
            self.touch()

    # -- the check
    def start(self):
        """Begin checking (called from ``pn.state.onload``)."""
        self.last = self.clock()
        if self.callback is None:
            self.callback = pn.state.add_periodic_callback(
                self.check, period=int(self.check_every * 1000))

    def stop(self):
        if self.callback is not None:
            self.callback.stop()
            self.callback = None

    def release(self):
        """The session is gone: stop, and let go of it (Bokeh keeps a stopped periodic
        callback, and with it this watch, until its current period ends)."""
        self.stop()
        self.dashboard = self.doc = None
        self.released = True

    released = False

    def check(self):
        if self.released:
            return
        idle = self.clock() - self.last
        if idle >= 2 * self.timeout and not self.closed:
            self.close_session()
        elif idle >= self.timeout and not self.paused:
            self.pause()

    def _minutes(self, s):
        return f"{s / 60:.3g} min" if s >= 60 else f"{s:.3g} s"

    def pause(self):
        self.paused = True
        dash = self.dashboard
        if dash is None:
            return
        st = dash.state
        if st.playing:
            st.pause()
        st.notify(f"Paused after {self._minutes(self.timeout)} without interaction, to leave "
                  f"the server to other visitors. Press ▶ Play to continue; idle sessions are "
                  f"closed after another {self._minutes(self.timeout)}.", "warning")

    def close_session(self):
        """Tell the user, then drop the websocket: the session is reaped and its place freed."""
        self.closed = True
        self.stop()
        dash = self.dashboard
        if dash is not None:
            st = dash.state
            if st.playing:
                st.pause()
            st.notify("This session was closed after "
                      f"{self._minutes(2 * self.timeout)} without interaction. Reload the page "
                      "to start again.", "warning")
        log.info("closing idle session %s", session_id(self.doc))
        # Bokeh has no public 'close this session' call; closing its websockets is the
        # browser-equivalent of closing the tab (private attributes, guarded).
        doc = self.doc

        def drop():
            ctx = getattr(doc, "session_context", None)
            session = getattr(ctx, "_session", None)
            for conn in list(getattr(session, "_subscribed_connections", ()) or ()):
                sock = getattr(conn, "_socket", None)
                if sock is not None:
                    try:
                        sock.close()
                    except Exception:                          # noqa: BLE001
                        log.exception("could not close an idle session's websocket")
        # after this tick's messages (the notice above) are sent
        if doc is not None:
            doc.add_timeout_callback(drop, 1000)


#: session document -> weak reference to its Dashboard (for :func:`report_exception`); both
#: weak, and the entry is dropped when the session is destroyed (a Dashboard refers to its
#: document, so a strong value would keep the whole session alive forever)
_DASHBOARDS = weakref.WeakKeyDictionary()
#: every dashboard registered, weakly: those not live any more are closed sessions still in
#: memory (closed_in_memory; the log says how many after each collection)
_EVER = weakref.WeakSet()
_PARAM_RE = re.compile(r"'LabState\.(\w+)'")


def frame_failed(state, exc, doc=None):
    """A fault of one frame (raised by the simulation or a view, not a divergence, which
    pauses inside the state): logged once with its traceback, and the session pauses and
    says why (``state.fail``). Raised from the frame callback instead, it would be logged
    and raised again at every frame under frozen plots."""
    log.error("session %s: a frame failed; the session is paused",
              session_id(doc if doc is not None else pn.state.curdoc), exc_info=exc)
    state.fail(exc)


def report_exception(exc, doc=None):
    """Show ``exc`` (raised while handling this session's input) in this session only.

    A refused value of a :class:`~app.state.LabState` parameter (``'LabState.tau_m' must be at
    least 0.001``) is named, and the parameter is re-announced so that every control shows
    the value actually in force again. Returns True if a session was told.
    """
    doc = doc if doc is not None else pn.state.curdoc
    ref = _DASHBOARDS.get(doc) if doc is not None else None
    dash = ref() if ref is not None else None
    log.warning("session %s: %s: %s", session_id(doc), type(exc).__name__, exc,
                exc_info=not isinstance(exc, (ValueError, TypeError)))
    if dash is None or getattr(dash, "state", None) is None:
        return False
    st = dash.state
    m = _PARAM_RE.search(str(exc))
    name = m.group(1) if m else None
    widget = _failed_widget(exc)
    if widget is not None and not (name is not None and name in st.param):
        try:
            widget.param.trigger("value")       # the browser shows the value in force again
        except Exception:                                      # noqa: BLE001
            log.exception("could not restore widget %s", widget.name)
    if name is not None and name in st.param:
        label = st.param[name].label or name
        try:
            st.param.trigger(name)          # controls follow the value in force again
        except Exception:                                      # noqa: BLE001
            log.exception("could not restore %s", name)
        text = f"Refused {label} ({name}): {_plain(exc)}"
    elif widget is not None:
        text = f"Refused {widget.name}: {_plain(exc)}"
    else:
        text = f"That input could not be applied: {type(exc).__name__}: {_plain(exc)}"
    # the value may come from a hostile client: the alert escapes every message (app/main.py)
    st.notify(text, "danger")
    return True


def _plain(exc):
    text = str(exc).strip()
    text = re.sub(r"(Number|Integer|Selector|Boolean|String) parameter '\w+\.\w+' ", "", text)
    text = re.sub(r"must be at (most|least) \S+, not (-?inf|nan)\.",
                  r"must be a finite number, not \2.", text)
    return text[:300]


def _failed_widget(exc):
    """The Panel widget whose browser value failed (the innermost one in the traceback)."""
    from panel.widgets import Widget as PanelWidget
    found, tb = None, exc.__traceback__
    while tb is not None:
        for key in ("self", "obj"):
            obj = tb.tb_frame.f_locals.get(key)
            if isinstance(obj, PanelWidget):
                found = obj
        tb = tb.tb_next
    return found


def register_dashboard(doc, dashboard):
    """Make ``dashboard`` the target of :func:`report_exception` for ``doc`` (and log the
    session with the process' live count)."""
    if doc is not None and dashboard is not None:
        _DASHBOARDS[doc] = weakref.ref(dashboard)
        _EVER.add(dashboard)
        log.info("session opened (%d live)", len(_DASHBOARDS))


def live_dashboards():
    """Sessions of this process registered with :func:`register_dashboard` and not closed."""
    return len(_DASHBOARDS)


def closed_in_memory():
    """Dashboards of closed sessions not freed yet (0 soon after a full collection)."""
    live = {id(ref()) for ref in list(_DASHBOARDS.values())}
    return sum(1 for d in list(_EVER) if id(d) not in live)


def unregister_dashboard(doc):
    if doc is not None and _DASHBOARDS.pop(doc, None) is not None:
        log.info("session closed (%d live)", len(_DASHBOARDS))


def log_to_stdout():
    """GLE Lab's log lines (each session opened/closed with the process' live count,
    refusals, errors) on standard output, beside the server's own (idempotent)."""
    root = logging.getLogger("gle_lab")
    if not any(getattr(h, "_gle_lab", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("gle-lab: %(message)s"))
        handler._gle_lab = True
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def forget_session_callbacks(doc):
    """Drop a destroyed session's document's record of its pending callbacks.

    Bokeh removes a closed session's timeout and next-tick callbacks from the event loop and
    destroys its document, but the document keeps them in its callback manager: closures
    over the session's dashboard (~50 000 objects). Something of asyncio's may still hold
    the dead document for a while (a task's context), and with it the whole session, past
    the full collection meant to free it. Returns the number dropped."""
    from gle_lab.compat import patch_enabled
    if not patch_enabled("bokeh_forget_session_callbacks"):
        return 0
    pending = getattr(getattr(doc, "callbacks", None), "_session_callbacks", None)
    if not isinstance(pending, set):
        return 0
    n = len(pending)
    pending.clear()
    return n


def purge_links(layout):
    """Drop the session's entries from Panel's class-level link registries.

    ``panel.links.Callback.registry`` (and ``Link.registry``) are WeakKeyDictionaries keyed by
    a widget whose values refer back to that widget's siblings: ``EditableFloatSlider`` links
    its text box to its slider, so the entry never dies and keeps the whole session (its
    LabState, simulator and views, ~9 MB) alive after it was destroyed. The dashboard no
    longer uses such a widget (none registers a link today); this stays as the guard for the
    next one. Returns the number of entries dropped.
    """
    from panel.links import Callback, Link
    try:
        ids = {id(o) for o in layout.select()}
    except Exception:                                          # noqa: BLE001
        return 0
    dropped = 0
    for registry in (Callback.registry, Link.registry):
        for key in [k for k in list(registry.keys()) if id(k) in ids]:
            registry.pop(key, None)
            dropped += 1
    return dropped


def guarded_app(factory, limiter=None, idle_timeout=None):
    """Wrap ``factory`` (returning a session's layout) with the session cap and idle expiry.

    ``limiter``: a :class:`SessionLimiter` (None: no cap). ``idle_timeout``: seconds (None or
    0: sessions may idle forever).
    """
    def app():
        doc = pn.state.curdoc
        sid = session_id(doc)
        if limiter is not None and not limiter.try_acquire(sid):
            log.warning("GLE Lab full (%d sessions): refused session %s",
                        limiter.max_sessions, sid)
            return full_page()
        try:
            layout = factory()
        except Exception:
            if limiter is not None:
                limiter.release(sid)
            raise
        watch = None
        if idle_timeout and doc is not None:
            watch = IdleWatch(doc, idle_timeout, dashboard=getattr(layout, "dashboard", None))
            pn.state.onload(watch.start)
            layout.idle_watch = watch

        def release(session_context):
            if watch is not None:
                watch.release()
            if limiter is not None:
                limiter.release(sid)
        pn.state.on_session_destroyed(release)
        return layout
    app.limiter = limiter
    return app


# ---------------------------------------------------------------------- heavy sessions
#: default cap of MNIST-1D sessions per server process (gle-lab --max-heavy-sessions): one
#: session at full speed takes ~60 % of a core (benchmarks/bench_mnist_app.py)
DEFAULT_MAX_HEAVY = 1
HEAVY_FULL_MESSAGE = "The MNIST-1D lab is busy, please try again in a few minutes"
#: live MNIST-1D sessions of this process (gle_lab.mnist.create_mnist_app takes a place)
HEAVY = SessionLimiter(DEFAULT_MAX_HEAVY)


_TAP = "display:inline-block;min-height:44px;line-height:44px;padding:0 8px"


def heavy_full_page(message=HEAVY_FULL_MESSAGE):
    """The polite refusal of one more MNIST-1D session: the other presets stay open."""
    return pn.pane.HTML(
        f"<div class='gle-full gle-heavy-full' style='font-family:system-ui,sans-serif;"
        f"max-width:600px;margin:80px auto;text-align:center'>"
        f"<div style='font-size:28px;font-weight:700'>{html.escape(message)}.</div>"
        f"<p style='font-size:16px;color:#444'>A network learning MNIST-1D live takes most "
        f"of a processor core, so this server runs only {HEAVY.max_sessions or 'a few'} at "
        f"a time; a place frees up about half a minute after its visitor closes the tab. "
        f"The other GLE Lab presets are open.</p>"
        # links 44 px tall: a phone's touch targets
        f"<p style='font-size:16px'><a href='' style='{_TAP}' "
        f"onclick='location.reload();return false'>Try again</a> · "
        f"<a href='?preset=phase_inversion' style='{_TAP}'>Open another preset</a></p>"
        f"</div>", sizing_mode="stretch_width")


#: exceptions of a write to a websocket whose browser is already gone (a tab closed, a
#: dropped Wi-Fi link): expected, and the session is reaped or reconnects by itself
_GONE = ("WebSocketClosedError", "StreamClosedError")


def quiet_closed_websockets(loop=None):
    """Keep writes to vanished websockets out of the log, once per event loop.

    Tornado schedules every websocket write as a task; when the browser has gone, the task
    fails with ``WebSocketClosedError`` and asyncio logs "Task exception was never
    retrieved" with a traceback, once per frame in flight. Those are counted at debug level
    instead; every other exception still reaches the previous handler.
    """
    import asyncio
    try:
        loop = loop or asyncio.get_event_loop()
    except RuntimeError:
        return
    previous = loop.get_exception_handler()
    if getattr(previous, "gle_quiet", False):
        return

    def handler(lp, context):
        exc = context.get("exception")
        if exc is not None and type(exc).__name__ in _GONE:
            log.debug("write to a closed websocket dropped: %r", exc)
            return
        if previous is not None:
            previous(lp, context)
        else:
            lp.default_exception_handler(context)
    handler.gle_quiet = True
    loop.set_exception_handler(handler)

