"""Export: the recorded history and the traces on screen as CSV, the figures as PNG or SVG.

* History CSV (:func:`history_csv`, the "Download history (CSV)" button): the run since t = 0
  as :class:`gle_lab.history.History` recorded it -- ``t``, ``input``, ``r_<neuron>``,
  ``r_<neuron>_teacher``, ``e_<neuron>``, ``eps_<neuron>``, ``loss``, every weight
  ``W_<pre>_to_<post>``, ``b_<neuron>``, ``tau_m_<neuron>``, ``tau_r_<neuron>`` -- after ``#``
  comment lines with the settings, the link, and the sampling interval. Its length is bounded
  (:data:`gle_lab.history.HISTORY_ROWS` rows at most: the whole run, at full resolution for
  the first 81.9 a.u. and ever more coarsely after, see that module).
* Window CSV (:func:`traces_csv`): one row per displayed sample, a ``t`` column and one column per
  signal (``input``, ``r_<neuron>``, ``r_<neuron>_teacher``, ``e_<neuron>``, ``eps_<neuron>``,
  plus any further column a view adds to the trace source), preceded by ``#`` comment lines with
  the preset, seed, every shared parameter and the link that reproduces the run. It is exactly
  what the Activity and Errors views show (the scrolling window, decimated to ≤ 1000 points),
  with ``lambda_<neuron>``, the AM adjoint λ the Errors view draws (empty on rows newer than
  its last refresh).
* Figures: every figure's toolbar has Bokeh's save tool, which saves what the browser drew, on
  the client, at screen resolution: PNG while figures use the canvas backend (the default, fast
  for live streaming). The "Figure format" switch re-renders every figure with Bokeh's SVG
  backend, after which the same save tool writes an SVG file (vector; slower to redraw while
  streaming: pause first). Server-side ``bokeh.io.export_png/svg`` is not used: it needs
  selenium and a WebDriver on the server and would render in a separate headless browser.
"""
from __future__ import annotations

import csv
import io

import numpy as np
import panel as pn
from bokeh.models import Plot

#: trace-source column prefix -> CSV name template
PREFIXES = (("tr", "r_{}_teacher"), ("eps", "eps_{}"), ("r", "r_{}"), ("e", "e_{}"),
            ("lam", "lambda_{}"))


def csv_columns(state, source_columns):
    """(source column, CSV name) pairs in export order."""
    labels = state.labels
    pairs = [("t", "t")]
    if "x" in source_columns:
        pairs.append(("x", "input"))
    teacher = state.sim.teacher is not None
    for j, lab in enumerate(labels):
        for prefix, tmpl in (("r", "r_{}"), ("tr", "r_{}_teacher"), ("e", "e_{}"),
                             ("eps", "eps_{}")):
            col = f"{prefix}{j}"
            if col in source_columns and (prefix != "tr" or teacher):
                pairs.append((col, tmpl.format(lab)))
    known = {c for c, _ in pairs} | {f"tr{j}" for j in range(len(labels))}
    for col in source_columns:                  # columns added by other views (e.g. λ)
        if col not in known:
            name = col
            for prefix, tmpl in PREFIXES:
                rest = col[len(prefix):]
                if col.startswith(prefix) and rest.isdigit() and int(rest) < len(labels):
                    name = tmpl.format(labels[int(rest)])
                    break
            pairs.append((col, name))
    return pairs


def header_lines(dashboard):
    st = dashboard.state
    lines = ["GLE Lab traces (the displayed window; time in a.u.)",
             f"title: {st.cfg['title']}",
             f"t_now: {st.sim.t:.6g}",
             f"dt: {st.net.dt:g}",
             f"decimation: {st.decimation} (one row per {st.decimation} Euler steps)",
             f"layer_sizes: {list(st.net.layer_sizes)}"]
    sharing = getattr(dashboard, "sharing", None)
    if sharing is None:
        lines += [f"preset: {st.preset}", f"seed: {st.seed}"]
    else:
        for k, v in sharing.values().items():
            if v is not None:
                lines.append(f"{k}: {v}")
        lines.append(f"link: {sharing.query_string()}")
        lines.append(f"url: {sharing.link_url()}")
    return lines


def _cell(value, name):
    if not np.isfinite(value):
        return ""
    # a time is a sum of steps dt: 21.240000000000002 is 21.24
    return f"{value:.12g}" if name == "t" else repr(float(value))


def history_csv(dashboard):
    """The recorded history (see module doc) as CSV text."""
    st = dashboard.state
    hist = st.history
    rows = hist.rows() if hist is not None else np.zeros((0, len(st.history_columns())))
    every = hist.every if hist is not None else 1
    out = io.StringIO()
    lines = header_lines(dashboard)
    lines[0] = ("GLE Lab recorded history (since t = 0; time in a.u.; at most "
                f"{hist.capacity if hist is not None else 0} rows, the sampling interval "
                "doubling whenever they are full)")
    lines = [ln for ln in lines if not ln.startswith("decimation:")]
    lines.insert(4, f"sampling: one row per {every} Euler step(s) = {every * st.net.dt:g} a.u.")
    lines.insert(5, "columns: W_<pre>_to_<post> weights, b biases, tau_m/tau_r time constants "
                    "(learned values as they evolve); r_<n>_teacher the teacher's rates")
    for line in lines:
        out.write(f"# {line}\n")
    writer = csv.writer(out, lineterminator="\n")
    columns = hist.columns if hist is not None else st.history_columns()
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v, name) for v, name in zip(row, columns)])
    return out.getvalue()


