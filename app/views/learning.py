"""Learning view: W, b, τm, τr of the student over time (teacher values as dashed reference
lines) and the loss on a log axis."""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, Range1d, Span
from panel.viewable import Viewer

from ..streaming import StableRange, follow_ranges
from .style import (add_legend, add_line, apply_plot_mode, decade_axis, make_figure,
                    neuron_color)

#: parameter points kept on screen (one per learning update of the view)
ROLLOVER = 4000


#: line styles telling apart the weights into one neuron (its colour) by their input
WEIGHT_DASHES = ("solid", "dashed", "dotdash", "dotted")
#: each plot's height (px), and what a phone adds for the key below it
FIGURE_HEIGHT, PHONE_EXTRA = 200, 60


class LearningView(Viewer):
    title = "Learning"

    def __init__(self, state, **params):
        super().__init__(**params)
        self.state = state
        self.mode = "wide"
        self.layout = pn.Column(sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-learning"])
        self.rebuild()

    def _columns(self):
        vals = self.state.parameter_values()
        cols = ["t", "loss"]
        for kind, short in (("W", "W"), ("b", "b"), ("tau_m", "tm"), ("tau_r", "tr")):
            cols += [f"{short}{k}" for k in range(len(vals[kind][0]))]
        return cols

    def _weight_labels(self):
        return list(self.state.param.weight_select.objects.keys())

    def rebuild(self):
        st = self.state
        self.source = ColumnDataSource({c: np.zeros(0) for c in self._columns()})
        vals = st.parameter_values()
        # a Range1d the server moves (0 … t), not a DataRange1d: BokehJS reports a data
        # range's every recomputation back to the server (a websocket message per update)
        self.x_range = Range1d(start=0.0, end=1.0)
        # y axes the server sets too (they also keep the teacher's reference lines in view)
        cols = self._columns()
        self.y_ranges = {
            "W": StableRange([c for c in cols if c[0] in "Wb"]),
            "tau": StableRange([c for c in cols if c.startswith(("tm", "tr"))]),
            "loss": StableRange(["loss"], log=True)}
        self.references = {"W": [], "tau": [], "loss": []}
        self.spans = []                 # (Span, kind, index): the teacher's values
        self.pushes = 0
        wfig = make_figure("Weights W, biases b (teacher dashed)", "time t (a.u.)", "value",
                           height=FIGURE_HEIGHT, x_range=self.x_range,
                           y_range=self.y_ranges["W"].range)
        tfig = make_figure("Time constants τm, τr (τr dotted, teacher dashed)",
                           "time t (a.u.)", "τ (a.u.)", height=FIGURE_HEIGHT,
                           x_range=self.x_range, y_range=self.y_ranges["tau"].range)
        lfig = make_figure("Loss (mean squared error)", "time t (a.u.)", "loss",
                           height=FIGURE_HEIGHT, y_axis_type="log", x_range=self.x_range,
                           y_range=self.y_ranges["loss"].range)
        src = self.source
        offsets = np.cumsum([0] + list(st.net.layer_sizes[1:]))
        for k, (lab, (layer, post, pre)) in enumerate(
                st.param.weight_select.objects.items()):
            # a weight in the colour of the neuron it feeds, styled by its input
            c = neuron_color(int(offsets[layer]) + post)
            add_line(wfig, "t", f"W{k}", src, color=c, width=2.5,
                     dash=WEIGHT_DASHES[pre % len(WEIGHT_DASHES)], label=lab.replace(": ", " "))
            if vals["W"][1] is not None:
                span = Span(location=0.0, dimension="width", line_color=c,
                            line_dash="dashed", line_width=1.5)
                wfig.add_layout(span)
                self.spans.append((span, "W", k))
        self.learn_b = learn_b = self._shows_b(vals)
        for j, lab in enumerate(st.labels):
            c = neuron_color(j)
            if learn_b:
                add_line(wfig, "t", f"b{j}", src, color=c, width=2, dash="dotdash",
                         label=f"b {lab}")
            add_line(tfig, "t", f"tm{j}", src, color=c, width=2.5, label=f"τm {lab}")
            add_line(tfig, "t", f"tr{j}", src, color=c, width=2, dash="dotted",
                     label=f"τr {lab}")
            for kind in ("tau_m", "tau_r"):
                if vals[kind][1] is not None:
                    span = Span(location=1.0, dimension="width", line_color=c,
                                line_dash="dashed", line_width=1.5)
                    tfig.add_layout(span)
                    self.spans.append((span, kind, j))
        add_line(lfig, "t", "loss", src, color="black", width=2)
        decade_axis(lfig.yaxis, spread=True)
        self.figs = (wfig, tfig, lfig)
        self.refresh_references()
        add_legend(wfig)
        add_legend(tfig)
        self.set_mode(self.mode)
        self.layout[:] = [pn.pane.Bokeh(f, sizing_mode="stretch_width") for f in self.figs]

    def set_mode(self, mode):
        """Fit the plots to a page layout (toolbar, legend place); on a phone each plot is
        taller by what its key below it takes (beside it on larger screens)."""
        self.mode = mode
        for fig in self.figs:
            apply_plot_mode(fig, mode)
            height = FIGURE_HEIGHT + (PHONE_EXTRA if mode == "phone" else 0)
            if fig.height != height:
                fig.height = height

    def _shows_b(self, vals):
        return bool(self.state.learn_b or np.any(vals["b"][0] != 0))

    def refresh_references(self):
        """Move the teacher's reference lines to its current values (a new seed may draw a
        new teacher and student); a τ line is shown only where student and teacher differ.
        Returns False if the figures' lines themselves would change (then rebuild)."""
        vals = self.state.parameter_values()
        if self._shows_b(vals) != self.learn_b:
            return False
        self.references = {"W": [], "tau": [], "loss": []}
        for span, kind, i in self.spans:
            ref, own = vals[kind][1], vals[kind][0]
            value = float(ref[i])
            shown = kind == "W" or ref[i] != own[i]
            span.update(location=value, visible=shown)
            if shown:
                self.references["W" if kind == "W" else "tau"].append(value)
        return True

    def clear(self):
        self.source.data = {c: np.zeros(0) for c in self.source.data}
        self.x_range.update(start=0.0, end=1.0)
        for yr in self.y_ranges.values():
            yr.reset()

    def _follow(self, t):
        """Show everything kept so far: from the oldest kept row to ``t``."""
        t_data = self.source.data["t"]
        start = float(t_data[0]) if len(t_data) > 0 else t
        end = max(t, start + 1e-6)
        pad = 0.02 * (end - start)
        self.x_range.update(start=start - pad, end=end + pad)

    def push(self, loss):
        """Append the current parameters and the mean loss since the last push."""
        st = self.state
        vals = st.parameter_values()
        row = {"t": [st.sim.t],
               "loss": [loss if np.isfinite(loss) and loss > 0 else
                        (1e-30 if np.isfinite(loss) else np.nan)]}
        for kind, short in (("W", "W"), ("b", "b"), ("tau_m", "tm"), ("tau_r", "tr")):
            for k, v in enumerate(vals[kind][0]):
                row[f"{short}{k}"] = [float(v)]
        self.source.stream(row, rollover=ROLLOVER)
        self._follow(float(st.sim.t))
        follow_ranges(self.y_ranges, self.pushes, self.source.data, row,
                      also={k: np.asarray(v, dtype=float) for k, v in self.references.items()})
        self.pushes += 1

    def __panel__(self):
        return self.layout

    @property
    def panel(self):
        return self.layout
