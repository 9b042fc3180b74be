"""Microcircuit view (paper Fig. 3): where rates and errors travel.

Each neuron of the student is drawn as a pair, outlined in the neuron's colour (the same as in
every plot): a representation neuron (triangle, the pyramidal cell with rate r) and its error
neuron (circle, error e); the fill darkens with |r| and |e|. Connections:

* forward weights W: representation ℓ-1 → representation ℓ (solid, width ∝ |W|);
* error feedback Wᵀ: error neuron ℓ+1 → error neuron ℓ (dashed); its opacity follows the
  error currently sent, |W_ij e_i|, so one sees where errors travel;
* lateral: representation ↔ error neuron of the same neuron (dotted grey): φ′(ŭ) gates the error
  input ε = φ′ ⊙ Wᵀe, and γ e feeds back into the soma;
* output: the target (teacher) compares with the output rate, g = β (y − r), into the output
  error neuron.

The figure is built once per network shape; the frame tick only patches the colour / alpha
columns of two ColumnDataSources (:meth:`MicrocircuitView.update`).
"""
from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, Range1d
from bokeh.palettes import Greys256
from panel.viewable import Viewer

from .style import FONT_PX, add_legend, apply_plot_mode, make_figure, neuron_color

#: edges: rates forward (solid), errors back (dashed); hue is kept for the neurons
REP_COLOR, ERR_COLOR = "#333333", "#333333"
#: light → dark (shape, not hue, tells a rate from an error)
REDS = BLUES = list(reversed(Greys256))[10:200]
DX, DY = 2.2, 1.6          # layer spacing, neuron spacing
ERR_OFFSET = (0.7, -0.65)  # error neuron relative to its representation neuron


def _shade(palette, x):
    """Palette colour for magnitudes x in [0, 1]."""
    idx = np.clip((np.asarray(x) * (len(palette) - 1)).astype(int), 0, len(palette) - 1)
    return [palette[i] for i in idx]