def adjoint_columns(dashboard, t):
    """The Errors view's λ (``lambda_<neuron>``) on the trace rows' times ``t``: its own
    source holds the samples of the window it was last computed for (a few times a second
    and on pause), which sit on the traces' samples; rows it does not cover (newer than
    that window) are NaN. ``[]`` when no λ is drawn."""
    view = getattr(dashboard, "errors", None)
    src = getattr(view, "adjoint_source", None)
    if src is None:
        return []
    lam_t = np.asarray(src.data.get("t", []), dtype=float)
    t = np.asarray(t, dtype=float)
    found = np.zeros(len(t), dtype=bool)
    at = np.zeros(len(t), dtype=int)
    if len(lam_t) and len(t):
        at = np.clip(np.searchsorted(lam_t, t), 1, len(lam_t)) - 1
        nxt = np.minimum(at + 1, len(lam_t) - 1)
        at = np.where(np.abs(lam_t[nxt] - t) < np.abs(lam_t[at] - t), nxt, at)
        found = np.abs(lam_t[at] - t) <= dashboard.state.net.dt / 2
    cols = []
    for j, lab in enumerate(dashboard.state.labels):
        lam = np.asarray(src.data.get(f"lam{j}", np.zeros(len(lam_t))), dtype=float)
        col = np.full(len(t), np.nan)
        if len(lam) == len(lam_t):
            col[found] = lam[at[found]]
        cols.append((f"lambda_{lab}", col))
    return cols


def traces_csv(dashboard):
    """The displayed traces as CSV text (``#`` header lines, then a header row and data),
    with the AM adjoint λ of the Errors view where it is drawn."""
    st = dashboard.state
    data = dashboard.traces.source.data
    pairs = csv_columns(st, list(data.keys()))
    names = [name for _, name in pairs]
    cols = [np.asarray(data[c], dtype=float) for c, _ in pairs]
    for name, col in adjoint_columns(dashboard, cols[0]):
        names.append(name)
        cols.append(col)
    out = io.StringIO()
    for line in header_lines(dashboard):
        out.write(f"# {line}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    n = min((len(c) for c in cols), default=0)
    for i in range(n):
        writer.writerow([_cell(c[i], name) for c, name in zip(cols, names)])
    return out.getvalue()


def dashboard_figures(layout):
    """Every Bokeh figure shown in ``layout`` (through its ``pn.pane.Bokeh`` panes)."""
    figs = []

    def walk(obj):
        if isinstance(obj, pn.pane.Bokeh) and isinstance(obj.object, Plot):
            figs.append(obj.object)
        for child in getattr(obj, "objects", []) or []:
            walk(child)
    walk(layout)
    return figs


class ExportView:
    """The "Export" card: CSV download and the figure format switch."""

    title = "Export"

    def __init__(self, dashboard):
        self.dash = dashboard
        self.history = pn.widgets.FileDownload(
            callback=self._history_file, filename="gle-lab-history.csv", embed=False,
            label="Download history (CSV)", sizing_mode="stretch_width",
            css_classes=["gle-csv-history"],
            description="The run since t = 0: input, rates, e, ε, loss, W, b, τm, τr "
                        "(bounded: at most 8192 rows, ever more coarsely sampled).")
        self.csv = pn.widgets.FileDownload(
            callback=self._csv_file, filename="gle-lab-traces.csv", embed=False,
            label="Download visible window (CSV)",
            sizing_mode="stretch_width", css_classes=["gle-csv"],
            description="The traces on screen, as drawn (with the λ overlay when shown).")
        self.format = pn.widgets.RadioButtonGroup(
            label="Figure format", options=["PNG", "SVG"], value="PNG",
            sizing_mode="stretch_width", css_classes=["gle-figure-format"])
        self.format.param.watch(lambda e: self.apply_format(), "value")
        dashboard.state.param.watch(lambda e: self.apply_format(), "structure")
        self.help = pn.pane.Markdown(
            "Figures: use the save icon in each figure's toolbar. **PNG** is saved as drawn "
            "(canvas). Switch to **SVG** to save vector files (redraws are slower: pause "
            "first).", styles={"font-size": "12px", "color": "#555"}, margin=(0, 10))
        self.pane = pn.Card(self.history, self.csv, pn.pane.Str("Figure format (toolbar save icon):",
                                                  margin=(4, 10, 0, 10)),
                            self.format, self.help, title="Export", collapsed=False,
                            sizing_mode="stretch_width", margin=(4, 4),
                            header_background="#eef2f7", css_classes=["gle-export"])
        self.pane.visible = not dashboard.state.is_hidden("export")

    def _history_file(self):
        st = self.dash.state
        self.history.filename = f"gle-lab-{st.preset}-seed{st.seed}-history.csv"
        return io.StringIO(history_csv(self.dash))

    def _csv_file(self):
        st = self.dash.state
        self.csv.filename = f"gle-lab-{st.preset}-seed{st.seed}-traces.csv"
        return io.StringIO(traces_csv(self.dash))

    def apply_format(self):
        backend = "svg" if self.format.value == "SVG" else "canvas"
        for fig in dashboard_figures(getattr(self.dash, "layout", None)):
            if fig.output_backend != backend:
                fig.output_backend = backend

    @property
    def panel(self):
        return self.pane
