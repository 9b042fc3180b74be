"""Page layouts, toasts, locks and divergence messages of the dashboard, without a browser
(issue #10; the browser side is tests/ui/test_layout.py)."""
from __future__ import annotations

import time

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Legend
from panel.io.location import Location
from panel.viewable import Viewer

from gle_lab.main import Dashboard
from gle_lab.views.lesson import step_width
from gle_lab.views.style import phone_title


def _walk(obj):
    yield obj
    for child in getattr(obj, "objects", []) or []:
        yield from _walk(child)


@pytest.fixture
def dash():
    d = Dashboard()
    d.layout.get_root(Document())
    return d


def _legend_side(fig):
    for side in ("right", "below"):
        if any(isinstance(o, Legend) for o in getattr(fig, side)):
            return side
    return None


def test_every_view_is_a_viewer_with_its_css_class(dash):
    views = {"activity": dash.activity, "errors": dash.errors, "fourier": dash.fourier,
             "learning": dash.learning, "phase": dash.phase,
             "microcircuit": dash.microcircuit, "lesson": dash.lesson}
    for name, view in views.items():
        assert isinstance(view, Viewer), name
        assert f"gle-view-{name}" in view.__panel__().css_classes, name
    assert "gle-view-controls" in dash.sidebar.css_classes


@pytest.mark.parametrize("size,present,mode", [
    ("1280x720", None, "present"), ("1920x1080", None, "wide"), ("390x844", None, "phone"),
    ("1920x1080", True, "present"), ("1280x720", False, "wide"), ("390x844", True, "phone")])
def test_the_reported_viewport_and_the_present_flag_pick_the_layout(dash, size, present, mode):
    dash.state.present = present
    dash.set_viewport(size)
    assert dash.mode == mode
    assert dash.present_toggle.value == (mode == "present")
    fig = dash.activity.pane.object
    assert (fig.toolbar_location is None) == (mode != "wide")
    assert _legend_side(fig) == ("below" if mode == "phone" else "right")
    assert f"gle-phase-{mode}" in dash.phase.pane.css_classes
    cards = [o for o in dash.sidebar.objects if isinstance(o, pn.Card)]
    if mode == "wide":
        assert cards[0] is dash.controls.cards["experiment"]
        assert any(isinstance(o, pn.Row) for o in dash.root.objects)    # sidebar beside plots
    else:
        # the selected neuron's τ sliders first, open; the other cards closed
        assert cards[0] is dash.controls.cards["neuron"] and not cards[0].collapsed
        assert all(c.collapsed for c in cards[1:4])
    if mode == "phone":
        # one column: cards, one plot, the τ sliders (the sidebar), below each other
        flat = list(_walk(dash.root))          # document order
        order = [next(i for i, o in enumerate(flat) if o is x)
                 for x in (dash.phase.panel, dash.activity.panel, dash.sidebar)]
        assert order == sorted(order)
        # one column under the header (the page's main landmark), not beside the plots
        assert list(dash.root.objects) == [dash.header, dash.phone_main]
        assert dash.sidebar in dash.phone_main.objects
    if mode == "present":
        h = int(size.split("x")[1])
        assert dash.activity.pane.object.height == min(max(h - 330, 260), 620)


def test_bad_viewport_reports_are_ignored(dash):
    before = dash.mode
    for text in ("", "abc", "0x0", "-5x100", "1280"):
        dash.set_viewport(text)
        assert dash.mode == before


def test_present_button_sets_the_flag_and_the_layout(dash):
    dash.set_viewport("1920x1080")
    assert dash.mode == "wide"
    dash.present_toggle.value = True
    assert dash.state.present is True and dash.mode == "present"
    dash.present_toggle.value = False
    assert dash.state.present is False and dash.mode == "wide"


def test_news_is_a_toast_and_trouble_a_banner(dash):
    dash.state.notify("Lesson step: something <b>bold</b>.", "info")
    assert "Lesson step" in dash.toast.object and "&lt;b&gt;" in dash.toast.object
    assert not dash.alert.visible                       # nothing pushes the page down
    dash.state.notify("Some shared values could not be used.", "warning")
    assert dash.alert.visible and dash.alert.alert_type == "warning"


