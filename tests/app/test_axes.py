"""The live plots' axes: y ranges the server sets (following the data without jitter), a
time axis the page moves itself."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from bokeh.models import ColumnDataSource, Range1d

from gle_lab.main import Dashboard
from gle_lab.streaming import REFIT_EVERY, StableRange, nice_bounds


@pytest.mark.parametrize("lo, hi", [(-1, 1), (0.0, 0.3), (-0.004, 0.02), (100, 2500),
                                    (-3e-9, 1e-9), (0.5, 0.5), (-7.3, -7.2)])
def test_nice_bounds_contain_the_data_with_a_margin_on_round_steps(lo, hi):
    a, b = nice_bounds(lo, hi)
    assert a < lo and hi < b                       # padded on both sides
    span = b - a
    assert span <= 4 * max(hi - lo, 0.1 * max(abs(lo), abs(hi)))   # not absurdly wide
    step = span / round(span / (10 ** np.floor(np.log10(span / 10))))
    # both ends are multiples of one round step
    for end in (a, b):
        k = end / (10 ** np.floor(np.log10(span / 10)))
        assert abs(k * 4 - round(k * 4)) < 1e-6, (end, step)


def test_nice_bounds_of_zero_or_nan_is_the_unit_interval():
    assert nice_bounds(0.0, 0.0) == (-1.0, 1.0)
    assert nice_bounds(float("nan"), 1.0) == (-1.0, 1.0)


def test_stable_range_grows_at_once_and_shrinks_only_on_a_refit():
    yr = StableRange(["a"])
    yr.fit(-1.0, 1.0)
    first = (yr.range.start, yr.range.end)
    assert first[0] < -1 and first[1] > 1
    yr.fit(-0.9, 0.8)                              # inside: nothing moves
    assert (yr.range.start, yr.range.end) == first
    yr.fit(0.0, 3.0)                               # outside: grows, keeps what was shown
    assert yr.range.start < -1 and yr.range.end > 3
    yr.fit(-0.1, 0.1)                              # small data, but no refit: stays
    assert yr.range.end > 3
    yr.fit(-0.1, 0.1, shrink=True)                 # whole window small: shrinks
    assert -0.3 < yr.range.start < -0.1 and 0.1 < yr.range.end < 0.3


@pytest.mark.parametrize("lo,hi", [(0.2, 0.9), (0.3, 0.31), (0.05, 2.0), (1e-5, 0.7)])
def test_a_log_axis_spans_two_decades_at_least_as_bokehjs_counts_them(lo, hi):
    """BokehJS's LogTicker draws decades only over ≥ 2 decades (log(end)/log(10) −
    log(start)/log(10) in floating point, as computed here); below, linear ticks pile up at
    the top of the log axis (a loss of 0.2 … 0.9 showed a lone "1")."""
    r = StableRange(["loss"], log=True)
    r.fit(lo, hi)
    start, end = r.range.start, r.range.end
    assert start <= lo and hi <= end
    assert math.log(end) / math.log(10) - math.log(start) / math.log(10) >= 2
    decades = [10.0 ** k for k in range(-30, 31) if start <= 10.0 ** k <= end]
    assert len(decades) >= 3                 # the labelled ticks, e.g. 0.01, 0.1, 1


def test_stable_range_refit_includes_extra_sources():
    yr = StableRange(["e0"])
    lam = ColumnDataSource({"lam0": [-5.0, 4.0]})
    yr.extra = [(lam, ["lam0"])]
    yr.fit_columns({"e0": [0.1, 0.2]}, shrink=True)
    assert yr.range.start < -5 and yr.range.end > 4
    yr.fit_columns({"e0": [0.1, np.nan, 0.2]})      # NaN ignored, inside: no change
    assert yr.range.start < -5


def test_live_axes_contain_the_traces_and_hold_still_in_steady_state():
    d = Dashboard()                                # phase inversion: a sine, steady quickly
    assert isinstance(d.activity.pane.object.y_range, Range1d)
    for _ in range(200):
        d.tick(n_steps=20)
    data = d.traces.source.data
    for name, cols in (("activity", ["x", "r0"]), ("errors", ["e0", "eps0"])):
        yr = d.traces.y_ranges[name].range
        vals = np.concatenate([np.asarray(data[c], dtype=float) for c in cols])
        margin = 0.02 * (yr.end - yr.start)        # no trace touches the frame's edge
        assert yr.start + margin <= vals.min() and vals.max() <= yr.end - margin, name
        # the data fill a good part of the axis (it does not stay at its first guess)
        assert vals.max() - vals.min() > 0.3 * (yr.end - yr.start), name
    seen = set()
    for _ in range(3 * REFIT_EVERY):
        d.tick(n_steps=20)
        seen.add(tuple((r.range.start, r.range.end) for r in d.traces.y_ranges.values()))
    assert len(seen) == 1                          # no jitter over three refits


def test_axes_follow_a_change_of_amplitude_both_ways():
    d = Dashboard()
    for _ in range(100):
        d.tick(n_steps=20)
    yr = d.traces.y_ranges["activity"].range
    before = yr.end - yr.start
    d.state.amplitude = d.state.amplitude * 4
    for _ in range(2 * REFIT_EVERY + 100):
        d.tick(n_steps=20)
    assert yr.end - yr.start > 2.5 * before        # grew with the data
    d.state.amplitude = d.state.amplitude / 4
    for _ in range(2 * REFIT_EVERY + 150):
        d.tick(n_steps=20)
    assert yr.end - yr.start < 1.3 * before         # and shrank back once the window passed


def test_frames_carry_no_time_axis_change_the_page_follows_the_data():
    """The time axis follows the newest sample in the page (a CustomJS on the trace source,
    streams and replacements, and on the range's ``tags`` = window width): a frame's patch
    holds the stream but no change of the time range; a new window is one ``tags`` change."""
    from bokeh.document import Document
    d = Dashboard()
    doc = Document()
    doc.add_root(d.layout.get_root(doc))
    events = []
    doc.callbacks.on_change(lambda ev: events.append(ev))
    tr = d.traces
    for _ in range(40):
        d.tick(n_steps=20)
    assert d.state.sim.t > d.state.window / 4
    streamed = [e for e in events if getattr(e, "model", None) is tr.source]
    assert len(streamed) >= 40
    assert not [e for e in events if getattr(e, "model", None) is tr.x_range]
    assert (tr.x_range.start, tr.x_range.end) == (0.0, d.state.window)
    # the callback is attached where the page needs it
    assert set(tr.source.js_property_callbacks) >= {"streaming", "change:data"}
    assert "change:tags" in tr.x_range.js_property_callbacks
    d.state.window = 5.0
    assert list(tr.x_range.tags) == [5.0]
    assert [e.attr for e in events if getattr(e, "model", None) is tr.x_range] == ["tags"]


@pytest.mark.parametrize("values", [[0.5, -1.25, 3.0], [0.5, float("nan"), 2.0],
                                    [float("inf"), 1.0, -float("inf")], []])
def test_streamed_float_columns_encode_as_bokeh_encodes_plain_lists(values):
    """The trace stream's columns (FloatColumn) give the very PATCH-DOC content Bokeh writes
    for plain lists, non-finite values included; the source keeps working as a list."""
    from bokeh.document import Document
    from bokeh.protocol import Protocol

    from gle_lab.streaming import FloatColumn

    def content(wrap):
        src = ColumnDataSource({"t": np.zeros(0), "y": np.zeros(0)})
        doc = Document()
        doc.add_root(src)
        doc.to_json()
        events = []
        doc.callbacks.on_change(lambda ev: events.append(ev))
        for k in range(2):
            src.stream({"t": wrap([float(k)] * len(values)), "y": wrap(list(values))},
                       rollover=5)
        def ids(text):                          # model ids differ between the documents
            return re.sub(r'"p\d+"', '"p"', text)
        msgs = [ids(Protocol().create("PATCH-DOC", [ev]).content_json) for ev in events]
        whole = Protocol().create("PULL-DOC-REPLY", "id", doc).content_json
        return msgs, ids(whole), src.data
    plain, plain_doc, _ = content(list)
    ours, our_doc, data = content(FloatColumn)
    assert ours == plain and our_doc == plain_doc
    assert len(data["y"]) == min(5, 2 * len(values))


@pytest.mark.parametrize("log", [False, True])
def test_finite_extent_is_the_min_and_max_of_the_finite_values_whatever_is_mixed_in(log):
    from gle_lab.streaming import finite_extent
    rng = np.random.default_rng(3)
    specials = [np.nan, np.inf, -np.inf, 0.0, -2.0]
    for _ in range(300):
        arrays = [rng.standard_normal(int(rng.integers(0, 6))) * 10 ** rng.uniform(-3, 3)
                  for _ in range(int(rng.integers(1, 4)))]
        for a in arrays:
            if a.size and rng.random() < 0.5:
                a[rng.integers(0, a.size)] = specials[rng.integers(0, len(specials))]
        kept = [float(x) for a in arrays for x in a
                if math.isfinite(x) and (x > 0 or not log)]
        got = finite_extent(arrays, log)
        if kept:
            assert got == (min(kept), max(kept))
        else:
            assert all(math.isnan(g) for g in got)
    assert all(math.isnan(g) for g in finite_extent([np.zeros(0)]))
