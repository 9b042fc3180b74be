"""Shared look of the dashboard's Bokeh figures (canvas backend, projector-friendly fonts)."""
from __future__ import annotations

import math

from bokeh.models import (CDSView, ColumnDataSource, CustomJS, GlyphRenderer, Legend,
                          LegendItem, FixedTicker, PrintfTickFormatter)
from bokeh.core.property.vectorization import Field, field
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from ..compat import patch_enabled
from ..resources import asset

#: BokehJS repaint fixes run once per page (see the file for what and why)
PAINT_FIXES_JS = asset("js", "bokeh_paint_fixes.js").read_text(encoding="utf-8")


def install_paint_fixes(doc):
    """Install the repaint fixes in the browser page of ``doc`` when it is ready."""
    if doc is not None and patch_enabled("bokeh_paint_fixes"):
        doc.js_on_event("document_ready", CustomJS(code=PAINT_FIXES_JS))


#: one colour per neuron (the same neuron has the same colour in every view)
NEURON_COLORS = [c for c in Category10_10 if c != "#7f7f7f"]
INPUT_COLOR = "#444444"
FORWARD_COLOR = "#1f77b4"
ERROR_COLOR = "#d62728"
ADJOINT_COLOR = "#2ca02c"


def neuron_color(j):
    return NEURON_COLORS[j % len(NEURON_COLORS)]


def make_figure(title, x_label, y_label, height=250, **kw):
    """A canvas-backed figure that stretches to its container's width."""
    fig = figure(title=title, height=height, sizing_mode="stretch_width",
                 output_backend="canvas", tools="pan,wheel_zoom,box_zoom,reset,save",
                 active_scroll=None, toolbar_location="right", **kw)
    fig.title.text_font_size = "14px"
    fig.xaxis.axis_label = x_label
    fig.yaxis.axis_label = y_label
    for ax in (fig.xaxis, fig.yaxis):
        ax.axis_label_text_font_size = "13px"
        ax.major_label_text_font_size = "12px"
        ax.axis_label_text_font_style = "normal"
    fig.min_border_left = 50
    fig.toolbar.logo = None
    return fig


def _first(values):
    try:
        return values[0]
    except (IndexError, TypeError, KeyError):
        return math.nan


#: glyph properties that place a glyph (NaN there: the legend stand-ins draw nothing)
COORDINATES = frozenset(("x", "y", "x0", "y0", "x1", "y1", "top", "bottom", "left", "right"))


def detached_items(fig, items):
    """Legend items over stand-in renderers that share the real ones' glyphs but not their data.

    BokehJS re-renders a legend's items (new DOM elements and canvases for every entry, which
    then forces a style recalculation on the next paint) whenever any model reachable from
    the items changes, and that includes the renderers' data sources: with the real renderers
    every ``stream`` rebuilt the legends of the live plots 30 times a second. The stand-ins
    draw copies of the same glyphs from one static one-row source per figure whose
    coordinates are NaN (they draw nothing in the plot; an empty view filter would, but
    Bokeh rejects filters on lines, E-1024); clicking an entry hides the stand-in and one
    CustomJS callback per figure hides (or shows) the real renderers with it.
    Shared source, view and callback: every model of the document costs server CPU on every
    frame (Bokeh serialises a patch against references to all of them)."""
    row, glyphs = {}, []
    for item in items:
        for r in item.renderers:
            # the glyph's own columns renamed (legend_*): code that finds the live sources by
            # their column names must not find the stand-ins
            data = r.data_source.data
            glyph = r.glyph.clone()
            for name in type(glyph).dataspecs():
                spec = getattr(glyph, name)
                if isinstance(spec, Field):
                    col = f"legend_{spec.field}"
                    row.setdefault(col, [math.nan if name in COORDINATES
                                         else _first(data.get(spec.field))])
                    setattr(glyph, name, field(col))
            glyphs.append((r, glyph))
    if not glyphs:
        return []
    source = ColumnDataSource(row)
    view = CDSView()                      # one for all stand-ins: they share the source
    proxies = {}
    for r, glyph in glyphs:
        proxies[r.id] = GlyphRenderer(data_source=source, glyph=glyph, view=view,
                                      visible=r.visible)
    # the real renderers by id in the code, not in args: args are references too, and the
    # legend would again follow every change of the real renderers' data
    real_of = {proxy.id: rid for rid, proxy in proxies.items()}
    sync = CustomJS(code=(f"const real = cb_obj.document.get_model_by_id({real_of!r}[cb_obj.id]);"
                          "if (real != null) real.visible = cb_obj.visible;"))
    for proxy in proxies.values():
        proxy.js_on_change("visible", sync)
        fig.renderers.append(proxy)
    return [LegendItem(label=item.label, renderers=[proxies[r.id] for r in item.renderers],
                       index=item.index) for item in items]


def decade_axis(axis):
    """Ticks at whole decades only, labelled 0.01 … 100 (short plots stay legible)."""
    axis.ticker = FixedTicker(ticks=[10.0 ** k for k in range(-30, 31)])
    axis.formatter = PrintfTickFormatter(format="%g")
    axis.minor_tick_line_color = None


def add_legend(fig, location="top_left", outside=True):
    """Put the figure's legend outside the plot area (right), clickable to hide lines."""
    if outside:
        items = fig.legend[0].items if fig.legend else []
        if fig.legend:
            fig.legend[0].visible = False
            fig.center = [c for c in fig.center if not isinstance(c, Legend)]
        legend = Legend(items=detached_items(fig, items), location="top_left",
                        click_policy="hide", label_text_font_size="12px", spacing=0,
                        padding=4, margin=4)
        fig.add_layout(legend, "right")
    else:
        fig.legend[0].items = detached_items(fig, fig.legend[0].items)
        fig.legend.location = location
        fig.legend.click_policy = "hide"
        fig.legend.label_text_font_size = "12px"
    return fig
