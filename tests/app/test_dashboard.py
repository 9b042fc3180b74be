"""Fast, browser-free tests of the dashboard: build, tick, readouts, failure, sessions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from bokeh.document import Document

from gle_lab.main import LEARNING_EVERY, Dashboard, create_app
from gle_lab.state import LabState
from gle_lab.presets import PRESETS
from gle_core import fourier


@pytest.fixture
def dash():
    return Dashboard()


def run_frames(d, frames, steps=50):
    for _ in range(frames):
        d.tick(n_steps=steps)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_app_builds_and_streams_for_every_preset(preset):
    d = Dashboard(preset=preset)
    root = d.layout.get_root(Document())
    assert root is not None
    run_frames(d, 2 * LEARNING_EVERY, steps=10)
    src = d.traces.source.data
    n = sum(d.state.net.layer_sizes[1:])
    k = d.state.decimation                      # ≤ 2000 display points per window
    assert len(src["t"]) == 20 * LEARNING_EVERY // k
    assert np.allclose(np.diff(src["t"]), d.state.net.dt * k)
    for j in range(n):
        assert np.all(np.isfinite(src[f"r{j}"]))
        assert np.all(np.isfinite(src[f"e{j}"]))
    assert len(d.learning.source.data["t"]) == 2     # one row every LEARNING_EVERY frames
    assert not d.state.failed and d.state.message_level != "danger"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_document_passes_bokeh_validation(preset):
    """No Bokeh validation error (the server logs each one at every session start)."""
    from bokeh.core.validation import check_integrity
    d = Dashboard(preset=preset)
    doc = Document()
    doc.add_root(d.layout.get_root(doc))
    issues = check_integrity(doc.models)
    assert [str(e) for e in issues.error] == []
    assert [str(w) for w in issues.warning] == []


def test_presets_are_valid_gle_core_configs():
    from gle_core.config import build_simulator
    for name, cfg in PRESETS.items():
        sim = build_simulator(cfg, seed=0)
        assert sim.network.layer_sizes[0] == 1, name
        assert cfg["ui"]["speed"] > 0


@pytest.mark.parametrize("preset, window, steps", [("chain", 20.0, [7, 300, 1, 2500]),
                                                   ("le_limit", 2.0, [450, 3, 4, 1000]),
                                                   ("phase_inversion", 5.0, [1, 1, 999])])
def test_collect_gives_the_window_s_unseen_samples_whose_number_is_a_multiple_of_the_decimation(
        preset, window, steps):
    """The rows a frame streams, checked against the probes read in full: of the samples
    not yet shown (at most the window's), those numbered k·decimation; the teacher's rows
    beside them (they end together)."""
    st = LabState(preset)
    st.window = window
    seen = rows = 0
    for n in steps:
        st.advance(n_steps=n)
        got = st.collect()
        probes, total = st.sim.probes, st.sim.probes["t"].total
        new = min(total - seen, int(np.ceil(window / st.net.dt)) + 1)
        keep = np.arange(total - new, total) % st.decimation == 0
        assert keep.sum() == len(got["t"])
        rows += len(got["t"])
        np.testing.assert_array_equal(got["t"], probes["t"].last(new)[keep])
        np.testing.assert_array_equal(got["input"], probes["input"].last(new)[keep][:, 0])
        for key, probe in (("r", "r"), ("e", "error"), ("eps", "inst_error")):
            np.testing.assert_array_equal(got[key], probes[probe].last(new)[keep])
        np.testing.assert_array_equal(got["teacher_r"],
                                      probes["teacher_r"].last(new)[keep])
        assert got["n_new"] == total - seen
        seen = total
    assert rows > 100 and st.collect() is None


def test_tick_changes_streamed_data(dash):
    src = dash.traces.source
    dash.tick(n_steps=30)
    t1 = np.array(src.data["t"])
    r1 = np.array(src.data["r0"])
    dash.tick(n_steps=30)
    k = dash.state.decimation
    assert len(src.data["t"]) == 60 // k
    assert src.data["t"][-1] > t1[-1]
    assert not np.allclose(src.data["r0"][-(30 // k):], r1[-(30 // k):])


def test_wall_clock_speed_and_rollover(dash):
    st = dash.state
    st.speed = 3.0
    n = st.advance(wall_dt=0.05)          # 3 a.u./s × 0.05 s = 15 steps of dt = 0.01
    assert n == 15
    assert st.advance(wall_dt=5.0) == 30  # catch-up is capped at MAX_FRAME_GAP = 0.1 s
    st.window = 5.0
    run_frames(dash, 20, steps=100)       # 20 a.u. streamed into a 5 a.u. window
    t = dash.traces.source.data["t"]
    assert len(t) == st.rollover
    assert t[-1] - t[0] == pytest.approx(5.0, abs=0.02)


def test_phase_readout_follows_tau_r_and_flips_sign(dash):
    st = dash.state
    run_frames(dash, 30, steps=50)        # 15 a.u. at ω = 1: settled
    ro = st.readout
    ana = fourier.transfer("forward", 1.0, 1.0, 0.1, dt=0.01)
    assert ro.forward_phase == pytest.approx(np.angle(ana), abs=2e-3)       # -0.688 rad
    assert ro.error_phase == pytest.approx(-np.angle(ana), abs=2e-3)        # +0.688 rad
    assert ro.forward_phase < 0 < ro.error_phase
    html = dash.phase.pane.object
    assert "LAGS" in html and "LEADS" in html and "-39.4°" in html
    st.tau_r = 3.0                        # τr > τm
    assert ro.forward_analytic_phase > 0 > ro.error_analytic_phase   # analytic at once
    # the error neuron now has τr = 3: its transient (e^{-t/3}) must be gone from the fitted
    # window of two periods before the fit is compared (40 a.u. after the change)
    run_frames(dash, 80, steps=50)
    ana = np.angle(fourier.transfer("forward", 1.0, 1.0, 3.0, dt=0.01))
    assert ana == pytest.approx(math.atan(3) - math.atan(1), abs=5e-3)   # +0.46 rad
    assert ro.forward_phase == pytest.approx(ana, abs=2e-3)
    assert ro.error_phase == pytest.approx(-ana, abs=2e-3)
    assert f'data-phase="{ro.forward_phase:.3f}"' in dash.phase.pane.object


def test_fourier_curves_follow_tau_and_show_measured_points(dash):
    st = dash.state
    run_frames(dash, 30, steps=50)
    g = dash.fourier.curves.data["forward_gain"]
    assert g[-1] == pytest.approx(0.1, rel=0.01)       # τr/τm at high ω
    pts = dash.fourier.measured["forward"].data
    assert pts["w"] == [1.0]
    assert pts["gain"][0] == pytest.approx(0.7121, abs=1e-3)   # spec §6.1
    st.tau_r = 0.5
    assert dash.fourier.curves.data["forward_gain"][-1] == pytest.approx(0.5, rel=0.01)
    assert dash.fourier.markers[0].location == 1.0
    st.omega = 2.0
    assert dash.fourier.markers[0].location == 2.0


def test_fourier_legends_take_the_selected_neurons_colour():
    """The legends draw copies of the curves' glyphs: they follow a neuron switch too."""
    from bokeh.models import Legend

    from gle_lab.views.style import neuron_color
    d = Dashboard(preset="chain")
    d.layout.get_root(Document())

    def legend_colours():
        out = set()
        for fig in (d.fourier.gain_fig, d.fourier.phase_fig):
            for legend in fig.select(type=Legend):
                for item in legend.items:
                    for r in item.renderers:
                        g = r.glyph
                        out.add(g.fill_color if hasattr(g, "fill_color") else g.line_color)
        return out
    for neuron in (0, 1, 0):
        d.state.neuron = neuron
        assert legend_colours() == {neuron_color(neuron)}, (neuron, legend_colours())
    assert neuron_color(0) != neuron_color(1)


def test_ie_mode_has_no_error_lead(dash):
    st = dash.state
    st.error_mode = "ie"
    run_frames(dash, 30, steps=50)
    assert st.readout.error_phase == pytest.approx(0.0, abs=1e-6)
    assert st.readout.forward_phase < -0.5


def test_invalid_tau_is_refused_with_engine_message(dash):
    st = dash.state
    st.tau_r = 0.005                      # below dt = 0.01
    assert st.message_level == "danger"
    assert "tau_r" in st.message and "dt = 0.01" in st.message
    assert st.net.tau_r[0][0] == 0.1 and st.tau_r == 0.1   # network and slider unchanged
    assert dash.alert.visible
    dash.tick(n_steps=10)                 # keeps running
    assert not st.failed


def test_instability_pauses_with_message_and_reset_recovers(dash):
    st = dash.state
    dash.start_for_tests = None
    st.beta = 1000.0
    st.gamma = 100.0                      # γβ = 1e5: explicit Euler unstable
    dash.tick(n_steps=500)
    assert st.failed and not st.playing
    assert "diverged" in st.message and "γ·β = 1e+05 is too strong" in st.message
    assert "Last change: β = 1e+03, γ = 100" in st.message
    assert dash.alert.visible and dash.alert_reset.visible
    assert dash.alert.alert_type == "danger"
    n = len(dash.traces.source.data["t"])
    dash.tick(n_steps=50)                 # a failed session does not advance
    assert len(dash.traces.source.data["t"]) == n
    st.play()
    assert not st.playing                 # refused until reset
    st.param.update(beta=1.0, gamma=0.0)
    dash.reset()
    assert not st.failed and st.sim.t == 0 and not dash.alert_reset.visible
    dash.tick(n_steps=20)
    assert len(dash.traces.source.data["t"]) == 20 // st.decimation


@pytest.mark.parametrize("where", ["view", "simulation"])
def test_a_frame_that_fails_pauses_the_session_says_why_once_and_reset_recovers(
        dash, monkeypatch, caplog, where):
    import logging

    import panel as pn
    st = dash.state
    dash.start()
    try:
        dash.tick(n_steps=20)
        shown = len(dash.traces.source.data["t"])
        assert shown > 0 and dash.callback.running

        def broken(*args, **kwargs):
            raise IndexError("window index 7 is out of range")
        if where == "view":
            monkeypatch.setattr(dash.traces, "push", broken)
        else:
            monkeypatch.setattr(st.sim, "run_steps", broken)
        with caplog.at_level(logging.ERROR, logger="gle_lab"):
            dash.tick(n_steps=20)             # does not raise out of the frame clock
            dash.tick(n_steps=20)             # paused: nothing new, nothing raised or logged
        assert st.failed and not st.playing and not dash.callback.running
        assert "a frame failed (IndexError: window index 7 is out of range)" in st.message
        assert "Press Reset to start again" in st.message
        assert dash.alert.visible and dash.alert_reset.visible
        assert dash.alert.alert_type == "danger"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info[0] is IndexError
        assert len(dash.traces.source.data["t"]) == shown

        monkeypatch.undo()
        dash.reset()
        assert not st.failed and st.sim.t == 0 and not dash.alert_reset.visible
        dash.tick(n_steps=20)
        assert len(dash.traces.source.data["t"]) == 20 // st.decimation
    finally:
        dash.destroy(None)
        pn.state.cache.clear()


def test_learning_rate_divergence_names_parameter(dash):
    st = dash.state
    st.beta = 10.0
    st.learn_W = True
    st.lr = 1.0                           # SGD, η·β = 10 per step: runaway weights
    for _ in range(20):
        dash.tick(n_steps=100)
        if st.failed:
            break
    assert st.failed and not st.playing
    assert "learning rate η = 1 is too large" in st.message
    assert "Last change: learning rate η = 1" in st.message


def test_reset_clears_data_and_keeps_slider_settings(dash):
    st = dash.state
    st.tau_r = 2.0
    run_frames(dash, 5)
    assert len(dash.traces.source.data["t"]) == 250 // st.decimation
    dash.reset()
    assert st.sim.t == 0.0
    assert len(dash.traces.source.data["t"]) == 1 or len(dash.traces.source.data["t"]) == 0
    assert st.net.tau_r[0][0] == 2.0 and st.tau_r == 2.0


def test_preset_change_rebuilds_with_new_shape(dash):
    st = dash.state
    st.preset = "small_network"
    assert st.net.layer_sizes == [1, 2, 2, 1]
    assert "Rebuilt" in st.message
    assert list(dash.controls.neuron.options) == ["n1.0", "n1.1", "n2.0", "n2.1", "n3"]
    assert "r4" in dash.traces.source.data and "tr4" in dash.traces.source.data
    assert st.waveform == "sum_of_sines" and st.omega == pytest.approx(0.49)
    assert st.learn_W and st.sim.learn == {"W": [0]}
    st.neuron = 1                         # retrospective neuron τm = 1, τr = 0.1
    assert (st.tau_m, st.tau_r) == (1.0, 0.1)
    st.tau_r = 0.2
    assert st.net.tau_r[0][1] == 0.2 and st.net.tau_r[0][0] == 1.0
    dash.layout.get_root(Document())


def test_seed_change_keeps_the_figures_and_refreshes_every_value():
    """A new seed keeps the network's shape: no view is rebuilt (a rebuild of every figure
    cost ~0.8 s of server CPU and stalled the process's other sessions), yet the data
    restart and every value drawn from the network follows the new draw."""
    d = Dashboard(preset="chain")
    doc = Document()
    doc.add_root(d.layout.get_root(doc))
    st = d.state
    run_frames(d, 2 * LEARNING_EVERY, steps=20)
    figures = (d.activity.pane.object, d.errors.pane.object, d.learning.figs,
               d.microcircuit.fig, d.fourier.gain_fig)
    n_models, structure = len(doc.models), st.structure
    tau_m_before = [float(a) for a in st.net.tau_m[0].ravel()]
    st.seed = 7
    assert "seed 7" in st.message and st.structure == structure and st.reseeded == 1
    assert (d.activity.pane.object, d.errors.pane.object, d.learning.figs,
            d.microcircuit.fig, d.fourier.gain_fig) == figures
    assert len(doc.models) == n_models
    assert len(d.traces.source.data["t"]) == 0 and len(d.learning.source.data["t"]) == 0
    assert [float(a) for a in st.net.tau_m[0].ravel()] != tau_m_before      # a new draw
    # the teacher's reference lines: at the teacher's values, τ lines where they differ
    vals = st.parameter_values()
    spans = {(kind, i): span for span, kind, i in d.learning.spans}
    for (kind, i), span in spans.items():
        assert span.location == pytest.approx(vals[kind][1][i])
        assert span.visible == (kind == "W" or vals[kind][1][i] != vals[kind][0][i])
    # the microcircuit's edges are as wide as the new weights say
    w = np.abs(np.concatenate([W.ravel() for W in st.net.W]))
    assert np.allclose(d.microcircuit.forward.data["w"], w)
    assert np.allclose(d.microcircuit.forward.data["width"], 1 + 4 * w / w.max())
    # the Fourier curves follow the shown neuron's new τ
    tm, tr = st.neuron_taus()
    g = fourier.gain_phase(fourier.transfer("forward", d.fourier.curves.data["w"][-1], tm, tr))[0]
    assert d.fourier.curves.data["forward_gain"][-1] == pytest.approx(g)
    run_frames(d, 2 * LEARNING_EVERY, steps=20)
    assert len(d.traces.source.data["t"]) > 0 and not st.failed
    # a preset change still rebuilds
    st.preset = "small_network"
    assert st.structure == structure + 1 and d.activity.pane.object is not figures[0]


def test_the_teacher_rates_shown_are_the_teacher_s_of_the_recorded_stream():
    d = Dashboard(preset="chain")
    run_frames(d, 10, steps=50)
    st = d.state
    now = np.concatenate([a[0] for a in st.sim.teacher.r])     # stream 0, every layer
    np.testing.assert_array_equal(st.sim.probes["teacher_r"].last(1)[0], now)
    tr1 = d.traces.source.data["tr1"]
    assert np.all(np.isfinite(tr1)) and np.ptp(tr1) > 0.1


def test_live_controls_take_effect_without_restart(dash):
    st = dash.state
    run_frames(dash, 4)
    t = st.sim.t
    st.omega = 2.5
    st.amplitude = 0.5
    st.weight = 2.0
    st.gamma = 0.5
    st.beta = 2.0
    st.learn_W = True
    st.lr = 0.01
    run_frames(dash, 4)
    assert st.sim.t == pytest.approx(t + 2.0)
    assert st.net.W[0][0, 0] != 2.0        # learning moved it
    assert st.net.gamma == 0.5 and st.net.beta == 2.0
    x = dash.traces.source.data["x"][-(200 // st.decimation):]   # the 2 a.u. since the change
    assert np.max(np.abs(x)) == pytest.approx(0.5, abs=0.01)
    for wf in ("smoothed_square", "constant", "sum_of_sines", "sine"):
        st.waveform = wf
        run_frames(dash, 2)
    assert not st.failed


def test_play_pause_controls_the_callback(dash):
    import panel as pn
    dash.start()
    try:
        assert dash.callback is not None and dash.callback.running
        dash.controls.play.value = False
        assert not dash.state.playing and not dash.callback.running
        dash.controls.play.value = True
        assert dash.state.playing and dash.callback.running
    finally:
        dash.destroy(None)
    assert dash.callback is None and dash.state.sim is None
    pn.state.cache.clear()


def test_single_step_advances_one_frame(dash):
    dash.state.pause()
    dash.single_step()
    assert dash.state.sim.n_steps == round(dash.state.speed * 0.033 / 0.01)


def test_sessions_are_independent():
    a, b = create_app(), create_app()
    a.get_root(Document())
    b.get_root(Document())                # no Bokeh model shared between documents
    da, db = a.dashboard, b.dashboard
    assert da.state is not db.state and da.state.sim is not db.state.sim
    da.state.tau_r = 2.0
    assert db.state.net.tau_r[0][0] == 0.1


def test_notebook_entry_point():
    from gle_lab import dashboard
    layout = dashboard("le_limit")
    assert layout.dashboard.state.preset == "le_limit"
    layout.get_root(Document())


def test_server_cli_parses_options():
    from gle_lab.serve import parse_args
    a = parse_args([])
    assert (a.port, a.address, a.show) == (5006, "localhost", False)
    a = parse_args(["--port", "8080", "--address", "0.0.0.0", "--allow-websocket-origin",
                    "x.org:8080", "--show"])
    assert (a.port, a.address, a.allow_websocket_origin, a.show) == (8080, "0.0.0.0",
                                                                      ["x.org:8080"], True)


def test_app_does_not_leak_into_gle_core():
    import ast
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2] / "gle_core"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for n in names:
                assert n.split(".")[0] not in ("panel", "bokeh", "holoviews", "param", "gle_lab"), \
                    f"{path.name} imports {n}"


def test_phase_fits_keep_their_cadence_when_lambda_refreshes_more_often():
    """The phase fit (cards, Fourier dots, clock) runs on its own frames (3 Hz); a frame that
    refreshes λ only updates λ's dots in the Fourier view."""
    from gle_lab.main import MEASURE_EVERY, MEASURE_PHASE
    d = Dashboard(preset="phase_inversion")
    assert d.errors is not None and d.fourier is not None
    run_frames(d, 5, steps=13)
    calls = {"measure": [], "adjoint": [], "fourier": []}
    for name, obj, attr in (("measure", d.state, "measure"),
                            ("adjoint", d.errors, "update_adjoint"),
                            ("fourier", d.fourier, "update")):
        def counted(*a, _f=getattr(obj, attr), _name=name, **k):
            calls[_name].append(d.frame)
            return _f(*a, **k)
        setattr(obj, attr, counted)
    first = d.frame + 1
    run_frames(d, 120, steps=13)
    frames = range(first, d.frame + 1)
    fits = [f for f in frames if f % MEASURE_EVERY == MEASURE_PHASE]
    assert calls["measure"] == fits
    lam = calls["adjoint"]
    assert len(lam) >= 120 // 45 and set(lam) - set(fits)       # λ frames of their own
    assert calls["fourier"] == sorted(set(fits) | set(lam))       # the dots follow both
