"""Sharing in-process: URL sync (Panel Location), garbage values, teacher flags, session
save/load round trip, CSV export, figure format, microcircuit colouring."""
from __future__ import annotations

import csv
import json
from urllib.parse import parse_qsl

import numpy as np
import pytest
from bokeh.document import Document
from panel.io.location import Location

from gle_lab.export import dashboard_figures
from gle_lab.main import LEARNING_EVERY, Dashboard
from gle_lab.sharing import KEYS, format_list
from gle_lab.state import preset_seed

from .sessions import served



def run(d, frames=8, steps=25):
    for _ in range(frames):
        d.tick(n_steps=steps)


def test_url_sets_preset_seed_per_neuron_values_and_scalars():
    d, loc = served("?preset=chain&seed=3&tau_m=0.5,2&tau_r=0.1,0.3&W=0.8,1.5&error_mode=ie"
                    "&omega=2&gamma=0.5&speed=7&neuron=0")
    st = d.state
    assert st.preset == "chain" and st.seed == 3
    assert [float(a[0]) for a in st.net.tau_m] == [0.5, 2.0]
    assert [float(a[0]) for a in st.net.tau_r] == [0.1, 0.3]
    assert [float(a[0, 0]) for a in st.net.W] == [0.8, 1.5]
    assert st.error_mode == "ie" and st.net.error_mode == "ie"
    assert st.omega == 2.0 and st.gamma == 0.5 and st.net.gamma == 0.5 and st.speed == 7.0
    assert st.neuron == 0 and st.tau_m == 0.5
    assert d.sharing.problems == [] and st.message_level != "warning"
    # the whole state is written back into the address bar
    q = dict(parse_qsl(loc.search[1:]))
    # (hide/lock: no teacher flags; present: unset = the layout follows the screen width)
    assert set(KEYS) - {"hide", "lock", "present"} <= set(q)
    assert q["tau_m"] == "0.5,2" and q["W"] == "0.8,1.5" and q["preset"] == "chain"


def test_same_link_same_traces():
    query = "?preset=chain&seed=4&tau_m=0.7,1.3&W=0.9,1.1&gamma=0.8"
    a, _ = served(query)
    b, _ = served(query)
    c, _ = served(query.replace("seed=4", "seed=5"))
    for d in (a, b, c):
        run(d, 10, 40)
    ra, rb, rc = (np.asarray(d.traces.source.data["r1"]) for d in (a, b, c))
    assert len(ra) == 400 // a.state.decimation
    assert np.array_equal(ra, rb)                      # bit-identical
    assert not np.allclose(ra, rc)                     # another seed: other input shifts


def test_controls_write_back_to_the_url():
    d, loc = served("?preset=phase_inversion")
    d.state.tau_r = 2.0
    d.state.omega = 3.0
    q = dict(parse_qsl(loc.search[1:]))
    assert q["tau_r"] == "2" and float(q["omega"]) == 3.0
    assert d.sharing.query_string() in d.sharing.link.value or \
        d.sharing.link.value == d.sharing.query_string()


def test_a_late_report_of_the_typed_address_is_replaced_by_the_applied_state():
    """The browser reports its own address (the link as typed) once its page is built; when
    that report reaches the server after the applied state was pushed, the address bar must
    still end up showing the applied state (every key), not the typed link."""
    typed = "?preset=chain&seed=3&tau_m=0.5%2C2"
    d, loc = served(typed)

    class SessionDoc:                      # a served document runs next-tick callbacks later
        callbacks = []

        def add_next_tick_callback(self, cb):
            self.callbacks.append(cb)

    doc = d.sharing._session_doc = SessionDoc()
    applied = d.sharing.query_string()
    assert loc.search == applied and "views" in applied
    loc.search = typed                     # the browser's late report
    assert len(doc.callbacks) == 1
    doc.callbacks.pop()()
    assert loc.search == applied
    assert dict(parse_qsl(loc.search[1:]))["tau_m"] == "0.5,2"
    # Panel writes the address in its own encoding on changes: not answered (no ping-pong)
    loc.search = applied.replace(",", "%2C")
    loc.search = typed                     # and the browser reports its address only once
    assert doc.callbacks == []


