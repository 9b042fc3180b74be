"""Learning curves of ``gle-run mnist1d`` runs over the published ones (paper Fig. 6b).

:func:`write_curves` writes ``curves.png`` (matplotlib) and an interactive ``curves.html``
(HoloViews, Bokeh backend): validation accuracy per epoch of every seed run, over the
published GLE 15k and 42k curves (median line and min-max band over the published seeds) and
the published offline baselines' final accuracies (horizontal lines). The published data are
package data (``gle_lab.assets/reference``, see its README).
"""
from __future__ import annotations

import csv
import os

import numpy as np

from .resources import asset

__all__ = ["reference_curve", "baselines", "write_curves", "load_histories"]

# seeds in colours the published curves (blue, green) do not use
SEED_COLOURS = ["#D55E00", "#CC79A7", "#E69F00", "#000000", "#882255", "#999933", "#661100",
                "#AA4499", "#777777", "#F0A0A0"]
PUBLISHED_COLOUR = {"15k": "#0072B2", "42k": "#009E73"}


def _read_commented_csv(name):
    lines = asset("reference", name).read_text().splitlines()
    source = lines[0].lstrip("# ").strip() if lines and lines[0].startswith("#") else ""
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))
    return rows, source


def reference_curve(net="15k"):
    """Published GLE validation accuracy (%) per epoch: ``epoch``, ``median``, ``min``,
    ``max`` arrays and ``source``."""
    rows, source = _read_commented_csv(f"mnist1d_gle{net}_val_acc.csv")
    out = {k: np.array([float(r[k]) for r in rows]) for k in ("epoch", "median", "min", "max")}
    out["source"] = source
    return out


def baselines():
    """Published offline baselines of paper Table 1: {model: final validation accuracy (%)}
    (MLP 64.4, TCN 92.5, GRU 91; the stored runs behind Fig. 6b:
    ``reference/mnist1d_baselines_final.csv``)."""
    from gle_core.mnist1d import PUBLISHED
    return {k: v[0] for k, v in PUBLISHED.items() if not k.startswith("GLE")}


def load_histories(out):
    """{seed: epoch rows} of the ``seed-S/epochs.csv`` files under ``out``."""
    from gle_core.mnist1d import read_epochs
    hist = {}
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name, "epochs.csv")
        if name.startswith("seed-") and os.path.exists(path):
            cols = read_epochs(path)
            hist[int(name[5:])] = [dict(zip(cols, vals)) for vals in zip(*cols.values())]
    return hist


def write_curves(out, histories, net="15k", mode="gle"):
    """Write ``out/curves.png`` and ``out/curves.html``; returns their paths.

    Parameters
    ----------
    out : str
    histories : dict
        {seed: list of epoch rows with ``epoch`` and ``val_acc`` (%)}.
    net : {"15k", "42k"}
        Which published curve is drawn in front (both are drawn).
    mode : {"gle", "ie"}
        The runs' errors (the published curves are GLE's); named in the title and legend.
    """
    png = os.path.join(out, "curves.png")
    html = os.path.join(out, "curves.html")
    _write_png(png, histories, net, mode)
    _write_html(html, histories, net, mode)
    return {"png": png, "html": html}


def _run_words(net, mode):
    """(title, legend prefix) naming what the runs are against the published GLE curves."""
    if mode == "gle":
        return f"MNIST-1D, GLE {net}: validation accuracy per epoch", "this run"
    return (f"MNIST-1D, {net} with {mode.upper()} errors, over the published GLE curves",
            f"this run ({mode.upper()})")


