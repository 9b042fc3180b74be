"""The live time-trace source shared by the Activity and Errors views.

One :class:`bokeh.models.ColumnDataSource` holds every scrolling trace of a session (input,
student and teacher rates, GLE and instantaneous errors of every neuron), so one frame is
one ``stream`` message with ``rollover`` (the browser keeps only the window on screen).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np
from bokeh.core.serialization import Serializer
from bokeh.models import ColumnDataSource, CustomJS, Range1d

#: the y axes are re-fitted to the whole window (to shrink) every this many frames
REFIT_EVERY = 30

#: The time axis follows the newest sample in the page: ``xr.tags[0]`` is the window's
#: width (set by the server), the range shows the last window ([0, window] at first).
#: ``sync: false``: the browser does not report the range it computes to the server.
FOLLOW_TIME_JS = """
const t = src.data.t;
const w = xr.tags.length ? Number(xr.tags[0]) : xr.end - xr.start;
const n = t == null ? 0 : t.length;
const last = n ? Number(t[n - 1]) : 0;
const start = last > w ? last - w : 0, end = last > w ? last : w;
if (xr.start !== start || xr.end !== end) xr.setv({start, end}, {sync: false});
"""


def nice_bounds(lo, hi, pad=0.08):
    """``[lo, hi]`` padded and widened to multiples of a round step (1, 2, 2.5 or 5 × 10ᵏ)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) < 1e-12:
        return -1.0, 1.0
    mid = 0.5 * (lo + hi)
    span = max(hi - lo, 0.1 * max(abs(lo), abs(hi)), 1e-9)  # a flat line is shown flat
    lo, hi = min(lo, mid - span / 2) - pad * span, max(hi, mid + span / 2) + pad * span
    raw = (hi - lo) / 10
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


#: decades a streamed log axis spans at least: over fewer, BokehJS's LogTicker falls back to
#: linear ticks (0.2 … 1 piled up at the top of a log axis, or a lone "1"); a hair more,
#: since it finds log10(1) − log10(0.01) = 1.9999999999999996 < 2
LOG_MIN_DECADES, LOG_START_PAD = 2, 1 - 1e-6


