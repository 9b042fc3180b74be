"""Identical sessions share one run until one of them changes something (gle_lab.shared_runs)."""
import time

import numpy as np
import pytest

from gle_lab import shared_runs
from gle_lab.state import LabState


def members(preset="phase_inversion", n=2, **values):
    states = []
    for _ in range(n):
        st = LabState(preset)
        if values:
            st.param.update(**values)
        st.share_runs = True
        states.append(st)
    return states


def play(states, frames, gap=0.012):
    """Every member's frame in turn, ``frames`` times, ``gap`` s of wall time apart."""
    for _ in range(frames):
        for st in states:
            st.advance(wall_dt=gap)
        time.sleep(gap)


@pytest.fixture(autouse=True)
def fresh_registry():
    shared_runs._runs.clear()
    yield
    shared_runs._runs.clear()


def test_identical_sessions_run_one_simulation_and_each_streams_all_of_it():
    states = members(n=4)
    play(states, 12)
    run = states[0].shared_run
    assert run is not None and all(st.shared_run is run for st in states)
    assert all(st.sim is run.sim and st.history is run.history for st in states)
    assert len(shared_runs.live_runs()) == 1
    # the run follows the wall clock once, not once per member: 4 members' frames did not
    # simulate 4× the time (speed 4 a.u./s)
    elapsed = time.monotonic() - run.born
    assert 0 < run.sim.t <= states[0].speed * elapsed + 1e-9
    frames = [st.collect() for st in states]
    for f in frames[1:]:
        for key in ("t", "r", "e"):
            np.testing.assert_array_equal(f[key], frames[0][key])
    dt = run.sim.network.dt
    assert 0 < run.sim.t - frames[0]["t"][-1] <= states[0].decimation * dt + 1e-9


def test_a_run_advances_once_per_round_of_frames_and_every_frame_finds_new_samples(
        monkeypatch):
    """A member advances the run only if no other member did since its own last frame:
    one simulation call per frame period for the whole class (not one per member's frame),
    and still new samples in every member's frame."""
    monkeypatch.setattr(shared_runs, "ADVANCE_EVERY", 0.0)
    states = members(n=4)
    for st in states:                       # the first round: everyone joins
        st.advance(wall_dt=0.012)
        st.collect()
    run = states[0].shared_run
    assert all(st.shared_run is run for st in states)
    before, t_before = run.advances, run.sim.t
    for _ in range(10):
        time.sleep(0.012)
        for st in states:
            st.advance(wall_dt=0.012)
            frame = st.collect()
            assert frame is not None and frame["n_new"] > 0
    assert run.advances - before == 10
    assert run.sim.t > t_before


def test_members_share_one_lambda_and_its_fit_and_pace_it_by_what_computing_it_cost(
        monkeypatch):
    import gle_lab.adjoint_overlay as overlay
    a, b = members(n=2, speed=40.0)
    play([a, b], 80)
    oa, ob = overlay.AdjointOverlay(a), overlay.AdjointOverlay(b)
    ra = oa.update()
    assert ob.update() is ra and ra["cost"] > 0
    assert len(ra["fits"]) == 1 and oa.fits
    assert ob.fits[round(b.omega, 6)] is oa.fits[round(a.omega, 6)]   # fitted once
    # b reused λ, yet refreshes at least as rarely as computing it would make a session of
    # its own (by its reuse alone it would refresh at the fastest rate, every 6th frame)
    monkeypatch.setattr(overlay, "ADJOINT_BUDGET_MS", ra["cost"] * 1e3 / 20)
    assert ob.update() is ra
    assert ob.every >= 20


def test_a_change_leaves_with_a_copy_that_runs_on_exactly_and_alone():
    a, b = members("chain")
    play([a, b], 8)
    k = a.sim.n_steps
    tau_r_run = a.net.tau_r[0].copy()
    b.tau_r = 0.7                                 # b leaves before the change is applied
    assert b.shared_run is None and a.shared_run is not None and b.sim is not a.sim
    np.testing.assert_array_equal(a.net.tau_r[0], tau_r_run)   # the run did not change
    b.advance(n_steps=300)
    # a session that never shared, with the same change at the same step: the same numbers
    solo = LabState("chain")
    solo.advance(n_steps=k)
    solo.tau_r = 0.7
    solo.advance(n_steps=300)
    for name in ("r", "error", "W", "tau_m"):
        np.testing.assert_array_equal(b.sim.trace(name), solo.sim.trace(name), err_msg=name)
    assert b.sim.t == solo.sim.t


