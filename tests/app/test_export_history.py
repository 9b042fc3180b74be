"""Data a researcher can use (issue #10, item 8), in-process.

The CSV export holds the recorded history since t = 0 (bounded: a decimating buffer), not only
the visible window; a saved session stores the learned parameters and loading it resumes from
them; the GLE / exact-gradient alignment readout is ≈ 1 in the LE limit.
"""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from panel.io.location import Location

from gle_lab.history import History, gradient_alignment

from .sessions import served



def parse(text):
    comments = [ln for ln in text.splitlines() if ln.startswith("#")]
    rows = list(csv.reader(ln for ln in text.splitlines() if not ln.startswith("#")))
    header = rows[0]
    body = np.array([[float(x) if x else np.nan for x in r] for r in rows[1:]])
    return comments, header, body


def test_history_is_bounded_and_covers_the_whole_run():
    h = History(["t", "x"], rows=1000)
    steps = np.arange(100_000)
    for chunk in np.array_split(steps, 700):             # frames of ~143 steps
        h.extend(np.stack([chunk * 0.01, np.sin(chunk * 0.01)], axis=1))
    rows = h.rows()
    assert 500 <= len(rows) <= 1000 and h.data.shape == (1000, 2)
    assert h.every == 128                                 # 100000 / 1000 → next power of 2
    assert rows[0, 0] == 0.0 and rows[-1, 0] == pytest.approx(0.01 * (99_999 // 128 * 128))
    assert np.allclose(np.diff(rows[:, 0]), 0.01 * h.every)    # evenly spaced, no gaps
    assert np.allclose(rows[:, 1], np.sin(rows[:, 0]))


def test_csv_of_a_chain_run_with_learning_holds_the_history():
    d, _ = served("?preset=chain&seed=1")
    st = d.state
    for _ in range(60):                                   # 120 a.u.: learning from t = 50
        d.tick(n_steps=200)
    text = d.export._history_file().read()
    assert d.export.history.filename == "gle-lab-chain-seed1-history.csv"
    comments, header, body = parse(text)
    for col in ("t", "input", "r_n1", "r_n2", "r_n2_teacher", "e_n2", "eps_n2", "loss",
                "W_input_to_n1", "W_n1_to_n2", "b_n1", "tau_m_n1", "tau_m_n2", "tau_r_n2"):
        assert col in header, col
    t = body[:, header.index("t")]
    assert t[0] == 0.0 and t[-1] == pytest.approx(st.sim.t - 2 * st.net.dt, abs=1e-9)
    assert t[-1] - t[0] > 5 * st.window                  # far more than the visible 20 a.u.
    assert len(body) == 12000 // 2                        # 12000 steps: one row per 2 steps
    assert any("sampling: one row per 2 Euler step(s)" in c for c in comments)
    assert any(c.startswith("# url: http") and "preset=chain" in c for c in comments)
    W = body[:, header.index("W_n1_to_n2")]
    tm = body[:, header.index("tau_m_n2")]
    loss = body[:, header.index("loss")]
    before = t < 50
    assert np.ptp(W[before]) == 0 and np.ptp(W[~before]) > 0      # learning from t = 50
    assert np.ptp(tm[~before]) > 0
    assert np.all(np.isfinite(loss)) and np.all(loss >= 0)
    # the last row is the sample two steps back (one row per 2 steps): the recorded values
    assert W[-1] == float(st.sim.probes["W"].last(2)[0, 1])
    assert tm[-1] == float(st.sim.probes["tau_m"].last(2)[0, 1])
    # the visible-window CSV is still there (what the plots show)
    _, wheader, wbody = parse(d.export._csv_file().read())
    assert len(wbody) < len(body) and "r_n2" in wheader


def test_saved_session_resumes_from_the_learned_parameters():
    a, _ = served("?preset=chain&seed=2&lr=0.01")
    for _ in range(40):
        a.tick(n_steps=250)                               # 100 a.u.: 50 a.u. of learning
    net = a.state.net
    learned = {k: [np.array(p, dtype=float) for p in net.parameters(k)]
               for k in ("W", "tau_m", "b")}
    text = a.sharing.session_json()
    data = json.loads(text)
    assert data["learned"]["W"] == [p.tolist() for p in learned["W"]]
    b, _ = served("?preset=phase_inversion")
    assert b.sharing.load_session(text) == []
    st = b.state
    assert st.preset == "chain" and st.seed == 2 and st.sim.t == 0.0
    for k, arrays in learned.items():
        for got, want in zip(st.net.parameters(k), arrays):
            assert np.array_equal(got, want), k
    assert "learned until t = 100" in st.message
    assert st.tau_m == float(learned["tau_m"][st.neuron][0])       # the sliders show them
    b.reset()                                                      # Reset keeps them
    assert np.array_equal(st.net.W[1], learned["W"][1])


def test_alignment_is_near_one_in_the_le_limit():
    d, _ = served("?preset=chain&tau_m=0.1,0.1&learn_tau_m=false")   # τm = τr = 0.1
    st = d.state
    assert [float(a[0]) for a in st.net.tau_m] == [0.1, 0.1] and st.learn_W
    assert math.isnan(st.alignment)
    for _ in range(50):
        d.tick(n_steps=100)
        st.finish_alignment()           # computed off the frame: wait for it here
        if np.isfinite(st.alignment):
            break
    assert st.alignment > 0.999
    d.phase.update()
    assert "cos = " in d.phase.pane.object and "gle-alignment" in d.phase.pane.object
    st.learn_W = False                                    # nothing learns: nothing measured
    d.tick(n_steps=10)
    assert math.isnan(st.alignment)


def test_alignment_measures_the_window_it_claims():
    """Away from the LE limit the GLE update still points along the exact gradient, less
    exactly: the function itself, on a chain with τm = 1, 2 and τr = 0.1."""
    d, _ = served("?preset=chain&tau_m=1,2")
    st = d.state
    for _ in range(10):
        d.tick(n_steps=100)
    state = st.net.get_state()
    net0 = st.net.copy()
    st.sim.learn = {}
    K = 300
    d.tick(n_steps=K)
    p = st.sim.probes
    cos = gradient_alignment(net0, state, p["input"].last(K), p["target"].last(K))
    le, _ = served("?preset=chain&tau_m=0.1,0.1")
    for _ in range(10):
        le.tick(n_steps=100)
    s2, n2 = le.state.net.get_state(), le.state.net.copy()
    le.state.sim.learn = {}
    le.tick(n_steps=K)
    p2 = le.state.sim.probes
    cos_le = gradient_alignment(n2, s2, p2["input"].last(K), p2["target"].last(K))
    assert 0.5 < cos < cos_le and cos_le > 0.999