def decade_bounds(lo, hi, min_decades=1):
    """Whole decades around ``[lo, hi]`` (both > 0), at least ``min_decades`` of them (added
    below), for a log axis."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi <= 0:
        return 1e-3, 1.0
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return 10.0 ** min(a, b - min_decades), 10.0 ** max(b, a + 1)


class FloatColumn(list):
    """A streamed column of floats: encoded for the PATCH-DOC message as the plain list it
    is when every value is finite (one ``sum``), item by item as Bokeh does otherwise (NaN
    and ±inf become Bokeh's number objects). Bokeh's own encoding visits every float of a
    list (~1.5 µs each): 105 µs for a frame's 10 columns of 4 samples, 40 µs this way."""

    __slots__ = ()


def _encode_float_column(obj, serializer):
    if math.isfinite(sum(obj)):
        return list(obj)
    return [serializer.encode(x) for x in obj]


Serializer.register(FloatColumn, _encode_float_column)


class StableRange:
    """A y :class:`~bokeh.models.Range1d` the server sets: it grows at once to fit new data and
    shrinks only when the data use less than 60 % of it (checked on the whole window).

    Auto-ranging (``DataRange1d``) re-fits every frame: the axis jitters on the projector, its
    tick labels change width (moving the plot's inner layout, which makes the browser
    recompute the page's styles on every paint) and BokehJS reports every new range back to
    the server."""

    def __init__(self, columns, log=False):
        self.columns = list(columns)
        self.log = log
        self.range = Range1d(*((1e-3, 1.0) if log else (-1.0, 1.0)))
        self.extra = []             # (source, columns) also shown on this axis (λ overlay)
        self.lo = self.hi = math.nan   # extent of the data the range was last fitted to

    @property
    def fitted(self):
        return not math.isnan(self.lo)

    def reset(self):
        """Forget the data (a reset or rebuild): back to the default range, so that axes blown
        up by a divergence (±1e15) do not stay over the empty plot until new data arrive."""
        self.lo = self.hi = math.nan
        default = (1e-3, 1.0) if self.log else (-1.0, 1.0)
        if (self.range.start, self.range.end) != default:
            self.range.update(start=default[0], end=default[1])

    def fit(self, lo, hi, shrink=False):
        """Fit new data ``[lo, hi]``; with ``shrink``, ``[lo, hi]`` is the whole window's."""
        if not (math.isfinite(lo) and math.isfinite(hi)) or (self.log and lo <= 0):
            return
        start, end = self.range.start, self.range.end
        if self.log:
            used = math.log10(hi / lo) / math.log10(end / start)
            margin = (end / start) ** 0.02
            inside = start * margin <= lo and hi * margin <= end
        else:
            used = (hi - lo) / (end - start)
            margin = 0.02 * (end - start)
            inside = start + margin <= lo and hi <= end - margin
        # data touching the frame's edge count as outside: the axis keeps a visible margin
        if self.fitted and inside and not (shrink and used < 0.6):
            return
        if self.fitted and not shrink:            # grow: keep what is already shown
            lo, hi = min(lo, self.lo), max(hi, self.hi)
        self.lo, self.hi = lo, hi
        if self.log:
            new_start, new_end = decade_bounds(lo, hi, LOG_MIN_DECADES)
            new_start *= LOG_START_PAD
        else:
            new_start, new_end = nice_bounds(lo, hi)
        if (new_start, new_end) != (start, end):
            self.range.update(start=new_start, end=new_end)

    def fit_columns(self, data, shrink=False, also=()):
        """Fit the finite values of this axis' columns in ``data`` and the values ``also``
        (and, when shrinking, those of the extra sources)."""
        vals = [data[c] for c in self.columns if c in data]
        if len(also):
            vals.append(also)
        if shrink:
            vals += self._extra_values()
        if vals:
            self.fit(*finite_extent(vals, self.log), shrink=shrink)

    def fit_window(self, extents):
        """Refit (so that it may shrink) to the window's ``(lo, hi)`` extents and the extra
        sources' values."""
        self.fit(*finite_extent([extents] + self._extra_values(), self.log), shrink=True)

    def _extra_values(self):
        return [src.data[c] for src, cols in self.extra for c in cols if c in src.data]


def finite_extent(arrays, log=False):
    """``(min, max)`` of the finite (and, for a log axis, positive) values of ``arrays``
    (NaN, NaN when there are none)."""
    # one array: this runs on every frame for every axis; the mask only when needed (min
    # and max are NaN or infinite if any value is)
    v = np.concatenate([np.asarray(x, dtype=float).ravel() for x in arrays])
    if not v.size:
        return math.nan, math.nan
    lo, hi = float(v.min()), float(v.max())
    if math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or not log):
        return lo, hi
    ok = np.isfinite(v)
    if log:
        ok &= v > 0
    v = v[ok]
    if not v.size:
        return math.nan, math.nan
    return float(v.min()), float(v.max())


def follow_ranges(ranges, pushes, window, new_rows, also=None):
    """Fit every :class:`StableRange` of ``ranges`` ({key: range}) to the rows just pushed,
    or, every :data:`REFIT_EVERY` pushes (``pushes`` counts them), to the whole ``window``
    (so that they may shrink). ``also``: {key: values} every fit must include as well."""
    refit = pushes % REFIT_EVERY == 0
    for key, yr in ranges.items():
        yr.fit_columns(window if refit else new_rows, shrink=refit,
                       also=() if also is None else also[key])