@pytest.mark.parametrize("change", ["pause", "reset", "step", "neuron", "speed", "preset"])
def test_every_way_of_changing_the_run_leaves_it(change):
    a, b = members("chain")
    play([a, b], 4)
    run, t = a.shared_run, a.sim.t
    if change == "pause":
        b.pause()
    elif change == "reset":
        b.reset()
    elif change == "step":
        b.advance(n_steps=10)
    elif change == "neuron":
        b.neuron = 0 if b.neuron else 1
    elif change == "speed":
        b.speed = 8.0
    else:
        b.preset = "phase_inversion"
    assert b.shared_run is None and a.shared_run is run and list(run.members) == [a]
    assert a.sim is run.sim and b.sim is not run.sim and run.sim.t == t
    if change == "reset":
        assert b.sim.t == 0.0
    elif change == "step":
        assert b.sim.t == pytest.approx(t + 10 * b.net.dt)


def test_sessions_that_differ_or_arrive_late_do_not_share(monkeypatch):
    a, = members(n=1)
    b, = members(n=1, tau_r=0.5)                      # a link's value: another simulation
    play([a, b], 2)
    assert a.shared_run is not b.shared_run and a.sim is not b.sim
    monkeypatch.setattr(shared_runs, "JOIN_WITHIN", 0.0)
    c, = members(n=1)
    play([c], 2)
    assert c.shared_run is not a.shared_run      # a's run is too old to take members
    d, = members(n=1)
    d.share_runs = False                         # not served: never shares
    play([d], 2)
    assert d.shared_run is None


def test_a_late_member_streams_at_most_the_window_at_its_first_frame():
    a, = members(n=1, window=5.0)
    play([a], 40, gap=0.02)                       # > 5 a.u. at 4 a.u./s
    a.collect()
    b, = members(n=1, window=5.0)
    b.advance(wall_dt=0.02)
    assert b.shared_run is a.shared_run
    first = b.collect()
    assert first["t"][-1] - first["t"][0] <= 5.0 + 1e-9
    assert len(first["t"]) <= b.rollover


def test_a_divergence_pauses_every_member_with_its_own_copy_to_reset():
    states = members("phase_inversion", n=3, gamma=100.0, speed=200.0)  # unstable Euler loop
    for _ in range(500):
        play(states, 1)
        if all(st.failed for st in states):
            break
    assert all(st.failed and not st.playing for st in states)
    assert all("diverged" in st.message for st in states)
    assert all(st.shared_run is None for st in states)
    assert len({id(st.sim) for st in states}) == 3
    states[0].gamma = 0.0
    states[0].reset()
    states[0].play()
    states[0].advance(n_steps=50)
    assert not states[0].failed and states[0].sim.t == pytest.approx(50 * states[0].net.dt)
    assert states[1].failed and states[1].sim.t > 0


def test_members_share_one_phase_fit_and_a_leaver_keeps_its_own():
    a, b = members(n=2)
    play([a, b], 30)
    ro = a.measure()
    assert b.measure() is ro and b.readout is ro
    b.tau_r = 2.0
    assert b.readout is not ro
    assert b.measure() is b.readout and a.readout is ro


def test_a_closed_member_is_forgotten_and_an_empty_run_too():
    a, b = members(n=2)
    play([a, b], 2)
    run = a.shared_run
    b.release()
    assert list(run.members) == [a] and b.sim is None
    a.release()
    assert shared_runs.live_runs() == []


def test_the_switch_turns_sharing_off(monkeypatch):
    from gle_lab.serve import parse_args
    assert parse_args(["--no-shared-runs"]).no_shared_runs and not parse_args([]).no_shared_runs
    monkeypatch.setenv("GLE_LAB_NO_SHARED_RUNS", "1")      # what gle-lab --no-shared-runs sets
    a, b = members(n=2)
    play([a, b], 3)
    assert a.shared_run is None and b.shared_run is None and a.sim is not b.sim
    assert a.sim.t > 0 and b.sim.t > 0


