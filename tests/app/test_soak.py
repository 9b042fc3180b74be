"""A shortened soak, in-process: the chain preset learning for 20 000 frames' worth of simulated
time (≈ 3 300 a.u. at its speed of 5 a.u./s), driven through ``Dashboard.tick`` with the layout
attached to a Bokeh document.

Memory is traced by ``tracemalloc`` from the first frame (tracing from the middle of the run
would count the bounded buffers as growth while their old, untraced contents are replaced).
Once every window is full (scrolling traces, probes, learning curves) it must stay flat, every
data source of the document must stop growing. How fast frames stay over an hour is measured,
not asserted, by ``benchmarks/bench_soak.py`` against a real server.
"""
from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource

import gle_lab.views.learning as learning_view
from gle_lab.main import FRAME_MS, Dashboard
from gle_lab.state import PROBE_WINDOW

#: frames' worth of simulated time per tick (fewer, larger ticks keep the test short)
FRAMES_PER_TICK = 10
WARMUP_TICKS = 1000         # 10 000 frames: every window filled, learning under way
TRACED_TICKS = 1000         # 10 000 frames more: memory must be flat over these
SAMPLE_EVERY = 200
#: learning-curve points kept (the app keeps 4 000; fewer fill within the warm-up)
LEARNING_ROLLOVER = 150


def source_lengths(doc):
    out = {}
    for m in doc.models:
        if isinstance(m, ColumnDataSource) and m.data:
            out[m.id] = max(len(v) for v in m.data.values())
    return out


@pytest.fixture
def soak(monkeypatch):
    monkeypatch.setattr(learning_view, "ROLLOVER", LEARNING_ROLLOVER)
    d = Dashboard(preset="chain")
    doc = Document()
    d.layout.get_root(doc)
    return d, doc


def test_soak_memory_flat_and_traces_bounded(soak):
    d, doc = soak
    st = d.state
    assert st.learn_W and st.learn_tau_m            # the chain preset learns
    steps = round(st.speed * FRAME_MS / 1000 / st.net.dt) * FRAMES_PER_TICK
    gc.collect()
    tracemalloc.start(1)
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(WARMUP_TICKS):
            d.tick(n_steps=steps)
        assert not st.failed, st.message
        assert len(d.learning.source.data["t"]) == LEARNING_ROLLOVER
        assert len(d.traces.source.data["t"]) == st.rollover
        mid_sources = source_lengths(doc)
        t_mid = st.sim.t
        w_mid = [w.copy() for w in st.net.W]
        d.tick_seconds.clear()
        # memory is sampled at quiet points: the GLE/exact alignment (every 2 s of wall
        # time, on a worker thread) holds a copy of its window while it runs
        st.finish_alignment()
        gc.collect()
        growth = [tracemalloc.get_traced_memory()[0] - base]
        for i in range(TRACED_TICKS):
            d.tick(n_steps=steps)
            if (i + 1) % SAMPLE_EVERY == 0:
                assert len(d.tick_seconds) <= 1000
                d.tick_seconds.clear()           # bounded by design; its sawtooth is noise
                st.finish_alignment()
                gc.collect()
                growth.append(tracemalloc.get_traced_memory()[0] - base)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()

    frames = (WARMUP_TICKS + TRACED_TICKS) * FRAMES_PER_TICK
    assert st.sim.t == pytest.approx(frames * steps / FRAMES_PER_TICK * st.net.dt, rel=1e-9)
    assert not st.failed, st.message
    # learning went on (the weights moved) and stayed finite
    assert any(not np.allclose(a, b) for a, b in zip(st.net.W, w_mid))
    assert all(np.all(np.isfinite(w)) for w in st.net.W)
    # memory: the warm-up fills the windows (and compiles, caches); afterwards 10 000 frames
    # add less than 48 KiB (measured: ~3 KiB, the last frame's arrays); a leak of one float
    # per tick would add 32 KiB, of one float per streamed sample 330 KiB
    kib = [g // 1024 for g in growth]
    assert max(growth) < 64 * 2**20, kib
    assert max(growth) - growth[0] < 48 * 2**10, kib
    assert peak < max(growth) + 8 * 2**20
    # every data source stopped growing at its rollover
    end_sources = source_lengths(doc)
    grew = {k: (mid_sources.get(k), v) for k, v in end_sources.items()
            if v > mid_sources.get(k, 0) and v > 0}
    assert not grew, grew
    assert len(d.traces.source.data["t"]) == st.rollover
    assert len(d.learning.source.data["t"]) == LEARNING_ROLLOVER
    assert len(st.sim.probes["t"]) == PROBE_WINDOW
    assert len(st.readout.history) <= 2
    t = np.asarray(d.traces.source.data["t"])
    assert t[-1] == pytest.approx(st.sim.t, abs=st.net.dt * st.decimation)
    assert t[-1] - t[0] == pytest.approx(st.window, abs=2 * st.net.dt * st.decimation)
    assert st.sim.t == pytest.approx(2 * t_mid)
