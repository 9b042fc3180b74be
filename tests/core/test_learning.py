"""Learning on the published chain protocol (paper Fig. 4, docs/model.md "Published protocols"):
GLE against IE."""
import numpy as np
import pytest

from gle_core.protocols import LAGLINE, make_protocol, run_protocol, summarize


def _distance(summary):
    w = np.ravel(summary["W"]) - np.ravel(summary["teacher_W"])
    tm = np.ravel(summary["tau_m"]) - np.ravel(summary["teacher_tau_m"])
    return float(np.sqrt(np.sum(w ** 2) + np.sum(tm ** 2)))


@pytest.fixture(scope="module")
def short_runs():
    """The chain protocol shortened to 400 a.u. with 10 input streams (CI-sized)."""
    out = {}
    for mode in ("gle", "ie"):
        sim = make_protocol("lagline", seed=0, error_mode=mode, batch_size=10)
        start = summarize(sim, LAGLINE)
        sim.run(50.0)               # settling, no learning (learn_from = 50 a.u.)
        loss_before = float(np.mean(sim.trace("loss")[-8:]))
        sim.run(350.0)
        out[mode] = (start, loss_before, summarize(sim, LAGLINE))
    return out


def test_gle_learns_the_chain_and_ie_does_not(short_runs):
    g_start, g_before, g_end = short_runs["gle"]
    i_start, i_before, i_end = short_runs["ie"]
    assert g_before == pytest.approx(i_before)           # identical until learning starts
    assert g_before > 0.1
    # GLE: loss down by more than four orders of magnitude, parameters close to the teacher
    assert g_end["final_loss"] < 1e-4 * g_before
    assert _distance(g_end) < 0.3 * _distance(g_start)
    assert g_end["max_abs_W_error"] < 0.1
    # IE: stuck, loss stays ~1e-2 and the membrane time constants collapse to the floor
    assert i_end["final_loss"] > 5e-3
    np.testing.assert_allclose(np.ravel(i_end["tau_m"]), LAGLINE["tau_floor"], atol=1e-9)
    assert i_end["final_loss"] > 100 * g_end["final_loss"]


@pytest.mark.slow
def test_full_published_chain_protocol_recovers_the_teacher():
    """Spec "Published protocols": 4050 a.u., batch 100: w and τm within 1e-3, loss < 1e-9; IE
    fails."""
    gle = run_protocol("lagline", "gle", seed=0)
    assert gle["max_abs_W_error"] < 1e-3
    assert gle["max_abs_tau_m_error"] < 1e-3
    assert gle["final_loss"] < 1e-9
    ie = run_protocol("lagline", "ie", seed=0)
    assert ie["final_loss"] > 1e-3
    assert max(np.ravel(ie["tau_m"])) <= LAGLINE["tau_floor"] + 1e-9