def test_a_links_unused_values_are_named_once_and_the_notice_can_be_dismissed(dash):
    dash.sharing.sync_location(Location(search="?tau_m=-5&omega=abc&tau_r=0.1,0.2"))
    text = dash.state.message
    assert text == ("Not used from the link (the preset's values instead): tau_m: -5 is out "
                    "of range 0.001–100; tau_r: 0.1,0.2 has 2 value(s); this preset needs 1; "
                    "omega: abc is not a number."), text
    assert dash.alert.visible and dash.alert_dismiss.visible
    dash.alert_dismiss.clicks += 1
    assert not dash.alert.visible and not dash.alert_dismiss.visible
    assert dash.state.message == "" and dash.state.playing        # nothing else changed
    # a paused simulation's message says how to go on: it has Reset, no Dismiss
    dash.state.fail(RuntimeError("boom"))
    assert dash.alert.visible and dash.alert_reset.visible and not dash.alert_dismiss.visible
    dash.dismiss_message()
    assert dash.alert.visible and "boom" in dash.state.message


def test_lesson_step_is_marked_done(dash):
    dash.lesson.buttons[0].clicks += 1
    assert dash.state.tau_r == 2.0
    assert dash.lesson.buttons[0].label.startswith("✓ 1.")
    assert "gle-done" in dash.lesson.buttons[0].css_classes
    assert not dash.lesson.buttons[1].label.startswith("✓")
    assert "Lesson step" in dash.toast.object


def test_lesson_steps_stand_in_a_column_on_a_phone_and_in_a_row_again_after(dash):
    """A phone's lesson: one step a line at full width, no hover tooltip (a tap leaves it
    open); turned to a wider layout, the one-line bar comes back as it was."""
    lesson = dash.lesson
    expect = [step.get("expect", "") for step in lesson.lesson["try"]]
    dash.set_viewport("390x844")
    assert dash.mode == "phone"
    bar = lesson.bar[2]
    assert isinstance(bar, pn.Column) and bar.objects == lesson.buttons
    assert all(b.sizing_mode == "stretch_width" and b.width is None and b.description is None
               for b in lesson.buttons)
    lesson.buttons[0].clicks += 1                 # applies as before
    assert dash.state.tau_r == 2.0 and lesson.buttons[0].label.startswith("✓ 1.")
    dash.set_viewport("1280x720")
    assert dash.mode == "present"
    bar = lesson.bar[2]
    assert isinstance(bar, pn.Row) and bar.objects == lesson.buttons
    # as wide as its label (with the check mark a done step gets), within bounds
    assert [b.width for b in lesson.buttons] == [258, 189, 326]
    assert [b.width for b in lesson.buttons] == [
        step_width(f"✓ {i + 1}. {s['label']}") for i, s in enumerate(lesson.lesson["try"])]
    assert [b.description for b in lesson.buttons] == expect and all(expect)
    assert "gle-done" in lesson.buttons[0].css_classes
    assert not any("gle-lesson-phone" in b.css_classes for b in lesson.buttons)


def test_locked_controls_carry_a_lock(dash):
    dash.state.locked = ["tau_m"]
    assert dash.controls.tau_m.label.startswith("🔒 ")
    assert not dash.controls.tau_r.label.startswith("🔒")
    dash.state.locked = []
    assert dash.controls.tau_m.label == dash.state.param.tau_m.label


def test_divergence_message_sits_at_its_control_with_reset_and_undo(dash):
    st = dash.state
    st.beta = 10.0
    st.gamma = 100.0                        # dt (1 + γβ) / τm far above 2: explicit Euler blows up
    for _ in range(200):
        dash.tick(n_steps=200)
        if st.failed:
            break
    assert st.failed and st.fail_cause == "gamma"
    card = dash.controls.cards["learning"]
    assert dash.cause_box in card.objects and not card.collapsed
    assert "diverged" in dash.cause_text.object
    assert dash.alert.visible and dash.alert_undo.visible
    dash.cause_undo.clicks += 1                         # "Reset and undo the last change"
    assert not st.failed and st.gamma != 100.0 and st.sim.t == 0
    assert dash.cause_box not in card.objects and not dash.alert_undo.visible


