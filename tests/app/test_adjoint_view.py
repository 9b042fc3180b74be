"""The Errors view's AM adjoint λ overlay and the windowed-AM error mode (issue #4)."""
from __future__ import annotations

import numpy as np
import pytest
from bokeh.document import Document

from app.main import Dashboard
from gle_core import fourier
from gle_core.adjoint import adjoint_traces


def run_frames(d, frames, steps):
    for _ in range(frames):
        d.tick(n_steps=steps)


@pytest.mark.parametrize("preset", ["phase_inversion", "small_network"])
def test_lambda_overlay_equals_gle_core_adjoint_on_the_recorded_trajectory(preset):
    d = Dashboard(preset=preset)
    d.layout.get_root(Document())
    st = d.state
    run_frames(d, 40, 50)                       # 20 a.u.
    res = d.errors.update_adjoint()
    assert res is not None
    # the same trajectory, straight from the probes, through gle_core.adjoint
    K = len(res["t"])
    assert K == min(len(st.sim.probes["t"]), int(np.ceil(st.window / st.net.dt)) + 1)
    p = st.sim.probes
    t, lam, alpha = adjoint_traces(st.net, p["r"].last(K), p["r_prime"].last(K),
                                   p["target"].last(K), p["t"].last(K))
    lam = np.concatenate([a[:, 0, :] for a in lam], axis=1)
    # what the browser gets: the decimated samples, on the time axis of e
    src = d.errors.adjoint_source.data
    k = st.decimation
    keep = res["ids"] % k == 0
    assert np.array_equal(src["t"], t[keep])
    for j in range(st.n_neurons):
        assert np.allclose(src[f"lam{j}"], lam[keep, j], rtol=0, atol=1e-12)
        assert np.any(np.abs(src[f"lam{j}"]) > 1e-4)          # not trivially zero
    # λ's samples sit on e's samples (same times in the trace source)
    tr_t = np.asarray(d.traces.source.data["t"])
    assert np.isin(src["t"][-50:], tr_t).all()


def test_lambda_gain_and_phase_follow_eq9_and_reach_the_fourier_view():
    d = Dashboard(preset="phase_inversion")
    d.layout.get_root(Document())
    st = d.state
    run_frames(d, 60, 50)                       # 30 a.u. at ω = 1
    d.errors.update_adjoint()
    fit = d.errors.adjoint_fits[round(st.omega, 6)]
    tm, tr = st.neuron_taus()
    # λ = I⁺τm D⁻τr α (paper Eq. 9/11): (1 - iωτr)/(1 - iωτm); an anti-causal filter run
    # forward in time would give the conjugate (opposite phase)
    H = fourier.transfer("am_adjoint", st.omega, tm, tr)
    assert tr < tm and np.angle(H) > 0.3
    assert fit.gain == pytest.approx(abs(H), rel=0.02)
    assert fit.phase == pytest.approx(np.angle(H), abs=0.03)
    d.fourier.update(d.errors.adjoint_fits)
    m = d.fourier.measured["adjoint"].data
    assert list(m["w"]) == [round(st.omega, 6)]
    assert m["phase"][0] == pytest.approx(np.degrees(np.angle(H)), abs=2.0)
    # a τ change makes the old dot stale
    st.tau_r = 2.0
    d.errors.update_adjoint()
    assert round(st.omega, 6) not in d.errors.adjoint_fits or \
        d.errors.adjoint_fits[round(st.omega, 6)].phase < 0


def test_lambda_refresh_is_periodic_cheap_and_runs_on_pause():
    d = Dashboard(preset="phase_inversion")
    d.layout.get_root(Document())
    run_frames(d, 30, 13)
    n = d.errors.adjoint_updates
    every = d.errors.adjoint_every
    assert 6 <= every <= 45
    run_frames(d, 3 * every, 13)
    assert d.errors.adjoint_updates - n in (2, 3, 4)

    class FakeCallback:                         # what pn.state.add_periodic_callback returns
        running = True

        def stop(self):
            self.running = False

        def start(self):
            self.running = True
    d.callback = FakeCallback()
    run_frames(d, 2, 13)                        # new data since the last λ
    n = d.errors.adjoint_updates
    d.state.pause()
    assert not d.callback.running
    assert d.errors.adjoint_updates == n + 1    # λ of the paused window, once
    t_end = d.errors.adjoint_source.data["t"][-1]
    assert t_end == pytest.approx(d.traces.source.data["t"][-1], abs=d.state.net.dt * 2)
