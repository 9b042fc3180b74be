"""The live time-trace source shared by the Activity and Errors views.

One :class:`bokeh.models.ColumnDataSource` holds every scrolling trace of a session (input,
student and teacher rates, GLE and instantaneous errors of every neuron), so one frame is
one ``stream`` message with ``rollover`` (the browser keeps only the window on screen).
"""
from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, DataRange1d


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
        self.x_range = DataRange1d(follow="end", follow_interval=self.state.window,
                                   range_padding=0, only_visible=True)
        self.frames_streamed = 0
        self.points_streamed = 0

    def clear(self):
        self.source.data = {c: np.zeros(0) for c in self.columns()}

    def set_window(self, window):
        self.x_range.follow_interval = window

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
        self.frames_streamed += 1
        self.points_streamed += len(frame["t"])
        return len(frame["t"])