def test_a_learned_value_beyond_its_slider_is_shown_beside_it(dash):
    st, label = dash.state, dash.state.param.tau_m.label
    st.out_of_range = {"tau_m": 69.5}
    assert "learned: 69.5" in dash.controls.tau_m.label
    st.out_of_range = {}
    assert dash.controls.tau_m.label == label


@pytest.mark.parametrize("mode", ["wide", "present", "phone"])
def test_a_served_session_sends_the_first_screen_first_then_the_rest(mode):
    """The first document holds the first screen (cards, Activity, controls, lesson); the
    other views are built and sent in one patch after the first frame."""
    names = ("errors", "fourier", "microcircuit", "learning")
    full = Dashboard()
    full.apply_mode(mode)
    full_doc = Document()
    full_doc.add_root(full.layout.get_root(full_doc))
    d = Dashboard(progressive=True)
    assert "gle-complete" not in d.layout.css_classes
    assert all(getattr(d, name) is None for name in names)       # not even built yet
    d.apply_mode(mode)
    doc = Document()
    doc.add_root(d.layout.get_root(doc))
    shown = list(_walk(d.layout))
    assert any(o is d.activity.panel for o in shown) and any(o is d.phase.panel for o in shown)
    assert len(doc.models) < 0.6 * len(full_doc.models)
    for _ in range(5):
        d.tick(n_steps=13)                          # frames before completion
    d.state.tau_r = 2.0                             # and a change the later views must show
    events = []
    doc.callbacks.on_change(lambda ev: events.append(ev))
    d.complete_layout()
    assert d.complete and d.mode == mode and "gle-complete" in d.layout.css_classes
    shown = list(_walk(d.layout))
    for name in set(names) - ({"microcircuit"} if mode == "phone" else set()):
        assert any(o is getattr(d, name).panel for o in shown), name
    # every card opened in both (collapsed ones take their controls in when first opened)
    for dd in (d, full):
        for card in [*dd.controls.cards.values(), dd.teacher.pane]:
            card.collapsed = False
    assert len(doc.models) == len(full_doc.models)
    assert events                                   # sent as a patch to the open page
    # built from the current state: Fourier's curves are those of τr = 2 (the error path's
    # phase at ω → 0 leads by atan(ωτm) - atan(ωτr) < 0 for τr > τm)
    tm, tr = d.state.neuron_taus()
    assert tr == 2.0 and d.fourier.curves.data["gle_error_phase"][0] < 0
    d.tick(n_steps=13)
    assert len(d.learning.source.data["t"]) >= 1    # the Learning view follows from now on
    d.complete_layout()                             # once only
    assert len(doc.models) == len(full_doc.models)


@pytest.mark.parametrize("mode", ["present", "phone"])
def test_collapsed_cards_send_their_controls_when_first_opened(mode):
    """In the presentation and phone layouts the sidebar's cards other than the neuron's
    start collapsed: their controls' models are not in the page until a card is opened,
    then they are (in a patch), with their teacher flags."""
    def served(viewport):
        """A served session: built before the page reports its size, then completed."""
        d = Dashboard(progressive=True)
        doc = Document()
        doc.add_root(d.layout.get_root(doc))
        d.set_viewport(viewport)
        d.complete_layout()
        return d, doc
    wide, wide_doc = served("1920x1080")
    d, doc = served({"present": "1280x720", "phone": "390x844"}[mode])
    assert d.mode == mode
    c = d.controls
    # (the Experiment card was open on the first screen guessed before the page's size came)
    assert c.cards["experiment"].collapsed
    closed = ("input", "learning", "display")
    assert all(c.cards[n].collapsed and not c.cards[n].objects for n in closed)
    assert d.teacher.pane.collapsed and not d.teacher.pane.objects
    assert not c.gamma._models                      # γ's slider has no Bokeh model yet
    assert len(doc.models) < len(wide_doc.models) - 40   # Input, learning, Display: ~48
    d.sharing.state.hidden = ["beta"]               # a teacher link hides β (in a closed card)
    before = len(doc.models)
    c.cards["learning"].collapsed = False           # the user opens "Errors and learning"
    assert c.gamma in list(_walk(c.cards["learning"])) and len(doc.models) > before + 20
    in_doc = {id(m) for m in doc.models}
    assert c.gamma._models and all(id(m) in in_doc for m, _ in c.gamma._models.values())
    beta_row = next(o for o in c.cards["learning"].objects
                    if isinstance(o, pn.Row) and c.beta in o.objects)
    assert beta_row.visible is False                # the (?) icon hidden with the slider
    c.cards["learning"].collapsed = True            # closed again: the controls stay
    assert c.gamma in list(_walk(c.cards["learning"]))


