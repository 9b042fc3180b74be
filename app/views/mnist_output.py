"""The 10 output rates over the current sample and their running sum as a bar per class,
with the prediction (argmax of the sum, paper Fig. 6 read-out) and whether it is right."""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, FactorRange
from panel.viewable import Viewer

from .mnist_common import (CLASS_COLORS, NEUTRAL, RIGHT, WRONG, arrange, figure,
                           fit_pair, fit_range)
from .style import lean_renderers

CLASSES = [str(c) for c in range(10)]


class MnistOutputView(Viewer):
    """Output rates of stream 0 (lines) and their running sums (bars)."""

    def __init__(self, lab, **params):
        super().__init__(**params)
        self.lab = lab
        self.rates = ColumnDataSource({"t": [], **{f"o{c}": [] for c in range(10)}})
        self.bars = ColumnDataSource({"cls": CLASSES, "sum": [0.0] * 10,
                                      "color": [NEUTRAL] * 10, "line": [0.0] * 10})
        self.prediction = None       # prediction shown for the current sample so far
        self.last_shown = None       # (label, prediction) of the last completed sample
        self._key = None
        self._point = 0
        self.mode = "wide"
        self.text = pn.pane.HTML("", sizing_mode="stretch_width",
                                 css_classes=["gle-mnist-prediction"], margin=(0, 10))
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.layout = pn.Column(self.text, self.pane, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-mnist-output"])

    def _figure(self):
        lines = figure("Output rates (10 classes)", "step of the sample", "rate", height=200,
                       x_range=(0, 360), y_range=(-1, 1))
        for c in range(10):
            lines.line("t", f"o{c}", source=self.rates, color=CLASS_COLORS[c], line_width=2)
        lines.xaxis.ticker.desired_num_ticks = 4
        # relative to the mean over classes: the read-out (argmax) ignores a common offset,
        # which in a trained network is far larger than the differences between classes
        bars = figure("Σ output per class", "class (outlined: true)",
                      "Σ output − mean", height=200, x_range=FactorRange(*CLASSES),
                      y_range=(-1, 1))
        bars.vbar(x="cls", top="sum", width=0.8, source=self.bars, fill_color="color",
                  line_color="#1a1a1a", line_width="line")
        # a dot in each class's line colour under its bar (one renderer for all ten)
        bars.scatter(CLASSES, [0] * 10, color=CLASS_COLORS, size=7)
        self.lines_fig, self.bars_fig = lean_renderers(lines), lean_renderers(bars)
        return arrange([lines, bars], self.mode)

    def set_mode(self, mode):
        """Fit the page layout: the two plots side by side, or one under the other on a
        phone (:data:`gle_lab.views.mnist_common.MODES`)."""
        fit_pair(self, (self.lines_fig, self.bars_fig), mode)

    def rebuild(self):
        self._key = None

    def update(self, slow=False):
        lab = self.lab
        i, label, point = lab.current()
        key = (lab.version, lab.sim.n_steps // lab.L)
        out = lab.current_outputs()
        fresh = key != self._key or point < self._point
        if fresh:
            self._key = key
            self.rates.data = {"t": np.arange(len(out)),
                               **{f"o{c}": out[:, c] for c in range(10)}}
        elif point > self._point:
            new = out[self._point:]
            self.rates.stream({"t": np.arange(self._point, point),
                               **{f"o{c}": new[:, c] for c in range(10)}})
        self._point = point
        if len(out):
            # a new sample gets its own axis (the outputs' level moves between samples)
            fit_range(self.lines_fig.y_range, float(out.min()), float(out.max()),
                      slack=1.0 if fresh else 0.5)
        s = lab.acc_sum
        if point == 0 and lab.last_result is not None:
            # between samples: the completed sample's sums stay on screen
            label, pred, s = lab.last_result
        pred = int(np.argmax(s)) if point or lab.last_result is not None else None
        colors = [NEUTRAL] * 10
        if pred is not None:
            colors[pred] = RIGHT if pred == label else WRONG
        width = [0.0] * 10
        width[label] = 3.0
        s = np.asarray(s, float)
        rel = s - s.mean()
        self.bars.data = {"cls": CLASSES, "sum": rel, "color": colors, "line": width}
        top = float(np.abs(rel).max())
        if top > 0:
            fit_range(self.bars_fig.y_range, -top, top)
        self.prediction = pred
        last = lab.last_result
        self.last_shown = None if last is None else (last[0], last[1])
        now = ("–" if pred is None else
               f"<b style='color:{RIGHT if pred == label else WRONG}'>{pred} "
               f"{'✓' if pred == label else '✗'}</b>")
        prev = ("" if last is None else
                f" · last sample: true {last[0]}, predicted {last[1]} "
                f"{'✓' if last[0] == last[1] else '✗'}")
        self.text.object = (f"<span style='font-size:16px'>Prediction so far: {now} "
                            f"(true {label}, step {point}/360){prev}</span>")

    def __panel__(self):
        return self.layout