def _write_png(path, histories, net, mode="gle"):
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for other in ("42k", "15k") if net == "15k" else ("15k", "42k"):
        ref = reference_curve(other)
        c = PUBLISHED_COLOUR[other]
        ax.fill_between(ref["epoch"], ref["min"], ref["max"], color=c, alpha=0.15 if
                        other == net else 0.07, lw=0)
        ax.plot(ref["epoch"], ref["median"], color=c, lw=1.5 if other == net else 1.0,
                ls="-" if other == net else ":", label=f"published GLE {other} (median, range)")
    # close lines (TCN 92.5, GRU 91): labels alternate above and below their lines
    for i, (name, acc) in enumerate(sorted(baselines().items(), key=lambda kv: -kv[1])):
        ax.axhline(acc, color="0.4", lw=0.8, ls="--")
        ax.annotate(f"{name} {acc:.1f} (Table 1)", (1.0, acc), xycoords=("axes fraction", "data"),
                    xytext=(-4, 2 if i % 2 == 0 else -3), textcoords="offset points",
                    ha="right", va="bottom" if i % 2 == 0 else "top", fontsize=8, color="0.3")
    for i, (seed, rows) in enumerate(sorted(histories.items())):
        ep = [r["epoch"] for r in rows]
        acc = [r["val_acc"] for r in rows]
        ax.plot(ep, acc, color=SEED_COLOURS[i % len(SEED_COLOURS)], lw=1.2,
                label=f"{_run_words(net, mode)[1]}, seed {seed}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(_run_words(net, mode)[0])
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def _write_html(path, histories, net, mode="gle"):
    import holoviews as hv
    hv.extension("bokeh", logo=False)
    layers = []
    for other in ("15k", "42k"):
        ref = reference_curve(other)
        c = PUBLISHED_COLOUR[other]
        band = hv.Area((ref["epoch"], ref["min"], ref["max"]), "epoch",
                       vdims=["min", "max"], label=f"published GLE {other} range").opts(
            color=c, alpha=0.15 if other == net else 0.07, line_alpha=0)
        med = hv.Curve((ref["epoch"], ref["median"]), "epoch", "validation accuracy (%)",
                       label=f"published GLE {other} median").opts(
            color=c, line_dash="solid" if other == net else "dotted")
        layers += [band, med]
    for i, (name, acc) in enumerate(sorted(baselines().items(), key=lambda kv: -kv[1])):
        layers.append(hv.HLine(acc).opts(color="gray", line_dash="dashed", line_width=1))
        layers.append(hv.Text(148, acc + (1.2 if i % 2 == 0 else -1.2),
                              f"{name} {acc:.1f} (Table 1)", halign="right",
                              valign="bottom" if i % 2 == 0 else "top", fontsize=8))
    for i, (seed, rows) in enumerate(sorted(histories.items())):
        pts = [(r["epoch"], r["val_acc"]) for r in rows]
        layers.append(hv.Curve(pts, "epoch", "validation accuracy (%)",
                               label=f"{_run_words(net, mode)[1]}, seed {seed}").opts(
            color=SEED_COLOURS[i % len(SEED_COLOURS)], line_width=2, tools=["hover"]))
    plot = hv.Overlay(layers).opts(
        width=900, height=500, ylim=(0, 100), legend_position="bottom_right",
        title=_run_words(net, mode)[0] + " (this run vs paper)")
    tmp = path + ".tmp.html"
    hv.save(plot, tmp, backend="bokeh", fmt="html")
    os.replace(tmp, path)


def main(argv=None):
    """``python -m gle_lab.mnist1d_report OUT [--net 15k|42k]``: the plots of the runs under
    OUT (``OUT/seed-*/epochs.csv``); prints the paths written as JSON."""
    import argparse
    import json
    p = argparse.ArgumentParser(prog="python -m gle_lab.mnist1d_report",
                                description="Plot gle-run mnist1d learning curves over the "
                                            "published ones.")
    p.add_argument("out", help="the --out folder of gle-run mnist1d")
    p.add_argument("--net", choices=("15k", "42k"), default="15k")
    args = p.parse_args(argv)
    histories = load_histories(args.out)
    if not histories:
        p.error(f"no seed-*/epochs.csv under {args.out}")
    mode = "gle"
    summary = os.path.join(args.out, "summary.json")
    if os.path.exists(summary):
        with open(summary, encoding="utf-8") as fh:
            mode = str(json.load(fh).get("mode", "gle"))
    print(json.dumps(write_curves(args.out, histories, args.net, mode)))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