def test_a_served_sessions_link_hides_views_once_they_exist():
    d = Dashboard(progressive=True)
    d.layout.get_root(Document())
    d.sharing.set_views(["activity", "errors", "lesson"])
    d.complete_layout()
    assert d.fourier.panel.visible is False and d.learning.panel.visible is False
    assert d.errors.panel.visible is True


def test_completing_layouts_waits_while_visitors_arrive(monkeypatch):
    """A class opening the link at once: every newcomer's first screen before anyone's rest."""
    import gle_lab.main as main

    now = [100.0]
    monkeypatch.setattr(main.time, "monotonic", lambda: now[0])
    # completion steps unpaced (other tests' sessions may still count as live here, and this
    # clock stands still): the pacing has its own test below
    monkeypatch.setattr(main, "_completion_pacer", main.CompletionPacer(pace=0.0))
    d = Dashboard(progressive=True)
    d.layout.get_root(Document())
    doc = _Callbacks()
    main._last_arrival[0] = 100.0                  # someone just arrived
    d._complete_when_quiet(doc, since=100.0)
    now[0] = 100.3
    doc.run_one()
    assert not d.complete and len(doc.pending) == 1 and doc.pending[0][1] == main.COMPLETE_AFTER_MS
    main._last_arrival[0] = 100.3                  # and another one
    now[0] = 101.0
    doc.run_one()
    assert not d.complete
    now[0] = 101.4                                 # a quiet second: one view per callback
    built = []
    while doc.pending and len(built) < 50:
        doc.run_one()
        built.append(sum(getattr(d, n) is not None
                         for n in ("errors", "fourier", "learning", "microcircuit")))
    # the four views, then the Share/Teacher/Export cards, then the patch that shows them
    assert built == [1, 2, 3, 4, 4, 4] and d.complete and d.export is not None
    # arrivals that never stop: completed after COMPLETE_MAX_WAIT_S all the same
    d2 = Dashboard(progressive=True)
    d2.layout.get_root(Document())
    d2._complete_when_quiet(doc, since=now[0])
    for _ in range(200):
        now[0] += 0.3
        main._last_arrival[0] = now[0]
        doc.run_one()
        if d2.errors is not None:                  # the wait is over: the builds begin
            break
    for _ in range(50):
        if not doc.pending:
            break
        doc.run_one()
    assert d2.complete and now[0] - 101.4 >= main.COMPLETE_MAX_WAIT_S
    main._last_arrival[0] = float("-inf")


def test_streaming_sessions_yield_frames_while_visitors_arrive(monkeypatch):
    import gle_lab.main as main
    now = [500.0]
    monkeypatch.setattr(main.time, "monotonic", lambda: now[0])
    d = Dashboard()
    d.layout.get_root(Document())
    d._served = True
    d.tick()                                       # a first frame is never held back
    assert d.frame == 1
    main._last_arrival[0] = now[0]                 # a visitor arrives
    for _ in range(8):
        d.tick()
    assert d.frame == 1 + 8 // main.ARRIVAL_FRAME_EVERY
    t_sim = d.state.sim.t
    now[0] += main.ARRIVAL_QUIET_S + 0.1           # arrivals over: every frame again
    first = d.frame
    for k in range(1, 400):
        d.tick()
        assert d.frame == first + k
        if d.state.sim.t > t_sim and k >= 3:
            break
        time.sleep(0.002)          # a frame simulates the wall time since the last one
    assert d.state.sim.t > t_sim   # and the simulation goes on in real time
    # a lone newcomer is not held back by its own arrival
    import weakref
    main._last_arrival[:] = [now[0], weakref.ref(d)]
    for _ in range(4):
        d.tick()
    assert d.frame == 1 + 8 // main.ARRIVAL_FRAME_EVERY + 3 + 4
    main._last_arrival[:] = [float("-inf"), None]
    main._last_arrival[0] = float("-inf")


