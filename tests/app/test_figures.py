"""gle_lab.views.style.add_line builds the models figure.line + lean_renderers leave."""
from __future__ import annotations

import json
import re

import numpy as np
from bokeh.document import Document
from bokeh.models import ColumnDataSource, GlyphRenderer, Legend

from gle_lab.views.style import add_legend, add_line, apply_plot_mode, make_figure

#: (y column, colour, width, dash, alpha, label): styles the views use, one label twice
LINES = [("x", "#000000", 1.5, "solid", 0.7, "input x"),
         ("r0", "#E69F00", 3, "solid", 1.0, "r n1"),
         ("tr0", "#E69F00", 2, "dashed", 0.9, "r n1 teacher"),
         ("r1", "#009E73", 2.5, "dotdash", 1.0, "r n2"),
         ("r2", "#009E73", 2, "dotted", 1.0, "r n2")]


def _source():
    return ColumnDataSource({k: np.arange(4.0) for k in ("t", "x", "r0", "tr0", "r1", "r2")})


def _canonical(fig):
    """The figure as the browser receives it, ids renumbered by first appearance (also
    inside the legend's CustomJS code); renderer states that equal BokehJS's default
    ("auto") left out."""
    doc = Document()
    doc.add_root(fig)
    js = doc.to_json()
    text = json.dumps(getattr(js, "content", js)["roots"], default=lambda o: o.to_bytes().hex())
    ids = {}
    text = re.sub(r'"id": "(p\d+)"',
                  lambda m: f'"id": "{ids.setdefault(m.group(1), f"i{len(ids)}")}"', text)
    text = re.sub(r"'(p\d+)'", lambda m: f"'{ids[m.group(1)]}'", text)
    return text.replace(', "nonselection_glyph": "auto", "muted_glyph": "auto"', "")


def _with_glyph_api(mode):
    fig, src = make_figure("Activity", "t", "rate"), _source()
    for y, color, width, dash, alpha, label in LINES:
        fig.line("t", y, source=src, color=color, line_width=width, line_dash=dash,
                 alpha=alpha, legend_label=label)
    fig.line("t", "r2", source=src, color="black", line_width=2)        # no legend entry
    return apply_plot_mode(add_legend(fig), mode)


def _with_add_line(mode):
    fig, src = make_figure("Activity", "t", "rate"), _source()
    for y, color, width, dash, alpha, label in LINES:
        add_line(fig, "t", y, src, color=color, width=width, dash=dash, alpha=alpha,
                 label=label)
    add_line(fig, "t", "r2", src, color="black", width=2)
    return apply_plot_mode(add_legend(fig), mode)


def test_the_same_document_as_figure_line_in_every_layout():
    for mode in ("wide", "present", "phone"):
        assert _canonical(_with_add_line(mode)) == _canonical(_with_glyph_api(mode)), mode


def test_one_view_per_source_one_legend_item_per_label():
    fig = _with_add_line("wide")
    real = [r for r in fig.renderers if isinstance(r, GlyphRenderer)
            and "t" in r.data_source.data]
    assert len(real) == 6
    assert len({id(r.view) for r in real}) == 1
    legend, = [obj for obj in fig.right if isinstance(obj, Legend)]
    labels = [item.label.value for item in legend.items]
    assert labels == ["input x", "r n1", "r n1 teacher", "r n2"]
    assert [len(item.renderers) for item in legend.items] == [1, 1, 1, 2]
    # the legend's stand-ins draw from their own source, never the live one
    assert all("t" not in r.data_source.data for item in legend.items for r in item.renderers)


def test_an_inside_legend_without_glyph_api_lines():
    fig, src = make_figure("Errors", "t", "e"), _source()
    add_line(fig, "t", "r0", src, color="#E69F00", width=3, label="e n1")
    add_legend(fig, location="top_right", outside=False)
    legend, = fig.legend
    assert legend in fig.center and legend.location == "top_right"
    assert [item.label.value for item in legend.items] == ["e n1"]