def test_garbage_values_fall_back_with_notice():
    d, loc = served("?preset=nonsense&seed=-4&tau_m=abc&omega=1e9&gamma=x&error_mode=zz"
                    "&learn_W=maybe&views=activity,bogus&hide=wings&foo=1&neuron=7")
    st = d.state
    names = [k for k, _ in d.sharing.problems]
    for key in ("preset", "seed", "tau_m", "omega", "gamma", "error_mode", "learn_W", "views",
                "hide", "foo", "neuron"):
        assert key in names, (key, names)
        assert key in st.message
    assert st.message_level == "warning"
    assert st.preset == "phase_inversion" and st.seed == 0          # defaults
    assert st.omega == 1.0 and st.gamma == 0.0 and st.error_mode == "gle"
    assert float(st.net.tau_m[0][0]) == 1.0 and st.learn_W is False
    q = dict(parse_qsl(loc.search[1:]))
    assert "foo" not in q and q["omega"] == "1.0" and q["tau_m"] == "1"
    run(d, 3)                                                        # still runs
    assert np.all(np.isfinite(d.traces.source.data["r0"]))


def test_wrong_list_length_and_out_of_range_list():
    d, _ = served("?preset=chain&tau_m=1,2,3&W=0.5,99")
    probs = dict(d.sharing.problems)
    assert "3 value(s); this preset needs 2" in probs["tau_m"]
    assert "out of range" in probs["W"]
    assert d.state.seed == preset_seed("chain") and d.state.preset == "chain"


def test_teacher_flags_hide_and_lock():
    d, loc = served("?hide=learning,input,seed&lock=tau_m,omega&views=activity,errors")
    c = d.controls
    assert c.cards["learning"].visible is False and c.cards["input"].visible is False
    assert c.cards["neuron"].visible is True and c.cards["experiment"].visible is True
    assert c.seed.visible is False
    assert c.tau_m.disabled is True and c.tau_r.disabled is False
    assert c.omega.disabled is True
    assert d.activity.pane.visible and d.errors.pane.visible
    assert not d.fourier.layout.visible and not d.learning.layout.visible
    assert not d.phase.pane.visible and not d.lesson.pane.visible
    assert not d.microcircuit.pane.visible
    q = dict(parse_qsl(loc.search[1:]))
    assert q["hide"] == "learning,input,seed" and q["lock"] == "tau_m,omega"
    assert q["views"] == "activity,errors"
    # the views widget follows and drives
    assert d.sharing.views_widget.value == ["activity", "errors"]
    d.sharing.views_widget.value = ["activity", "errors", "fourier"]
    assert d.fourier.layout.visible
    assert dict(parse_qsl(loc.search[1:]))["views"] == "activity,errors,fourier"


def test_session_save_load_round_trip():
    a, _ = served("?preset=small_network&seed=2&tau_r=1,0.3,1,0.1,1&W=0.3,-0.4,0.5,0,0,1,0.5,"
                  "0.8&waveform=sine&omega=0.7&lr=0.0005&views=activity,errors,microcircuit"
                  "&lock=tau_m")
    run(a, 5)
    text = a.sharing.session_json()
    data = json.loads(text)
    assert data["format"] == "gle-lab-session" and data["state"]["seed"] == 2
    b = Dashboard()
    b.layout.get_root(Document())
    run(b, 3)
    assert b.sharing.load_session(text.encode()) == []
    assert b.state.message_level == "success"
    # the settings come back; the weights are those learned until the save (item 8)
    learned_W = [float(x) for W in a.state.net.W for x in W.ravel()]
    assert b.sharing.values() == {**a.sharing.values(), "W": format_list(learned_W)}
    assert b.state.sim.t == 0.0
    assert a.sharing.load_session(text) == []          # the same file: the same run
    run(a, 8, 30)
    run(b, 8, 30)
    for col in ("r0", "r4", "e1", "eps2"):
        assert np.array_equal(a.traces.source.data[col], b.traces.source.data[col]), col
    assert b.controls.tau_m.disabled and not b.fourier.layout.visible


def test_load_rejects_garbage_file():
    d, _ = served()
    probs = d.sharing.load_session(b"{not json")
    assert probs and d.state.message_level == "danger"
    probs = d.sharing.load_session(json.dumps({"format": "other"}))
    assert probs and "not a GLE Lab session" in d.state.message
    assert d.state.preset == "phase_inversion"


def test_load_through_file_input_widget():
    a, _ = served("?preset=le_limit&tau_m=2&tau_r=2&seed=9")
    b, _ = served()
    b.sharing.load.value = a.sharing.session_json().encode()
    assert b.state.preset == "le_limit" and b.state.seed == 9
    assert b.state.tau_m == 2.0 and b.state.tau_r == 2.0