def test_a_session_waiting_for_its_first_frame_counts_as_arriving(monkeypatch):
    import gle_lab.main as main
    now = [900.0]
    monkeypatch.setattr(main.time, "monotonic", lambda: now[0])
    main._last_arrival[0] = float("-inf")
    assert not main.visitors_arriving()
    newcomer = Dashboard()
    main._awaiting_first_frame[newcomer] = now[0]
    now[0] += 3.0
    assert main.visitors_arriving()                # created 3 s ago, no frame yet
    newcomer.tick()                                # its first frame
    assert not main.visitors_arriving()
    ghost = Dashboard()                            # a page nobody connects to
    main._awaiting_first_frame[ghost] = now[0]
    now[0] += main.AWAIT_FIRST_FRAME_S + 0.1
    assert not main.visitors_arriving()            # does not hold the others back for long
    ghost.destroy()
    assert ghost not in main._awaiting_first_frame


def test_a_page_whose_websocket_went_to_another_process_stops_counting_as_arriving(monkeypatch):
    """--num-procs: the page's session waits for a websocket that another process took (and
    built the session again); it holds this process "arriving" only ORPHAN_AFTER_S, unless
    its websocket does come."""
    import weakref

    import gle_lab.main as main

    class Doc:                                     # a served document's connection count
        def __init__(self, n):
            self.session_context = type("Ctx", (), {})()
            self.session_context._session = type("S", (), {"connection_count": n})()

    now = [500.0]
    monkeypatch.setattr(main.time, "monotonic", lambda: now[0])
    main._last_arrival[:] = [float("-inf"), None]
    orphan, late = Dashboard(), Dashboard()
    orphan_doc, late_doc = Doc(0), Doc(0)
    for d, doc in ((orphan, orphan_doc), (late, late_doc)):
        main._awaiting_first_frame[d] = now[0]
        main._session_docs[d] = weakref.ref(doc)
    now[0] += main.ORPHAN_AFTER_S - 0.1
    assert main.visitors_arriving()                # too early to tell
    now[0] += 0.2
    assert not main.visitors_arriving()            # no websocket: not a newcomer here
    late_doc.session_context._session.connection_count = 1
    assert main.visitors_arriving()                # its websocket came after all
    now[0] += main.AWAIT_FIRST_FRAME_S
    assert not main.visitors_arriving()
    for d in (orphan, late):
        d.destroy()


def test_phone_titles_drop_their_line_style_key_and_come_back():
    d = Dashboard()
    d.layout.get_root(Document())
    fig = d.activity.pane.object
    full = fig.title.text
    d.apply_mode("phone")
    assert fig.title.text == "Activity: input x and rates r" and len(fig.title.text) <= 32
    d.apply_mode("wide")
    assert fig.title.text == full
    # a view that retitles its figure (the error mode) is followed, in both layouts
    d.state.error_mode = "ie"
    err = next(o for o in d.errors.panel.select(pn.pane.Bokeh)).object
    assert "(IE)" in err.title.text
    d.apply_mode("phone")
    d.apply_mode("wide")
    assert "(IE)" in err.title.text


def test_phone_keys_fit_below_their_plots_and_the_plots_make_room_for_them():
    """On a phone the keys go below the plots (390 px): two columns of short labels with room
    between them, one column of long ones; the Fourier plots share one key, below the phase
    plot; the plots grow by their keys. A wider layout gets it all back."""
    d = Dashboard(preset="chain")
    d.layout.get_root(Document())
    figs = {"activity": d.activity.pane.object, "gain": d.fourier.gain_fig,
            "phase": d.fourier.phase_fig, "tau": d.learning.figs[1]}
    heights = {k: f.height for k, f in figs.items()}

    def key(fig):
        return next(o for o in fig.below + fig.right if isinstance(o, Legend))
    d.apply_mode("phone")
    act, tau, phase = key(figs["activity"]), key(figs["tau"]), key(figs["phase"])
    assert all(k in f.below for k, f in ((act, figs["activity"]), (tau, figs["tau"]),
                                         (phase, figs["phase"])))
    # "τm n1", "τr n1", …: two columns, each as wide as the longest label and a gap
    assert (tau.orientation, tau.ncols) == ("horizontal", 2) and tau.label_width >= 5 * 9
    # "AM adjoint I⁺τm D⁻τr (band)", …: one column, and the gain plot shows no key of its own
    assert (phase.orientation, phase.ncols) == ("vertical", 1) and len(phase.items) == 6
    assert key(figs["gain"]).visible is False
    assert figs["phase"].height > heights["phase"] and figs["tau"].height > heights["tau"]
    d.apply_mode("wide")
    assert key(figs["gain"]).visible is True and key(figs["phase"]) in figs["phase"].right
    assert {k: f.height for k, f in figs.items()} == heights


