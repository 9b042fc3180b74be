"""Credit assignment: the size of the GLE error e in every layer over time (how the output
error reaches the first layer), and one hidden layer's rates as a heat map (neurons × time):
the network's spatio-temporal filtering of the input (paper Fig. 6)."""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper
from panel.viewable import Viewer

from .mnist_common import (HEAT_PALETTE, LAYER_COLORS, arrange, decades, figure, fit_mode,
                           legend_style)
from .style import lean_renderers

#: the heat map shows every HEAT_EVERY-th step (fewer bytes per redraw)
HEAT_EVERY = 2


class MnistCreditView(Viewer):
    """|e| per layer (streamed lines, log axis) and the heat map of one hidden layer."""

    def __init__(self, lab, **params):
        super().__init__(**params)
        self.lab = lab
        self.mode = "wide"
        n = lab.net.n_layers
        self.names = [f"layer {i}" for i in range(1, n)] + ["output"]
        self.errors = ColumnDataSource({"t": [], **{f"e{i}": [] for i in range(n)}})
        self.heat_source = ColumnDataSource({"image": [np.zeros((1, 1), np.float32)],
                                             "x": [0], "y": [0], "dw": [1], "dh": [1]})
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.layout = pn.Column(self.pane, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-mnist-credit"])
        self.rebuild()

    def _figure(self):
        err = figure("Credit assignment: mean |e| per layer", "time t (a.u.)",
                     "mean |e| (stream 0)", height=250, y_axis_type="log", x_range=(0, 1),
                     y_range=(1e-4, 10))
        for i, name in enumerate(self.names):
            err.line("t", f"e{i}", source=self.errors, color=LAYER_COLORS[i % 7],
                     line_width=2, legend_label=name)
        legend_style(err)
        self.mapper = LinearColorMapper(palette=HEAT_PALETTE, low=-1, high=1)
        heat = figure("Rates r of hidden layer 3", "steps of the last sample (ago → now)",
                      "neuron", height=250, x_range=(-self.lab.L, 0), y_range=(0, 1))
        heat.image("image", x="x", y="y", dw="dw", dh="dh", source=self.heat_source,
                   color_mapper=self.mapper)
        heat.add_layout(ColorBar(color_mapper=self.mapper, width=10), "right")
        heat.xaxis.ticker.desired_num_ticks = 4
        self.err_fig, self.heat_fig = lean_renderers(err), lean_renderers(heat)
        for fig in (err, heat):
            fit_mode(fig, self.mode)
        return arrange([err, heat], self.mode)

    def set_mode(self, mode):
        """Fit the page layout (:data:`gle_lab.views.mnist_common.MODES`): the layers'
        legend beside the |e| plot (below it on a phone, in four columns)."""
        stacked = (mode == "phone") != (self.mode == "phone")
        self.mode = mode
        fit_mode(self.err_fig, mode, legend_cols=4)
        fit_mode(self.heat_fig, mode)
        if stacked:
            self.pane.object = arrange([self.err_fig, self.heat_fig], mode)

    def rebuild(self):
        lab = self.lab
        rows = list(lab.error_curve)
        lab.new_errors.clear()
        self.maxlen = lab.error_curve.maxlen
        self.errors.data = self._columns(rows)
        self._fit_errors()
        self.heat_layer = None

    def _columns(self, rows):
        n = len(self.names)
        if not rows:
            return {"t": [], **{f"e{i}": [] for i in range(n)}}
        vals = np.array([r[1] for r in rows])
        vals = np.maximum(vals, 1e-12)            # log axis: an exact 0 has no place
        return {"t": np.array([r[0] for r in rows]),
                **{f"e{i}": vals[:, i] for i in range(n)}}

    def update(self, slow=False):
        lab = self.lab
        new, lab.new_errors = lab.new_errors, []
        if new:
            self.errors.stream(self._columns(new), rollover=self.maxlen)
            self._fit_errors()
        if slow:
            img = lab.heat()[:, ::-1][:, ::HEAT_EVERY][:, ::-1].astype(np.float32)
            n_neurons, n_t = img.shape if img.size else (1, 1)
            if not img.size:
                img = np.zeros((1, 1), np.float32)
            self.heat_source.data = {"image": [img], "x": [-n_t * HEAT_EVERY], "y": [0],
                                     "dw": [n_t * HEAT_EVERY], "dh": [n_neurons]}
            if self.heat_fig.y_range.end != n_neurons:
                self.heat_fig.y_range.update(start=0, end=n_neurons)
            if self.heat_layer != lab.layer:
                self.heat_layer = lab.layer
                kind = "linear" if lab.layer == 1 else "tanh"
                self.heat_fig.title.text = f"Rates r of hidden layer {lab.layer} ({kind})"

    def _fit_errors(self):
        """The time axis follows the window of |e| shown; the log axis whole decades."""
        data = self.errors.data
        t = data["t"]
        if not len(t):
            return
        t0, t1 = float(t[0]), float(t[-1])
        if t1 > t0 and (self.err_fig.x_range.start, self.err_fig.x_range.end) != (t0, t1):
            self.err_fig.x_range.update(start=t0, end=t1)
        vals = np.concatenate([np.asarray(data[f"e{i}"], float)
                               for i in range(len(self.names))])
        vals = vals[np.isfinite(vals) & (vals > 1e-12)]
        if vals.size:
            decades(self.err_fig.y_range, float(vals.min()), float(vals.max()))

    def __panel__(self):
        return self.layout