class TraceStream:
    """Columns ``t``, ``x``, ``r{j}``, ``tr{j}`` (teacher), ``e{j}``, ``eps{j}``."""

    def __init__(self, state):
        self.state = state
        self.rebuild()

    def columns(self):
        n = self.state.n_neurons
        cols = ["t", "x"]
        for prefix in ("r", "tr", "e", "eps"):
            cols += [f"{prefix}{j}" for j in range(n)]
        return cols

    def rebuild(self):
        """New source and shared time axis for the current network shape."""
        self.source = ColumnDataSource({c: np.zeros(0) for c in self.columns()})
        # A Range1d the page moves when data arrive (FOLLOW_TIME_JS), not a DataRange1d
        # following the data (BokehJS reports a DataRange1d's recomputed start/end back to the
        # server after every frame: one more websocket message and document patch per frame),
        # nor one the server moves (two more model changes in every frame's patch).
        w = float(self.state.window)
        self.x_range = Range1d(start=0.0, end=w, tags=[w])
        follow = CustomJS(args={"xr": self.x_range, "src": self.source}, code=FOLLOW_TIME_JS)
        self.source.js_on_change("streaming", follow)
        self.source.js_on_change("data", follow)          # cleared, or a new window
        self.x_range.js_on_change("tags", follow)         # another window width
        n = self.state.n_neurons
        self.y_ranges = {
            "activity": StableRange(["x"] + [f"{p}{j}" for p in ("r", "tr") for j in range(n)]),
            "errors": StableRange([f"{p}{j}" for p in ("e", "eps") for j in range(n)]),
        }
        self._t_end = None
        self._extents = deque()     # (t_end, {axis: (lo, hi)}) of each frame in the window
        self.frames_streamed = 0
        self.points_streamed = 0

    def clear(self):
        self.source.data = {c: np.zeros(0) for c in self.columns()}
        self._t_end = None
        self._extents.clear()
        for yr in self.y_ranges.values():
            yr.reset()

    def set_window(self, window):
        """Another window width: the page's time axis follows it at once (paused too)."""
        w = float(window)
        if list(self.x_range.tags) != [w]:
            self.x_range.tags = [w]

    def push(self, frame):
        """Stream one frame's new (decimated) samples; returns the number of rows sent."""
        if frame is None or len(frame["t"]) == 0:
            return 0
        n = self.state.n_neurons
        rows = {"t": frame["t"], "x": frame["input"]}
        teacher = frame.get("teacher_r")
        for j in range(n):
            rows[f"r{j}"] = frame["r"][:, j]
            rows[f"tr{j}"] = (teacher[:, j] if teacher is not None and j < teacher.shape[1]
                              else np.full(len(frame["t"]), np.nan))
            rows[f"e{j}"] = frame["e"][:, j]
            rows[f"eps{j}"] = frame["eps"][:, j]
        # plain lists: a few dozen numbers go inline in the patch's JSON; numpy arrays would
        # each become a binary buffer = two extra websocket messages per column per frame
        self.source.stream({k: FloatColumn(np.asarray(v, dtype=float).tolist())
                            for k, v in rows.items()}, rollover=self.state.rollover)
        self._t_end = float(frame["t"][-1])
        self._fit_y(frame, teacher)
        self.frames_streamed += 1
        self.points_streamed += len(frame["t"])
        return len(frame["t"])

    def _fit_y(self, frame, teacher):
        """Grow the y axes to the frame just pushed; every :data:`REFIT_EVERY` frames refit
        them to the whole window (so that they may shrink), from the extents of the frames
        still in it (the window's columns are long Python lists: converting them cost more
        than the rest of the frame's fits)."""
        arrays = {"activity": (frame["input"], frame["r"]) +
                  (() if teacher is None else (teacher,)),
                  "errors": (frame["e"], frame["eps"])}
        ext = {k: finite_extent(v) for k, v in arrays.items()}
        extents = self._extents
        extents.append((self._t_end, ext))
        oldest = self._t_end - float(self.state.window)
        while extents[0][0] < oldest:          # scrolled out (the frame just pushed stays)
            extents.popleft()
        if self.frames_streamed % REFIT_EVERY == 0:
            for key, yr in self.y_ranges.items():
                yr.fit_window([e[key] for _, e in extents])
        else:
            for key, yr in self.y_ranges.items():
                yr.fit(*ext[key])