def test_narrow_plots_keep_the_name_and_mode_in_their_short_titles():
    assert phone_title("Errors (GLE): error e (solid), instantaneous ε (dotted)") == \
        "Errors (GLE)"
    assert phone_title("Microcircuit (paper Fig. 3): representation ▲ coloured by rate r") \
        == "Microcircuit (paper Fig. 3)"
    assert phone_title("Activity: input x and rates r (student solid, teacher dashed)") == \
        "Activity: input x and rates r"
    assert phone_title("Phase arg H(ω)  (+ = leads)") == "Phase arg H(ω)"
    # presentation (1280×720): the half-width Errors and microcircuit plots are short-titled
    # and the Fourier plots' one key lies below them; the full-width Activity keeps its title
    d = Dashboard()
    d.layout.get_root(Document())
    err, circuit = d.errors.pane.object, d.microcircuit.fig
    act = d.activity.pane.object
    d.set_viewport("1280x720")
    assert d.mode == "present"
    assert err.title.text == "Errors (GLE)" and circuit.title.text == "Microcircuit (paper Fig. 3)"
    assert act.title.text.endswith("(student solid, teacher dashed)")
    gain_key = next(o for o in d.fourier.gain_fig.right + d.fourier.gain_fig.below
                    if isinstance(o, Legend))
    assert gain_key.visible is False
    assert any(isinstance(o, Legend) for o in d.fourier.phase_fig.below)
    d.set_viewport("1920x1080")
    assert err.title.text.startswith("Errors (GLE): error e (solid)") and gain_key.visible


def test_completion_steps_are_paced_while_other_sessions_live():
    """A class's layouts complete one step at a time per process, each followed by a pause
    as long as the step (streaming sessions keep half the loop); a lone session: no pause."""
    from gle_lab.main import CompletionPacer
    p = CompletionPacer(pace=1.0)
    assert p.wait(10.0) <= 0                             # nothing ran yet
    p.done(took=0.2, now=10.2, others_live=True)
    assert p.wait(10.25) > 0 and abs(p.wait(10.2) - 0.2) < 1e-12 and p.wait(10.4) <= 0
    p.done(took=0.2, now=11.0, others_live=False)
    assert p.wait(11.0) <= 0


class _Callbacks:
    """A document's timeout callbacks, run by hand."""

    def __init__(self):
        self.pending = []

    def add_timeout_callback(self, cb, ms):
        self.pending.append((cb, ms))

    def run_one(self):
        cb, _ = self.pending.pop(0)
        cb()


def test_completion_waits_its_turn_while_other_sessions_live(monkeypatch):
    import gle_lab.capacity as capacity
    import gle_lab.main as main
    now = [200.0]
    monkeypatch.setattr(main.time, "monotonic", lambda: now[0])
    pacer = main.CompletionPacer(pace=1.0)
    monkeypatch.setattr(main, "_completion_pacer", pacer)
    monkeypatch.setattr(capacity, "live_dashboards", lambda: 3)
    main._last_arrival[0] = float("-inf")          # nobody arriving
    d = Dashboard(progressive=True)
    d.layout.get_root(Document())
    doc = _Callbacks()
    d._complete_when_quiet(doc, since=now[0])
    doc.run_one()                                   # the first step: Errors
    assert d.errors is not None and d.fourier is None
    assert pacer.next_at > now[0]                   # then a pause as long as that step
    doc.run_one()                                   # at the same instant: not its turn
    assert d.fourier is None and doc.pending[0][1] >= main.BUILD_STEP_MS
    now[0] = pacer.next_at + 1e-3
    doc.run_one()
    assert d.fourier is not None