@pytest.mark.load
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "no-shared-runs"])
def test_served_identical_visitors_share_a_run_unless_switched_off(shared):
    """Under gle-lab, four visitors of one link share one run (each joining says so in the
    log) and all stream; with --no-shared-runs none joins and all stream too."""
    from gle_lab.loadclient import GleLabServer, run_load

    from .test_capacity import run_async
    srv = GleLabServer(*([] if shared else ["--no-shared-runs"]))
    try:
        res = run_async(run_load, srv.url, 4, 2.0, 1.0)
        assert res.ready == 4 and res.errors == 0 and min(res.fps) > 1
        if shared:
            assert srv.wait_for_log(r"session joined a shared run \(4 sessions on it\)")
        else:       # every session streamed for 2 s: a join would have been logged already
            assert not any("joined a shared run" in line for line in srv.log)
    finally:
        srv.stop()


def test_a_refused_change_still_leaves_with_a_copy_and_never_touches_the_run():
    """A teacher's lock refuses a new preset: the session stays on its experiment, on its own
    copy, so its next frames cannot advance the run under the other members."""
    a, b = members("chain", locked=["experiment"])
    play([a, b], 4)
    run = a.shared_run
    b.preset = "phase_inversion"
    assert b.preset == "chain" and "locked" in b.notice
    assert b.shared_run is None and b.sim is not run.sim
    t = run.sim.t
    b.advance(n_steps=200)
    assert run.sim.t == t and b.sim.t == pytest.approx(t + 200 * b.net.dt)


def test_a_joining_dashboard_shows_the_runs_time_and_phase_at_its_first_frame():
    from bokeh.document import Document

    from gle_lab.main import Dashboard
    first = Dashboard()
    first.layout.get_root(Document())
    first.state.share_runs = True
    deadline = time.monotonic() + 20
    while first.state.readout.verdicts.get("forward") != "measured":
        first.tick()
        time.sleep(0.02)
        assert time.monotonic() < deadline, first.state.readout.status
    late = Dashboard()
    late.layout.get_root(Document())
    late.state.share_runs = True
    late.tick()
    assert late.state.shared_run is first.state.shared_run and late.frame == 1
    t = float(late.controls.clock_text.text.split("=")[1].split()[0])
    assert t > 2.0 and t == pytest.approx(late.state.sim.t, abs=0.06)
    assert late.state.readout.verdicts["forward"] == "measured"
    assert "measured" in late.phase.pane.object and "waiting" not in late.phase.pane.object


def test_after_a_reset_or_a_new_preset_a_session_runs_its_own_from_t_0():
    """Only a session's very first frame may join: Reset (or a new preset) asks for a run of
    one's own from t = 0, never for the class's run in progress."""
    a, b = members("chain")
    play([a, b], 5)
    b.reset()
    b.play()
    c, = members("chain", n=1)
    c.reset()                                    # reset before its first frame
    d, = members("chain", n=1)
    d.preset = "phase_inversion"
    d.preset = "chain"
    play([a, b, c, d], 5)
    run = a.shared_run
    assert run is not None and list(run.members) == [a]
    for st in (b, c, d):
        assert st.shared_run is None and st.sim is not run.sim
        assert st.sim.probes["t"].last()[0] == 0.0 and st.sim.t < run.sim.t


def test_pausing_streams_what_another_member_simulated_so_the_traces_end_at_the_clock():
    """Pausing leaves the run with a copy at the run's time; samples another member simulated
    after this session's last frame are streamed then, and one Step adds exactly one frame
    from there (the full browser suite caught a Step that seemed to add 0.18 a.u.)."""
    from bokeh.document import Document

    from gle_lab.main import Dashboard
    a, b = Dashboard(), Dashboard()
    for d in (a, b):
        d.layout.get_root(Document())
        d.state.share_runs = True
    for _ in range(5):
        a.tick(), b.tick()
        time.sleep(0.02)
    assert a.state.shared_run is b.state.shared_run is not None
    time.sleep(0.05)
    b.tick()                                     # b advances the run past a's last frame
    seen = a.traces.source.data["t"][-1]
    assert a.state.sim.t - seen > 0.05
    a.state.pause()
    st = a.state
    dt, stride = st.net.dt, st.decimation * st.net.dt
    end = a.traces.source.data["t"][-1]
    assert st.shared_run is None and 0 <= st.sim.t - end < stride + 1e-9
    clock = float(a.controls.clock_text.text.split("=")[1].split()[0])
    assert clock == pytest.approx(st.sim.t, abs=0.05)     # shown to 0.1
    t_before = st.sim.t
    a.tick(n_steps=13)
    assert st.sim.t == pytest.approx(t_before + 13 * dt)