class MicrocircuitView(Viewer):
    title = "Microcircuit"

    def __init__(self, state, **params):
        super().__init__(**params)
        self.state = state
        self.pane = pn.pane.Bokeh(sizing_mode="stretch_width",
                                  css_classes=["gle-microcircuit", "gle-view-microcircuit"])
        self.rebuild()
        state.param.watch(lambda e: self.rebuild(), "structure")

    # ------------------------------------------------------------------ geometry
    def _positions(self):
        sizes = self.state.net.layer_sizes
        rep = []
        for layer, n in enumerate(sizes[1:]):
            for i in range(n):
                rep.append(((layer + 1) * DX, ((n - 1) / 2 - i) * DY))
        n_in = sizes[0]
        inputs = [(0.0, ((n_in - 1) / 2 - i) * DY) for i in range(n_in)]
        return np.array(rep, dtype=float), np.array(inputs, dtype=float)

    def rebuild(self):
        st = self.state
        net = st.net
        sizes = list(net.layer_sizes)
        rep, inputs = self._positions()
        err = rep + np.array(ERR_OFFSET)
        n = len(rep)
        self.n = n
        offsets = np.cumsum([0] + sizes[1:])
        labels = st.labels
        # nodes: representation neurons then error neurons
        self.nodes = ColumnDataSource({
            "x": np.r_[rep[:, 0], err[:, 0]], "y": np.r_[rep[:, 1], err[:, 1]],
            "marker": ["triangle"] * n + ["circle"] * n,
            "line": [neuron_color(j) for j in range(n)] * 2,
            "color": ["#ffffff"] * (2 * n),
            "value": [0.0] * (2 * n),
            "label": [f"{lab} r" for lab in labels] + [f"{lab} e" for lab in labels],
        })
        # forward W edges, feedback Wᵀ edges (one per weight), lateral edges
        fwd = {k: [] for k in ("x0", "y0", "x1", "y1")}
        fb = {k: [] for k in ("x0", "y0", "x1", "y1")}
        self._fb_index = []          # (layer, post global, pre global or None)
        for layer, W in enumerate(net.W):
            for post in range(W.shape[0]):
                jp = offsets[layer] + post
                for pre in range(W.shape[1]):
                    src = inputs[pre] if layer == 0 else rep[offsets[layer - 1] + pre]
                    fwd["x0"].append(src[0]); fwd["y0"].append(src[1])
                    fwd["x1"].append(rep[jp][0]); fwd["y1"].append(rep[jp][1])
                    if layer > 0:
                        jq = offsets[layer - 1] + pre
                        fb["x0"].append(err[jp][0]); fb["y0"].append(err[jp][1])
                        fb["x1"].append(err[jq][0]); fb["y1"].append(err[jq][1])
                        self._fb_index.append((layer, post, pre, jp))
        weights = self._weight_columns()
        fwd.update(weights["forward"])
        fb.update(weights["feedback"])
        fb["alpha"] = [0.15] * len(fb["w"])
        self.forward = ColumnDataSource(fwd)
        self.feedback = ColumnDataSource(fb)
        lat = ColumnDataSource({"x0": rep[:, 0], "y0": rep[:, 1], "x1": err[:, 0],
                                "y1": err[:, 1]})
        # output: target node feeding the output error neurons
        out_lo = offsets[-2]
        tgt = err[out_lo:] + np.array([DX * 0.8, 0.0])
        target = ColumnDataSource({"x": tgt[:, 0], "y": tgt[:, 1],
                                   "label": ["target y" if st.sim.teacher is not None
                                             else "target"] * len(tgt)})
        tedge = ColumnDataSource({"x0": tgt[:, 0], "y0": tgt[:, 1], "x1": err[out_lo:, 0],
                                  "y1": err[out_lo:, 1]})
        oedge = ColumnDataSource({"x0": rep[out_lo:, 0], "y0": rep[out_lo:, 1],
                                  "x1": tgt[:, 0], "y1": tgt[:, 1]})
        ins = ColumnDataSource({"x": inputs[:, 0], "y": inputs[:, 1],
                                "label": ["input x"] if len(inputs) == 1 else
                                [f"x{i}" for i in range(len(inputs))]})

        fig = make_figure("Microcircuit (paper Fig. 3): representation ▲ coloured by rate r, "
                          "error neurons ● by error e", "", "", height=340,
                          match_aspect=True)
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        xs = np.r_[rep[:, 0], err[:, 0], inputs[:, 0], tgt[:, 0]]
        ys = np.r_[rep[:, 1], err[:, 1], inputs[:, 1], tgt[:, 1]]
        fig.x_range = Range1d(xs.min() - 0.8, xs.max() + 0.8)
        fig.y_range = Range1d(ys.min() - 1.0, ys.max() + 0.8)
        fig.segment("x0", "y0", "x1", "y1", source=self.forward, color=REP_COLOR,
                    line_width="width", alpha=0.55, legend_label="forward W (rates)")
        self.feedback_renderer = fig.segment(
            "x0", "y0", "x1", "y1", source=self.feedback, color=ERR_COLOR, line_width="width",
            line_alpha="alpha", line_dash="dashed", legend_label="feedback Wᵀ (errors)")
        fig.segment("x0", "y0", "x1", "y1", source=lat, color="#888888", line_width=2,
                    line_dash="dotted", legend_label="lateral: φ′ gating, γe to soma")
        fig.segment("x0", "y0", "x1", "y1", source=oedge, color=REP_COLOR, line_width=1.5,
                    line_dash="dotted", alpha=0.6)
        fig.segment("x0", "y0", "x1", "y1", source=tedge, color=ERR_COLOR, line_width=2,
                    alpha=0.7, legend_label="output error g = β(y − r)")
        fig.scatter("x", "y", source=ins, marker="square", size=18, color="#dddddd",
                    line_color="#444444")
        fig.scatter("x", "y", source=target, marker="diamond", size=22, color="#eeeeee",
                    line_color="#444444")
        self.node_renderer = fig.scatter("x", "y", source=self.nodes, marker="marker",
                                         size=30, fill_color="color", line_color="line",
                                         line_width=4)
        fig.text(x=list(np.r_[rep[:, 0], err[:, 0]]),
                 y=list(np.r_[rep[:, 1] + 0.3, err[:, 1] - 0.55]),
                 text=[f"{lab}" for lab in labels] + [f"e {lab}" for lab in labels],
                 text_font_size=f"{FONT_PX - 2}px", text_align="center",
                 text_baseline="bottom", text_color="#222222")
        for src in (ins, target):
            fig.text("x", "y", text="label", source=src, y_offset=16,   # below the node
                     text_font_size=f"{FONT_PX - 2}px", text_align="center",
                     text_baseline="top", text_color="#222222")
        add_legend(fig, side="below")                 # outside: it never covers a node
        mode = getattr(self, "mode", "wide")
        apply_plot_mode(fig, mode, move_legend=False, short_title=self._short(mode))
        self.fig = fig
        self._scale = {"r": 1e-6, "e": 1e-6}
        self.pane.object = fig
        self.update()

    # ------------------------------------------------------------------ live
    def current(self):
        """(r, e) of the shown stream at the latest recorded step (zeros before the first)."""
        probes = self.state.sim.probes
        if probes["t"].total == 0:
            return np.zeros(self.n), np.zeros(self.n)
        return (np.asarray(probes["r"].last(1)[0], dtype=float),
                np.asarray(probes["error"].last(1)[0], dtype=float))

    def _weight_columns(self):
        """|W| and line width of every forward edge (layer, post, pre order) and feedback
        edge (:attr:`_fb_index` order); widths 1-5 px relative to the largest |W|."""
        W = self.state.net.W
        fwd = [abs(float(v)) for w in W for v in w.ravel()]
        fb = [abs(float(W[layer][post, pre])) for layer, post, pre, _ in self._fb_index]
        wmax = max([1e-9] + fwd)
        return {name: {"w": ws, "width": [1.0 + 4.0 * w / wmax for w in ws]}
                for name, ws in (("forward", fwd), ("feedback", fb))}

    def refresh_weights(self):
        """Edge widths for the current weights (same network shape, new values)."""
        weights = self._weight_columns()
        if len(weights["forward"]["w"]) != len(self.forward.data["w"]):
            self.rebuild()
            return
        self.forward.data.update(weights["forward"])
        self.feedback.data.update(weights["feedback"])

    def update(self):
        """Recolour nodes by |r| and |e| and fade feedback edges by the error they carry."""
        if self.state.sim is None:
            return
        r, e = self.current()
        if len(r) != self.n:
            return
        for key, v in (("r", r), ("e", e)):
            m = float(np.max(np.abs(v))) if v.size else 0.0
            self._scale[key] = max(0.97 * self._scale[key], m, 1e-6)
        cr = _shade(REDS, np.abs(r) / self._scale["r"])
        ce = _shade(BLUES, np.abs(e) / self._scale["e"])
        n = self.n
        self.nodes.patch({"color": [(slice(0, 2 * n), cr + ce)],
                          "value": [(slice(0, 2 * n), [float(v) for v in np.r_[r, e]])]})
        if self._fb_index:
            net = self.state.net
            sent = np.array([abs(float(net.W[layer][post, pre]) * e[jp])
                             for layer, post, pre, jp in self._fb_index])
            top = max(float(sent.max()), 1e-12)
            alpha = [float(a) for a in 0.12 + 0.88 * sent / top]
            self.feedback.patch({"alpha": [(slice(0, len(alpha)), alpha)]})

    def set_mode(self, mode):
        """Fit the plot to a page layout (toolbar)."""
        self.mode = mode
        apply_plot_mode(getattr(self, "fig", None), mode, move_legend=False,
                        short_title=self._short(mode))

    @staticmethod
    def _short(mode):
        # a phone's width, or half of a projector's (presentation: below the Errors plot)
        return mode in ("phone", "present")

    def __panel__(self):
        return self.pane

    @property
    def panel(self):
        return self.pane
