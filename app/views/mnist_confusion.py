"""Confusion matrix of the last samples shown (true class × predicted class)."""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, FactorRange, LinearColorMapper
from bokeh.palettes import Blues256
from panel.viewable import Viewer

from .mnist_common import TICK_PX, figure, fit_mode
from .style import lean_renderers

CLASSES = [str(c) for c in range(10)]


class MnistConfusionView(Viewer):
    """Counts of (true, predicted) over the last ``CONFUSION_OVER`` samples of stream 0."""

    def __init__(self, lab, **params):
        from gle_lab.mnist import CONFUSION_OVER
        super().__init__(**params)
        self.lab = lab
        self.over = CONFUSION_OVER
        t, p = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
        self.source = ColumnDataSource({"true": [CLASSES[i] for i in t.ravel()],
                                        "pred": [CLASSES[j] for j in p.ravel()],
                                        "count": np.zeros(100), "text": [""] * 100,
                                        "ink": ["#1a1a1a"] * 100})
        self.matrix = np.zeros((10, 10), dtype=int)
        self._shown = None
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.layout = pn.Column(self.pane, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-mnist-confusion"])

    def _figure(self):
        self.mapper = LinearColorMapper(palette=list(reversed(Blues256)), low=0, high=1)
        fig = figure(f"Confusion, last {self.over} samples", "predicted class",
                     "true class", height=250, x_range=FactorRange(*CLASSES),
                     y_range=FactorRange(*reversed(CLASSES)))
        fig.rect("pred", "true", width=1, height=1, source=self.source,
                 fill_color={"field": "count", "transform": self.mapper}, line_color="white")
        fig.text("pred", "true", text="text", source=self.source, text_align="center",
                 text_baseline="middle", text_font_size=f"{TICK_PX}px", text_color="ink")
        self.fig = lean_renderers(fig)
        return fig

    def set_mode(self, mode):
        """Fit the page layout (:data:`gle_lab.views.mnist_common.MODES`)."""
        fit_mode(self.fig, mode)

    def rebuild(self):
        self._shown = None

    def update(self, slow=False):
        lab = self.lab
        key = (lab.version, lab.samples)
        if not slow or key == self._shown:
            return
        self._shown = key
        m = lab.confusion(self.over)
        self.matrix = m
        self.mapper.high = max(1, int(m.max()))
        self.source.patch({"count": [(slice(0, 100), m.ravel().astype(float))],
                           "text": [(slice(0, 100), [str(v) if v else "" for v in
                                                     m.ravel()])],
                           # white on the dark cells, dark on the light ones
                           "ink": [(slice(0, 100), ["#ffffff" if v > m.max() / 2 else
                                                    "#1a1a1a" for v in m.ravel()])]})
        n = int(m.sum())
        self.fig.title.text = (f"Confusion, last {n} samples "
                               f"({100 * np.trace(m) / n:.0f} % right)" if n else
                               f"Confusion, last {self.over} samples")

    def __panel__(self):
        return self.layout
