"""Hostile inputs, in-process: every one ends in a visible message naming the parameter and a
session that keeps running.

Three routes, as the server sees them:

* **widget**: a value arrives for a control's widget, as from a browser, a modified client or
  typing (sliders clamp in the browser, a hand-made websocket message does not); exactly as in
  the server, an exception raised while applying it goes to Panel's exception handler, which
  ``gle-lab`` sets to :func:`app.capacity.report_exception`;
* **url**: a shared link's query (``Sharing.sync_location`` with a Panel ``Location``);
* **run**: very long frames, the fastest speed, slider storms.

After each case the test checks the visible alert (``Dashboard.alert``), that the refused value
did not reach the simulation, and that the next frame advances the simulation (after a Reset
where the input made the simulation diverge, which is the documented way out).
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from bokeh.document import Document
from panel.io.location import Location
from panel.io.state import set_curdoc

from gle_lab.capacity import register_dashboard, report_exception
from gle_lab.main import Dashboard
from gle_lab.state import MAX_STEPS_PER_FRAME, preset_seed

NAN, INF = float("nan"), float("inf")


def session(preset="phase_inversion"):
    """A dashboard attached to its own document, registered for report_exception."""
    d = Dashboard(preset=preset)
    doc = Document()
    d.layout.get_root(doc)
    register_dashboard(doc, d)
    d.doc = doc
    d.tick(n_steps=10)
    return d


def as_browser(d, widget_name, value):
    """Apply ``value`` to a control as Panel applies a browser change (errors -> handler)."""
    widget = getattr(d.controls, widget_name)
    with set_curdoc(d.doc):
        try:
            widget.value = value
        except Exception as exc:       # Panel: state._handle_exception -> exception_handler
            assert report_exception(exc, d.doc)


def next_tick_works(d, steps=20):
    st = d.state
    if st.failed:
        d.reset()
        assert not st.failed
    n0 = st.sim.n_steps
    d.tick(n_steps=steps)
    assert st.sim.n_steps == n0 + steps
    assert np.all(np.isfinite(np.asarray(d.traces.source.data["r0"])))


def assert_alert(d, level, *names):
    st = d.state
    assert st.message_level == level, st.message
    assert d.alert.visible and d.alert.alert_type == level
    text = d.alert.object
    assert any(n in text for n in names), (names, text)
    return text


# ----------------------------------------------------------------------------- widget route
# (id, preset, control, value sent, names any of which the message must contain, state
#  parameter that must keep its value)
WIDGET_CASES = [
    ("tau_m 1e-6 (far below dt)", "phase_inversion", "tau_m", -6.0, ("τm", "tau_m"), "tau_m"),
    ("tau_m NaN", "phase_inversion", "tau_m", NAN, ("τm", "tau_m"), "tau_m"),
    ("tau_r at slider minimum dt/2", "phase_inversion", "tau_r", None, ("τr", "tau_r"), "tau_r"),
    ("tau_r 1e-9", "phase_inversion", "tau_r", -9.0, ("τr", "tau_r"), "tau_r"),
    ("tau_r +inf", "phase_inversion", "tau_r", INF, ("τr", "tau_r"), "tau_r"),
    ("lr 1e6", "chain", "lr", 6.0, ("Learning rate", "lr"), "lr"),
    ("gamma typed 1e6", "phase_inversion", "gamma", 1e6, ("γ",), "gamma"),
    ("gamma NaN", "phase_inversion", "gamma", NAN, ("γ",), "gamma"),
    ("beta NaN", "phase_inversion", "beta", NAN, ("β", "beta"), "beta"),
    ("beta 1e12", "phase_inversion", "beta", 12.0, ("β", "beta"), "beta"),
    ("weight 1e300", "chain", "weight", 1e300, ("Weight", "weight"), "weight"),
    ("weight -inf", "chain", "weight", -INF, ("Weight", "weight"), "weight"),
    ("omega +inf", "phase_inversion", "omega", INF, ("ω", "omega"), "omega"),
    ("omega 1e6 rad/a.u.", "phase_inversion", "omega", 6.0, ("ω", "omega"), "omega"),
    ("amplitude NaN", "phase_inversion", "amplitude", NAN, ("Amplitude", "amplitude"),
     "amplitude"),
    ("speed 1e9 a.u./s", "phase_inversion", "speed", 9.0, ("Speed", "speed"), "speed"),
    ("window 0", "phase_inversion", "window", 0.0, ("Window", "window"), "window"),
    ("seed -5", "phase_inversion", "seed", -5, ("Seed", "seed"), "seed"),
    ("seed 2**40", "phase_inversion", "seed", 2**40, ("Seed", "seed"), "seed"),
    ("seed non-numeric", "phase_inversion", "seed", "abc", ("Seed", "seed"), "seed"),
    ("tau_m non-numeric", "phase_inversion", "tau_m", "1; DROP", ("τm", "tau_m"), "tau_m"),
    ("preset unknown", "phase_inversion", "preset", "../../etc/passwd", ("Preset", "preset"),
     "preset"),
    ("error mode unknown", "phase_inversion", "error_mode", "zz", ("Error mode", "error_mode"),
     "error_mode"),
    ("AM window 1e9", "phase_inversion", "am_window", 1e9, ("TW", "am_window"), "am_window"),
]


@pytest.mark.parametrize("case", WIDGET_CASES, ids=[c[0] for c in WIDGET_CASES])
def test_hostile_widget_value_is_refused_with_message(case):
    _, preset, control, value, names, pname = case
    d = session(preset)
    st = d.state
    before = getattr(st, pname)
    net_before = (np.concatenate([a.ravel() for a in st.net.tau_m]).copy(),
                  np.concatenate([a.ravel() for a in st.net.tau_r]).copy(),
                  [w.copy() for w in st.net.W], st.net.gamma, st.net.beta)
    if value is None:                                   # the slider's own lower end
        value = getattr(d.controls, control).start
    as_browser(d, control, value)
    text = assert_alert(d, "danger", *names)
    assert "nan" not in text.lower() or "finite number" in text or "nan" in str(value).lower()
    # the refused value reached neither the state nor the network
    assert getattr(st, pname) == before
    assert np.array_equal(np.concatenate([a.ravel() for a in st.net.tau_m]), net_before[0])
    assert np.array_equal(np.concatenate([a.ravel() for a in st.net.tau_r]), net_before[1])
    assert all(np.array_equal(a, b) for a, b in zip(st.net.W, net_before[2]))
    assert (st.net.gamma, st.net.beta) == net_before[3:]
    # a log slider shows the value in force again
    w = getattr(d.controls, control)
    if control in ("tau_m", "tau_r", "lr", "beta", "omega", "speed"):
        assert 10 ** w.value == pytest.approx(getattr(st, pname), rel=1e-6)
    next_tick_works(d)


def test_hostile_message_cannot_inject_markup():
    d = session()
    as_browser(d, "preset", "<img src=x onerror=alert(1)>")
    text = assert_alert(d, "danger", "Preset")
    assert "<img" not in text and "&lt;img" in text
    next_tick_works(d)


def test_error_in_one_session_is_reported_to_that_session_only():
    a, b = session(), session()
    as_browser(a, "lr", 6.0)
    assert a.state.message_level == "danger" and "Learning rate" in a.state.message
    assert b.state.message == "" and not b.alert.visible
    next_tick_works(a)
    next_tick_works(b)


# ----------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("case", [
    # (id, preset, control settings sent in order, names in the message)
    ("gamma*beta unstable", "phase_inversion", [("gamma", 2.0), ("beta", 3.0)], ("γ·β",)),
    ("learning rate 1 with strong nudging", "phase_inversion",
     [("beta", 1.0), ("lr", 0.0)], ("learning rate",)),
], ids=lambda c: c[0])
def test_in_range_values_that_diverge_pause_with_a_message(case):
    _, preset, settings, names = case
    d = session(preset)
    st = d.state
    if "learning" in case[0]:
        st.param.update(learn_W=True)
    for control, value in settings:
        as_browser(d, control, value)
    for _ in range(40):
        d.tick(n_steps=200)
        if st.failed:
            break
    assert st.failed and not st.playing
    text = assert_alert(d, "danger", *names)
    assert "diverged" in text and "Reset" in text
    assert d.alert_reset.visible
    n = st.sim.n_steps
    d.tick(n_steps=50)                     # a failed session does not advance ...
    assert st.sim.n_steps == n
    next_tick_works(d)                     # ... until Reset


# ----------------------------------------------------------------------------- URL route
URL_CASES = [
    ("tau_m negative", "?tau_m=-1", ("tau_m",)),
    ("tau_r far below dt", "?tau_r=0.001", ("tau_r",)),
    ("tau list NaN", "?preset=chain&tau_m=NaN,1", ("tau_m",)),
    ("lr 1e6", "?lr=1e6", ("lr",)),
    ("omega NaN", "?omega=NaN", ("omega",)),
    ("gamma 1e999 (inf)", "?gamma=1e999", ("gamma",)),
    ("speed Infinity", "?speed=Infinity", ("speed",)),
    ("seed non-numeric", "?seed=abc", ("seed",)),
    ("seed huge", "?seed=99999999999999999999", ("seed",)),
    ("neuron out of range", "?neuron=-1", ("neuron",)),
    ("weights too many", "?preset=chain&W=" + ",".join(["1"] * 1000), ("W",)),
    ("very long value", "?preset=" + "x" * 10000, ("preset",)),
    ("json object", '?omega={"a":[1,2]}', ("omega",)),
    ("unknown key", "?__proto__=1", ("__proto__",)),
]


@pytest.mark.parametrize("case", URL_CASES, ids=[c[0] for c in URL_CASES])
def test_hostile_url_value_falls_back_with_notice(case):
    _, query, names = case
    d = Dashboard()
    d.layout.get_root(Document())
    d.sharing.sync_location(Location(search=query))
    st = d.state
    text = assert_alert(d, "warning", *names)
    assert len(text) < 2000                            # long values are shortened
    assert st.seed == preset_seed(st.preset) and st.lr <= 1.0 and math.isfinite(st.omega)
    assert all(np.all(np.asarray(a) >= st.net.dt) for a in st.net.tau_r)
    next_tick_works(d)


def test_url_value_cannot_inject_markup():
    d = Dashboard()
    d.layout.get_root(Document())
    d.sharing.sync_location(Location(search="?preset=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"))
    assert_alert(d, "warning", "preset")
    assert "<img" not in d.alert.object


# ----------------------------------------------------------------------------- long runs
def test_a_huge_frame_is_capped():
    d = session()
    st = d.state
    n0 = st.sim.n_steps
    d.tick(n_steps=10**9)
    assert st.sim.n_steps - n0 == MAX_STEPS_PER_FRAME
    n1 = st.sim.n_steps
    st.advance(wall_dt=1e6)                 # a frame after a long stall catches up at most
    assert st.sim.n_steps - n1 <= math.ceil(st.speed * 0.1 / st.net.dt) + 1
    next_tick_works(d)


def test_fastest_speed_for_many_frames_stays_bounded():
    d = session("chain")
    st = d.state
    as_browser(d, "speed", 2.0)             # 100 a.u./s: the top of the slider
    assert st.speed == 100.0
    for _ in range(150):
        d.tick()
        d._last_tick -= 1.0                 # every frame pretends a 1 s stall: capped
    assert not st.failed
    src = d.traces.source.data
    assert len(src["t"]) <= st.rollover     # the browser's window stays bounded
    assert st.sim.t > 100
    next_tick_works(d)


# ----------------------------------------------------------------------------- storms
def test_slider_storm_between_frames():
    """600 random control changes (valid and hostile), a frame every 10 of them.

    Seed and preset changes rebuild the session (~0.5 s of CPU each): they have their own
    storm below."""
    rng = random.Random(6)
    d = session("chain")
    st = d.state
    controls = {
        "tau_m": lambda: rng.uniform(-3.5, 1.5), "tau_r": lambda: rng.uniform(-3.5, 1.5),
        "omega": lambda: rng.choice([rng.uniform(-2, 1.5), NAN, INF]),
        "amplitude": lambda: rng.choice([rng.uniform(0, 5), -1.0, NAN]),
        "weight": lambda: rng.choice([rng.uniform(-3, 3), 1e300]),
        "gamma": lambda: rng.choice([rng.uniform(0, 2), 1e6]),
        "beta": lambda: rng.uniform(-3, 1), "speed": lambda: rng.uniform(-1, 2),
        "window": lambda: rng.choice([rng.uniform(1, 80), 0.0]),
        "neuron": lambda: rng.choice([0, 1, 7]),
    }
    for i in range(600):
        name = rng.choice(list(controls))
        as_browser(d, name, controls[name]())
        if i % 10 == 9:
            if st.failed:
                d.reset()
            d.tick(n_steps=20)
    # the controls show what is in force, and the network agrees with the controls
    layer, i = st.neuron_location()
    assert st.net.tau_m[layer][i] == pytest.approx(st.tau_m)
    assert st.net.tau_r[layer][i] == pytest.approx(st.tau_r)
    assert 10 ** d.controls.tau_r.value == pytest.approx(st.tau_r, rel=1e-6)
    assert st.net.gamma == st.gamma and math.isfinite(st.gamma)
    assert math.isfinite(st.omega) and math.isfinite(st.amplitude)
    assert len(d.traces.source.data["t"]) <= st.rollover
    next_tick_works(d)


def test_seed_and_preset_storm_ends_consistent():
    rng = random.Random(3)
    d = session()
    st = d.state
    for _ in range(6):
        as_browser(d, "seed", rng.choice([rng.randrange(50), -1, "x"]))
        as_browser(d, "preset", rng.choice(["chain", "phase_inversion", "nope"]))
        d.tick(n_steps=5)
    as_browser(d, "preset", "chain")
    as_browser(d, "seed", 7)
    assert (st.preset, st.seed) == ("chain", 7)
    assert st.net.layer_sizes == [1, 1, 1]
    assert set(d.traces.source.data) >= {"r0", "r1"}
    next_tick_works(d)
