"""The smaller bugs of issue #10, each pinned (in-process).

("-0.0°" is covered in test_readouts.py.)
"""
from __future__ import annotations

from bokeh.models import PrintfTickFormatter

from gle_lab.main import MEASURE_EVERY, MEASURE_PHASE, Dashboard
from gle_lab.presets import PRESETS
from gle_lab.state import LabState, preset_seed


def test_error_axis_ticks_are_plain_numbers():
    """Small errors were labelled "6.000e−3"."""
    d = Dashboard(preset="chain")
    fig = d.errors.pane.object
    fmt = fig.yaxis[0].formatter
    assert isinstance(fmt, PrintfTickFormatter)
    assert [fmt.format % v for v in (0.006, -0.0025, 0.5, 12.0)] == \
        ["0.006", "-0.0025", "0.5", "12"]


def test_clock_is_exact_once_paused():
    """The clock followed at 3 Hz only: after a pause it could stay a frame or more behind."""
    d = Dashboard(preset="phase_inversion")
    st = d.state
    frames = 0
    while True:                      # stop on a frame that does not refresh the clock
        d.tick(n_steps=37)
        frames += 1
        if d.frame % MEASURE_EVERY != MEASURE_PHASE and frames > MEASURE_EVERY:
            break
    assert d.controls.clock_text.text != f"t = {st.sim.t:.1f} a.u."        # it lags here
    st.playing = False
    assert d.controls.clock_text.text == f"t = {st.sim.t:.1f} a.u."


def test_chain_preset_opens_away_from_the_le_limit():
    """Seed 0 draws both student τm below the floor (0.1 = τr): the Fig. 4 preset opened
    saying "IN PHASE / LE limit". It opens with its own seed; the protocol is unchanged."""
    cfg = PRESETS["chain"]
    assert cfg["network"]["init"]["tau_m"] == {"uniform": [0.0, 1.0]}    # τm ~ U(0, 1)
    assert cfg["tau_floor"] == 0.1
    d = Dashboard(preset="chain")
    st = d.state
    assert st.seed == preset_seed("chain") != 0
    taus = [float(a[0]) for a in st.net.tau_m]
    assert all(t > 0.1 for t in taus), taus
    d.tick(n_steps=10)
    d.phase.update()
    html = d.phase.pane.object
    assert "LE limit" not in html and "rate <b>lags</b>" in html
    assert st.readout.card("forward")["analytic_word"] == "LAGS"
    # an explicit seed is kept (links, the regression data): seed 0 is still the floor draw
    s0 = LabState(preset="chain", seed=0)
    assert s0.seed == 0 and [float(a[0]) for a in s0.net.tau_m] == [0.1, 0.1]
    d.state.seed = 0
    d.state.preset = "le_limit"
    d.state.preset = "chain"
    assert d.state.seed == 0                        # the user's choice survives a preset switch
