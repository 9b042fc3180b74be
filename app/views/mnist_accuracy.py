"""Accuracy: over the last samples shown (running), and the validation accuracy after each
completed epoch against the published GLE 15k curve (median and range over its seeds)."""
from __future__ import annotations

import panel as pn
from bokeh.layouts import row
from bokeh.models import ColumnDataSource, Span
from panel.viewable import Viewer

from .mnist_common import figure, fixed
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
        self.pane = pn.pane.Bokeh(self._figure(), sizing_mode="stretch_width")
        self.layout = pn.Column(self.pane, sizing_mode="stretch_width", margin=0,
                                css_classes=["gle-view-mnist-accuracy"])
        self.rebuild()

    def _figure(self):
        run = figure(f"Accuracy, last {self.acc_over} samples",
                     "samples shown", "accuracy (%)", height=250, y_range=fixed(0, 100))
        run.line("samples", "acc", source=self.running, line_width=2, color="#2171b5")
        run.add_layout(Span(location=10, dimension="width", line_dash="dashed",
                            line_color="#9e9e9e"))
        self.val_line = Span(location=0, dimension="width", line_color="#1a9641",
                             line_dash="dotted", line_width=2, visible=False)
        run.add_layout(self.val_line)
        ep = figure("Validation accuracy per epoch", "epoch",
                    "validation accuracy (%)", height=250, y_range=fixed(0, 100))
        ep.varea("epoch", "lo", "hi", source=self.reference, fill_color="#bdbdbd",
                 fill_alpha=0.5, legend_label="published GLE 15k: range")
        ep.line("epoch", "median", source=self.reference, color="#636363", line_width=2,
                legend_label="median (10 seeds)")
        ep.line("epoch", "acc", source=self.checkpoint, color="#1a9641", line_width=2)
        ep.scatter("epoch", "acc", source=self.checkpoint, color="#1a9641", size=5,
                   legend_label="checkpoint's run")
        ep.scatter("epoch", "acc", source=self.session, color="#d62728", size=8,
                   marker="diamond", legend_label="this session (200 held-out)")
        ep.legend.location = "bottom_right"
        ep.legend.label_text_font_size = "10px"
        ep.legend.background_fill_alpha = 0.7
        ep.legend.padding = 2
        ep.legend.spacing = 0
        self.run_fig, self.epoch_fig = lean_renderers(run), lean_renderers(ep)
        return row(run, ep, sizing_mode="stretch_width")

    def rebuild(self):
        lab = self.lab
        pts = lab.accuracy_curve[-KEEP:]
        lab.new_accuracy.clear()
        self.running.data = {"samples": [p[0] for p in pts], "acc": [p[1] for p in pts]}
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
        if len(lab.validations) != self._n_val:
            self._n_val = len(lab.validations)
            v = lab.validations
            self.session.data = {"epoch": [p[0] for p in v], "acc": [p[1] for p in v]}
        if slow:
            acc = lab.running_accuracy()
            self.run_fig.title.text = (
                f"Accuracy, last {min(self.acc_over, len(lab.results))} samples: "
                f"{acc:.1f} %" if acc == acc else f"Accuracy, last {self.acc_over} samples")

    def __panel__(self):
        return self.layout
