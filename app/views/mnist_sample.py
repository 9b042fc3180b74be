"""The sample being presented: its 360-point sequence, a cursor at the current step, its
true label (render-only)."""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, Span
from panel.viewable import Viewer

from .mnist_common import figure
from .style import lean_renderers


class MnistSampleView(Viewer):
    """Stream 0's current sample with a cursor; redrawn when the sample changes."""

    def __init__(self, lab, **params):
        super().__init__(**params)
        self.lab = lab
        self.source = ColumnDataSource({"t": [], "x": []})
        self.shown = None           # (version, sample index) on screen
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.layout = pn.Column(self.pane, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-mnist-sample"])

    def _figure(self):
        fig = figure("Sample", "step of the sample (one point per dt = 0.2)",
                     "input x (standardised)", height=230)
        fig.line("t", "x", source=self.source, line_width=2, color="#1a1a1a")
        self.cursor = Span(location=0, dimension="height", line_color="#d62728",
                           line_width=2)
        fig.add_layout(self.cursor)
        self.fig = lean_renderers(fig)
        return fig

    def rebuild(self):
        self.shown = None

    def update(self, slow=False):
        lab = self.lab
        i, label, point = lab.current()
        key = (lab.version, i, lab.sim.n_steps // lab.L)
        if key != self.shown:
            self.shown = key
            x = lab.source.x[i, :, 0]
            self.source.data = {"t": np.arange(len(x)), "x": x}
            which = "validation" if lab.start == "trained" else "training"
            self.fig.title.text = (f"Sample {i} of the {which} set · true label {label}")
        self.cursor.location = point
        self.label = label
        self.point = point

    def __panel__(self):
        return self.layout
