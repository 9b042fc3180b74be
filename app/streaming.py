"""The live time-trace source shared by the Activity and Errors views.

One :class:`bokeh.models.ColumnDataSource` holds every scrolling trace of a session (input,
student and teacher rates, GLE and instantaneous errors of every neuron), so one frame is
one ``stream`` message with ``rollover`` (the browser keeps only the window on screen).
"""
from __future__ import annotations

import math

import numpy as np
from bokeh.models import ColumnDataSource, Range1d

#: the y axes are re-fitted to the whole window (to shrink) every this many frames
REFIT_EVERY = 30


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


def decade_bounds(lo, hi):
    """Whole decades around ``[lo, hi]`` (both > 0), for a log axis."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi <= 0:
        return 1e-3, 1.0
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return 10.0 ** a, 10.0 ** max(b, a + 1)


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
        new_start, new_end = decade_bounds(lo, hi) if self.log else nice_bounds(lo, hi)
        if (new_start, new_end) != (start, end):
            self.range.update(start=new_start, end=new_end)

    def fit_columns(self, data, shrink=False, also=()):
        """Fit the finite values of this axis' columns in ``data`` and the values ``also``
        (and, when shrinking, those of the extra sources)."""
        vals = [data[c] for c in self.columns if c in data]
        if len(also):
            vals.append(also)
        if shrink:
            vals += [src.data[c] for src, cols in self.extra for c in cols if c in src.data]
        if not vals:
            return
        # one array, one mask: this runs on every frame for every axis
        v = np.concatenate([np.asarray(x, dtype=float).ravel() for x in vals])
        ok = np.isfinite(v)
        if self.log:
            ok &= v > 0
        v = v[ok]
        if v.size:
            self.fit(float(v.min()), float(v.max()), shrink=shrink)


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
        # A Range1d moved by the server in the frame's patch, not a DataRange1d following the
        # data: BokehJS reports a DataRange1d's recomputed start/end back to the server after
        # every frame (one extra websocket message + document patch per frame).
        self.x_range = Range1d(start=0.0, end=float(self.state.window))
        n = self.state.n_neurons
        self.y_ranges = {
            "activity": StableRange(["x"] + [f"{p}{j}" for p in ("r", "tr") for j in range(n)]),
            "errors": StableRange([f"{p}{j}" for p in ("e", "eps") for j in range(n)]),
        }
        self._t_end = None
        self.frames_streamed = 0
        self.points_streamed = 0

    def clear(self):
        self.source.data = {c: np.zeros(0) for c in self.columns()}
        self._t_end = None
        self.x_range.update(start=0.0, end=float(self.state.window))
        for yr in self.y_ranges.values():
            yr.reset()

    def set_window(self, window):
        self._follow(self._t_end)

    def _follow(self, t_end):
        """Show the last ``window`` a.u. up to ``t_end`` ([0, window] at first)."""
        w = float(self.state.window)
        if t_end is None or t_end <= w:
            start, end = 0.0, w
        else:
            start, end = t_end - w, t_end
        if self.x_range.start != start or self.x_range.end != end:
            self.x_range.update(start=start, end=end)

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
        self.source.stream({k: np.asarray(v, dtype=float).tolist() for k, v in rows.items()},
                           rollover=self.state.rollover)
        self._t_end = float(frame["t"][-1])
        self._follow(self._t_end)
        follow_ranges(self.y_ranges, self.frames_streamed, self.source.data, rows)
        self.frames_streamed += 1
        self.points_streamed += len(frame["t"])
        return len(frame["t"])