def test_csv_download_parses_with_advertised_columns():
    d, _ = served("?preset=chain&seed=1")
    run(d, 10, 37)
    text = d.export._csv_file().read()
    assert d.export.csv.filename == "gle-lab-chain-seed1-traces.csv"
    comments = [l for l in text.splitlines() if l.startswith("#")]
    assert "# preset: chain" in comments and "# seed: 1" in comments
    assert any(l.startswith("# tau_m: ") for l in comments)
    assert any(l.startswith("# link: ?preset=chain") for l in comments)
    rows = list(csv.reader(l for l in text.splitlines() if not l.startswith("#")))
    header, body = rows[0], rows[1:]
    want = ["t", "input", "r_n1", "r_n1_teacher", "e_n1", "eps_n1",
            "r_n2", "r_n2_teacher", "e_n2", "eps_n2"]
    assert header[:len(want)] == want
    src = d.traces.source.data
    assert len(body) == len(src["t"]) == 370 // d.state.decimation
    arr = np.array([[float(x) if x else np.nan for x in row] for row in body])
    assert np.allclose(arr[:, 0], src["t"])
    assert np.allclose(arr[:, header.index("r_n2")], src["r1"])
    assert np.allclose(arr[:, header.index("eps_n1")], src["eps0"])
    assert arr[-1, 0] == pytest.approx(3.68, abs=1e-9)     # t = 0 … 3.69, every 2nd step
    # times as the steps add up to them, not as floating point sums print
    assert all(len(row[0]) <= 6 for row in body), [row[0] for row in body if len(row[0]) > 6]


def test_csv_of_the_visible_window_holds_the_lambda_the_errors_view_draws():
    d, _ = served("?preset=chain&seed=1")
    run(d, 10, 37)
    assert d.errors.update_adjoint() is not None           # as on pause
    run(d, 1, 20)                                          # rows newer than λ's window
    text = d.export._csv_file().read()
    rows = list(csv.reader(l for l in text.splitlines() if not l.startswith("#")))
    header, body = rows[0], rows[1:]
    assert header[-2:] == ["lambda_n1", "lambda_n2"]
    arr = np.array([[float(x) if x else np.nan for x in row] for row in body])
    lam = d.errors.adjoint_source.data
    covered = np.isin(d.traces.source.data["t"], lam["t"])
    assert covered.sum() == len(lam["t"]) > 100 and not covered[-1]
    for j, name in enumerate(("lambda_n1", "lambda_n2")):
        col = arr[:, header.index(name)]
        assert np.array_equal(col[covered], np.asarray(lam[f"lam{j}"]))
        assert np.isnan(col[~covered]).all() and np.abs(col[covered]).max() > 1e-4


def test_figure_format_switches_every_figure_to_svg():
    d, _ = served()
    figs = dashboard_figures(d.layout)
    assert len(figs) >= 6 and all(f.output_backend == "canvas" for f in figs)
    d.export.format.value = "SVG"
    assert all(f.output_backend == "svg" for f in dashboard_figures(d.layout))
    d.state.preset = "chain"                       # rebuilt figures keep the format
    assert all(f.output_backend == "svg" for f in dashboard_figures(d.layout))
    d.export.format.value = "PNG"
    assert all(f.output_backend == "canvas" for f in dashboard_figures(d.layout))


@pytest.mark.parametrize("preset,n", [("chain", 2), ("small_network", 5)])
def test_microcircuit_nodes_edges_and_live_colours(preset, n):
    d, _ = served(f"?preset={preset}")
    mc = d.microcircuit
    assert mc.nodes.data["marker"] == ["triangle"] * n + ["circle"] * n
    n_w = sum(W.size for W in d.state.net.W)
    assert len(mc.forward.data["x0"]) == n_w
    assert len(mc.feedback.data["x0"]) == n_w - d.state.net.W[0].size
    before = list(mc.nodes.data["color"])
    source = mc.nodes
    run(d, 2 * LEARNING_EVERY, 30)                 # the view updates every LEARNING_EVERY frames
    assert mc.nodes is source                      # patched, not rebuilt
    r = d.state.sim.probes["r"].last(1)[0]
    e = d.state.sim.probes["error"].last(1)[0]
    assert np.allclose(mc.nodes.data["value"], np.r_[r, e])
    assert mc.nodes.data["color"] != before
    j = int(np.argmax(np.abs(r)))
    assert mc.nodes.data["color"][j] not in ("#ffffff",)
    assert all(0.1 <= a <= 1.0 for a in mc.feedback.data["alpha"])
