"""The live time-trace source shared by the Activity and Errors views.

One :class:`bokeh.models.ColumnDataSource` holds every scrolling trace of a session (input,
student and teacher rates, GLE and instantaneous errors of every neuron), so one frame is
one ``stream`` message with ``rollover`` (the browser keeps only the window on screen).
"""
from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, Range1d


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
        self._t_end = None
        self.frames_streamed = 0
        self.points_streamed = 0

    def clear(self):
        self.source.data = {c: np.zeros(0) for c in self.columns()}
        self._t_end = None
        self.x_range.update(start=0.0, end=float(self.state.window))

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
        rows = {k: np.asarray(v, dtype=float).tolist() for k, v in rows.items()}
        self.source.stream(rows, rollover=self.state.rollover)
        self._t_end = float(frame["t"][-1])
        self._follow(self._t_end)
        self.frames_streamed += 1
        self.points_streamed += len(frame["t"])
        return len(frame["t"])
