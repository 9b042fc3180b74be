"""Accuracy: over the last samples shown (running), and the validation accuracy after each
completed epoch against the published GLE 15k curve (median and range over its seeds)."""
from __future__ import annotations

import panel as pn
from bokeh.models import ColumnDataSource, Span
from panel.viewable import Viewer

from .mnist_common import (arrange, figure, fit_mode, fit_pair, fit_range, fixed,
                           legend_style)
from .style import lean_renderers

#: points kept on the running-accuracy plot
KEEP = 4000


class MnistAccuracyView(Viewer):
    """Running accuracy (streamed) and validation per epoch vs the published curve."""

    def __init__(self, lab, **params):
        from gle_lab.mnist import ACC_OVER, reference_curve
        super().__init__(**params)
        self.lab = lab
        self.acc_over = ACC_OVER
        ref = reference_curve()
        self.reference = ColumnDataSource({"epoch": ref["epoch"], "median": ref["median"],
                                           "lo": ref["min"], "hi": ref["max"]})
        self.running = ColumnDataSource({"samples": [], "acc": []})
        self.checkpoint = ColumnDataSource({"epoch": [], "acc": []})
        self.session = ColumnDataSource({"epoch": [], "acc": []})
        self._n_val = None
        self.mode = "wide"
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.layout = pn.Column(self.pane, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-mnist-accuracy"])
        self.rebuild()

    def _figure(self):
        run = figure(f"Accuracy, last {self.acc_over} samples",
                     "samples shown", "accuracy (%)", height=250, x_range=fixed(0, 10),
                     y_range=fixed(0, 100))
        run.line("samples", "acc", source=self.running, line_width=2, color="#2171b5")
        run.add_layout(Span(location=10, dimension="width", line_dash="dashed",
                            line_color="#9e9e9e"))
        self.val_line = Span(location=0, dimension="width", line_color="#1a9641",
                             line_dash="dotted", line_width=2, visible=False)
        run.add_layout(self.val_line)
        self.last_epoch = float(max(self.reference.data["epoch"]))
        ep = figure("Validation accuracy per epoch", "epoch", "validation accuracy (%)",
                    height=250, x_range=fixed(0, self.last_epoch + 5), y_range=fixed(0, 100))
        ep.varea("epoch", "lo", "hi", source=self.reference, fill_color="#bdbdbd",
                 fill_alpha=0.5, legend_label="published: range")
        ep.line("epoch", "median", source=self.reference, color="#636363", line_width=2,
                legend_label="published: median")
        ep.line("epoch", "acc", source=self.checkpoint, color="#1a9641", line_width=2)
        ep.scatter("epoch", "acc", source=self.checkpoint, color="#1a9641", size=5,
                   legend_label="checkpoint's run")
        ep.scatter("epoch", "acc", source=self.session, color="#d62728", size=8,
                   marker="diamond", legend_label="this session")
        ep.xaxis.ticker.desired_num_ticks = 5
        legend = legend_style(ep)
        # shown once this session has validated an epoch (an empty source has no glyph)
        self.session_item = legend.items[-1]
        self.session_item.visible = False
        self.run_fig, self.epoch_fig = lean_renderers(run), lean_renderers(ep)
        for fig in (run, ep):
            fit_mode(fig, self.mode)
        return arrange([run, ep], self.mode)

    def set_mode(self, mode):
        """Fit the page layout (:data:`gle_lab.views.mnist_common.MODES`): the legend
        beside the epochs' plot (below it on a phone, where the plots are one column)."""
        fit_pair(self, (self.run_fig, self.epoch_fig), mode)

    def rebuild(self):
        lab = self.lab
        pts = lab.accuracy_curve[-KEEP:]
        lab.new_accuracy.clear()
        self.running.data = {"samples": [p[0] for p in pts], "acc": [p[1] for p in pts]}
        self.run_fig.x_range.update(start=0, end=10)
        self._fit_samples()
        hist = lab.val_history
        self.checkpoint.data = {"epoch": [h[0] for h in hist], "acc": [h[1] for h in hist]}
        if lab.meta is not None:
            self.val_line.location = lab.meta["val_acc"]
            self.val_line.visible = True
        else:
            self.val_line.visible = False
        self._n_val = None

    def update(self, slow=False):
        lab = self.lab
        new, lab.new_accuracy = lab.new_accuracy, []
        if new:
            self.running.stream({"samples": [p[0] for p in new], "acc": [p[1] for p in new]},
                                rollover=KEEP)
            self._fit_samples()
        if len(lab.validations) != self._n_val:
            self._n_val = len(lab.validations)
            v = lab.validations
            self.session.data = {"epoch": [p[0] for p in v], "acc": [p[1] for p in v]}
            if self.session_item.visible != bool(v):
                self.session_item.visible = bool(v)
            last = max([self.last_epoch] + [p[0] for p in v])
            if self.epoch_fig.x_range.end < last:
                self.epoch_fig.x_range.end = last + 5
        if slow:
            acc = lab.running_accuracy()
            self.run_fig.title.text = (
                f"Accuracy, last {min(self.acc_over, len(lab.results))} samples: "
                f"{acc:.1f} %" if acc == acc else f"Accuracy, last {self.acc_over} samples")

    def _fit_samples(self):
        samples = self.running.data["samples"]
        if len(samples):
            fit_range(self.run_fig.x_range, float(samples[0]), max(10.0, float(samples[-1])),
                      pad=0.02)

    def __panel__(self):
        return self.layout
