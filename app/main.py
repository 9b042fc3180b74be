"""GLE Lab: the dashboard composed from the state and its views.

Serve it with ``gle-lab`` (or ``panel serve app/main.py``), or show it in a notebook with
``from gle_lab import dashboard; dashboard()``.

One :class:`Dashboard` per browser session: its own :class:`~app.state.LabState` (and so its
own simulator), views and periodic callback. The callback starts from ``pn.state.onload`` (a
bare page fetch never runs a simulation), stops while paused (no CPU), and is removed when the
session is destroyed.
"""
from __future__ import annotations

import html
import time

import panel as pn

from gle_lab.compat import patch_enabled
from gle_lab.state import LabState
from gle_lab.streaming import TraceStream
from gle_lab.views.activity import ActivityView
from gle_lab.views.controls import ControlsView, on_click
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

CSS = """
.gle-header {font-family: system-ui, sans-serif;}
.gle-alert {font-size: 16px;}
"""

pn.extension("katex", raw_css=[CSS])   # katex: the lessons' equations


class Dashboard:
    """A live GLE Lab session: state, views, layout and the frame callback."""

    def __init__(self, preset="phase_inversion", seed=0):
        self.state = st = LabState(preset=preset, seed=seed)
        self.traces = TraceStream(st)
        self.activity = ActivityView(st, self.traces)
        self.errors = ErrorsView(st, self.traces)
        self.fourier = FourierView(st)
        self.learning = LearningView(st)
        st.measure()                    # analytic readouts before the first frame
        self.phase = PhaseView(st)
        self.controls = ControlsView(st, self)
        self.lesson = LessonView(st)
        self.microcircuit = MicrocircuitView(st)
        self.callback = None
        self.frame = 0
        self._loss_sum = 0.0
        self._loss_n = 0
        self._last_tick = None
        self._tick_pending = False
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
        self.export = ExportView(self)
        self.layout = self._layout()

    # ------------------------------------------------------------------ layout
    def _layout(self):
        st = self.state
        self.alert = pn.pane.Alert(st.message, alert_type="info", visible=bool(st.message),
                                   sizing_mode="stretch_width", css_classes=["gle-alert"],
                                   margin=(2, 10))
        self.alert_reset = pn.widgets.Button(name="Reset simulation", button_type="danger",
                                             visible=False, width=180,
                                             css_classes=["gle-alert-reset"])
        on_click(self.alert_reset, self.reset)
        st.param.watch(self._on_message, ["message", "message_level", "failed"])
        header = pn.Row(
            pn.pane.HTML("<div class='gle-header'><span style='font-size:26px;"
                         "font-weight:700'>GLE Lab</span> <span style='color:#666;"
                         "font-size:14px'>Generalized Latent Equilibrium neurons, live"
                         "</span></div>", margin=(8, 10), width=560),
            self.controls.playback_bar(), sizing_mode="stretch_width",
            styles={"border-bottom": "1px solid #ddd"})
        left = pn.Column(self.activity.panel, self.errors.panel, sizing_mode="stretch_width",
                         margin=0)
        right = pn.Column(self.fourier.panel, self.microcircuit.panel, sizing_mode="stretch_width", margin=0)
        main = pn.Column(
            pn.Row(self.alert, self.alert_reset, sizing_mode="stretch_width"),
            self.lesson.panel,
            self.phase.panel,
            pn.Row(left, right, sizing_mode="stretch_width"),
            self.learning.panel,
            sizing_mode="stretch_width", margin=0)
        return pn.Column(header, pn.Row(self.controls.sidebar(extra=(self.sharing.panel(),
                                                                 self.export.panel)), main,
                                        sizing_mode="stretch_width"),
                         sizing_mode="stretch_width", css_classes=["gle-lab"])

    def _on_message(self, *events):
        st = self.state
        # messages are plain text and may quote a value from the URL or a hostile client:
        # escaped here, once, so no message can become markup in the visitor's page
        self.alert.object = html.escape(st.message, quote=False) or " "
        self.alert.alert_type = st.message_level
        self.alert.visible = bool(st.message)
        self.alert_reset.visible = st.failed

    # ------------------------------------------------------------------ reactions
    def _on_structure(self, event):
        self.traces.rebuild()
        self.activity.rebuild()
        self.errors.rebuild()
        self.fourier.rebuild()
        self.learning.rebuild()
        self.phase.update()

    def _on_reseeded(self, event):
        """Same network shape, new values (a seed change): keep every figure."""
        if not self.learning.refresh_references():
            self.learning.rebuild()
        self.microcircuit.refresh_weights()
        self.phase.update()

    def _on_cleared(self, event):
        self.traces.clear()
        self.errors.clear()
        self.learning.clear()
        self._loss_sum, self._loss_n = 0.0, 0
        self.controls.clock.object = f"t = {self.state.sim.t:.1f} a.u."

    def _refresh_analytic(self):
        self.fourier.update_curves()
        self.state.measure()
        self.phase.update()
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
        if self.callback is None:
            return
        if event.new and not self.callback.running:
            self._last_tick = None
            self.callback.start()
        elif not event.new and self.callback.running:
            self.callback.stop()
        if not event.new and self.state.sim is not None:
            self.errors.update_adjoint()        # λ of the paused window, once
            self.fourier.update(self.errors.adjoint_fits)

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        """Create the frame callback (from ``pn.state.onload``); runs only while playing."""
        if self.callback is None:
            # Panel's PeriodicCallback with background=True: the same timer without the
            # per-frame busy-indicator bookkeeping (two param updates with watchers per frame)
            from panel.io.callbacks import PeriodicCallback
            self.callback = PeriodicCallback(callback=self.tick, period=FRAME_MS,
                                             background=True)
            doc = pn.state.curdoc
            if doc is not None and patch_enabled("panel_periodic_registry"):
                # removed with the session, like Panel's own
                pn.state._periodic.setdefault(doc, []).append(self.callback)
            self._doc = doc
            if self.state.playing:
                self.callback.start()

    def destroy(self, session_context=None):
        """Release the session: stop the callback and drop the simulator."""
        if self.callback is not None:
            self.callback.stop()
            self.callback = None
        self.state.sim = self.state.teacher_sim = None

    # ------------------------------------------------------------------ frames
    def tick(self, n_steps=None):
        """One frame: simulate ``speed × elapsed wall time`` (or ``n_steps``) and stream it."""
        t0 = time.perf_counter()
        if self.state.sim is None:
            return
        wall = 0.0 if self._last_tick is None else t0 - self._last_tick
        if self._last_tick is None and n_steps is None:
            wall = FRAME_MS / 1000
        self._last_tick = t0
        self.state.advance(wall_dt=wall, n_steps=n_steps)
        # All of a frame's model changes go out as ONE patch message: Bokeh otherwise sends
        # one PATCH-DOC per change, each building a serializer over every model of the
        # document (~660). pn.io.unlocked() collects them (streams stay incremental; only
        # pn.io.hold() turned them into full-data updates: 70 ms of CPU per frame).
        with pn.io.unlocked():
            self.render_frame()
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
            self.learning.push(loss)
            self.microcircuit.update()
        adjoint = force or self.frame % self.errors.adjoint_every == 0
        if adjoint:
            self.errors.update_adjoint()
        if force or adjoint or self.frame % MEASURE_EVERY == MEASURE_PHASE:
            st.measure()
            self.phase.update()
            self.fourier.update(self.errors.adjoint_fits)
            self.controls.clock.object = f"t = {st.sim.t:.1f} a.u."
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


