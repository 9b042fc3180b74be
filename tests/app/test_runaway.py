"""Runaway learning and recovery (issue #10, item 4), in-process.

``?preset=chain&lr=1&speed=50`` for 30 s of wall time = 1500 a.u. of simulated learning: the
weights and τm run far beyond their sliders. No exception may escape (the server logged ~170
tracebacks from syncing learned values into the sliders), the controls show the true values or
list them in ``out_of_range``. A divergence names the control changed last (``fail_cause``),
and ``reset_and_undo()`` restores its previous value; the axes refit after the reset.
"""
from __future__ import annotations

import logging
import math

import numpy as np
from bokeh.document import Document
from panel.io.location import Location

from gle_lab.main import Dashboard

from .sessions import served

#: simulated a.u. of 30 s at speed 50 a.u./s
RUNAWAY_AU = 30 * 50



def test_runaway_learning_never_raises_and_shows_true_values(caplog):
    caplog.set_level(logging.WARNING)
    d, _ = served("?preset=chain&lr=1&speed=50")
    st = d.state
    assert st.preset == "chain" and st.lr == 1.0 and st.speed == 50.0
    steps = int(round(RUNAWAY_AU / st.net.dt))
    done = 0
    while done < steps and not st.failed:
        d.tick(n_steps=2000)
        done += 2000
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    d.render_frame(force=True)
    st.sync_learned()
    tm_true = float(st.net.tau_m[1][0])
    w_true = float(st.net.W[0][0, 0])
    # learning ran far past the controls (the reproduction of the bug report)
    lo, hi = st.control_range("tau_m")
    wlo, whi = st.control_range("weight")
    assert tm_true > hi or abs(w_true) > whi, (tm_true, w_true)
    for name, true in (("tau_m", tm_true), ("weight", w_true)):
        clo, chi = st.control_range(name)
        if clo <= true <= chi:
            assert math.isclose(getattr(st, name), true, rel_tol=1e-12), name
            assert name not in st.out_of_range
        else:                       # the control shows its end, the true value is listed
            assert st.out_of_range[name] == true, name
            plo, phi = st.param[name].bounds
            assert getattr(st, name) == min(max(true, plo), phi)
    # the slider follows the state (no stale 5.98 while τm is 69.5)
    slider = d.controls.tau_m
    want = min(max(math.log10(st.tau_m), slider.start), slider.end)
    assert math.isclose(10 ** slider.value, 10 ** want, rel_tol=5e-3)   # its 3 digits
    # the user was told, once, in a toast
    assert st.notice_level == "warning" and "out of its control's range" in st.notice


def test_divergence_names_cause_and_reset_and_undo_restores_it():
    d = Dashboard(preset="phase_inversion")
    d.layout.get_root(Document())
    st = d.state
    st.gamma = 0.5
    for _ in range(5):
        d.tick(n_steps=100)
    assert not st.failed
    st.gamma = 100.0                               # explicit Euler: unstable loop
    for _ in range(200):
        d.tick(n_steps=100)
        if st.failed:
            break
    assert st.failed and not st.playing
    assert st.fail_cause == "gamma" and st.undo_value == 0.5
    assert "γ = 0.5" in st.message                 # the message offers the undo
    blown = d.traces.y_ranges["errors"].range.end
    assert blown > 1e3                              # the axis followed the divergence
    assert st.reset_and_undo() == "gamma"
    assert st.gamma == 0.5 and st.net.gamma == 0.5
    assert not st.failed and st.fail_cause == "" and st.undo_value is None
    assert "γ is back to 0.5" in st.message
    assert d.traces.y_ranges["errors"].range.end <= 1.0      # refit before any new data
    st.playing = True
    for _ in range(20):
        d.tick(n_steps=100)
    assert not st.failed
    r = d.traces.y_ranges["errors"].range
    e = np.asarray(d.traces.source.data["e0"])
    assert len(e) and r.start <= e.min() and e.max() <= r.end < 10


def test_plain_reset_keeps_the_change_and_undo_without_change_is_harmless():
    d = Dashboard(preset="phase_inversion")
    st = d.state
    st.gamma = 100.0
    while not st.failed:
        d.tick(n_steps=200)
    assert st.fail_cause == "gamma" and st.undo_value == 0.0
    d.reset()                                       # "Reset simulation": γ stays
    assert st.gamma == 100.0 and not st.failed and st.fail_cause == ""
    e = Dashboard(preset="le_limit").state
    assert e.reset_and_undo() == "" and e.sim.t == 0.0
