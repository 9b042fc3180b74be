"""The sample being presented: its 360-point sequence, a cursor at the current step, its
true label (render-only)."""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, Span
from panel.viewable import Viewer

from .mnist_common import figure, fit_mode, fit_range
from .style import lean_renderers

#: the x axis' label: the set the sample comes from, the time step (shorter on a phone)
X_LABEL = {"phone": "step of the {which} sample (dt = 0.2)",
           "screen": "step of the {which} sample (one point per dt = 0.2)"}


class MnistSampleView(Viewer):
    """Stream 0's current sample with a cursor; redrawn when the sample changes."""

    def __init__(self, lab, **params):
        super().__init__(**params)
        self.lab = lab
        self.source = ColumnDataSource({"t": [], "x": []})
        self.shown = None           # (version, sample index) on screen
        self.mode = "wide"
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.layout = pn.Column(self.pane, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-mnist-sample"])

    def _figure(self):
        fig = figure("Sample", X_LABEL["screen"].format(which="validation"),
                     "input x (standardised)", height=230, x_range=(-5, 364),
                     y_range=(-3, 3))
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
            fit_range(self.fig.y_range, float(x.min()), float(x.max()), slack=1.0)
            self.fig.title.text = f"Sample {i} · true label {label}"
            self._label_axis()
        self.cursor.location = point
        self.label = label
        self.point = point

    def _label_axis(self):
        which = "validation" if self.lab.start == "trained" else "training"
        text = X_LABEL["phone" if self.mode == "phone" else "screen"].format(which=which)
        if self.fig.xaxis[0].axis_label != text:
            self.fig.xaxis.axis_label = text

    def set_mode(self, mode):
        """Fit the page layout (:data:`gle_lab.views.mnist_common.MODES`)."""
        self.mode = mode
        fit_mode(self.fig, mode)
        self._label_axis()

    def __panel__(self):
        return self.layout