def create_app(preset="phase_inversion", seed=0):
    """A new session's dashboard layout (servable); the simulation starts on page load.

    Under any server (``gle-lab``, ``panel serve app/main.py``): an error raised by one
    visitor's input is shown in that session only (:func:`gle_lab.capacity.report_exception`
    becomes Panel's exception handler unless one is set), and a closed session is released
    completely, Panel's link registry included (:func:`gle_lab.capacity.purge_links`)."""
    from gle_lab.capacity import (purge_links, register_dashboard, report_exception,
                              unregister_dashboard)
    loc = pn.state.location if pn.state.curdoc is not None else None
    if preset == "mnist1d" or (loc is not None and loc.query_params.get("preset") == "mnist1d"):
        from gle_lab.mnist import create_mnist_app      # its own page (issue #14)
        return create_mnist_app()
    dash = Dashboard(preset=preset, seed=seed)
    dash.sharing.sync_location()      # the link's state (?preset=...&tau_m=...)
    doc = pn.state.curdoc
    install_paint_fixes(doc)          # three BokehJS repaint costs, fixed in the page
    pn.state.onload(dash.start)
    if doc is not None and doc.session_context is not None:
        register_dashboard(doc, dash)
        if pn.config.exception_handler is None:
            pn.config.exception_handler = report_exception

    def release(session_context):
        dash.destroy()
        unregister_dashboard(doc)
        purge_links(dash.layout)
    pn.state.on_session_destroyed(release)
    dash.layout.dashboard = dash       # reachable from the layout (tests, notebooks)
    return dash.layout


if __name__.startswith("bokeh_app"):
    create_app().servable(title="GLE Lab")
