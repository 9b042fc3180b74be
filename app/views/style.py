"""Shared look of the dashboard's Bokeh figures (canvas backend, projector-friendly fonts).

Colour has one meaning across the page (Okabe–Ito, a colour-blind-safe palette):

* a **neuron** has one colour in every view (:func:`neuron_color`; blue and vermillion are
  never neuron colours);
* **blue** = lags, **vermillion** = leads (phase cards only);
* the input is black; the teacher a neuron's colour dashed.

What a line *is* (rate, e, ε, λ, forward / error / adjoint path) is told by its line style,
so nothing relies on hue alone.
"""
from __future__ import annotations

import math

from bokeh.models import (CDSView, ColumnDataSource, CustomJS, GlyphRenderer, Legend,
                          LegendItem, Line, FixedTicker, LogTicker, PrintfTickFormatter)
from bokeh.core.property.vectorization import Field, field, value
from bokeh.plotting import figure

from ..compat import patch_enabled
from ..resources import asset

#: BokehJS repaint fixes run once per page (see the file for what and why)
PAINT_FIXES_JS = asset("js", "bokeh_paint_fixes.js").read_text(encoding="utf-8")
#: a page whose websocket dropped mid-message reconnects (BokehJS 3.9 kept the half-read
#: message across the reconnection; see the file)
CONNECTION_FIX_JS = asset("js", "bokeh_connection_fix.js").read_text(encoding="utf-8")


#: keyboard shortcuts, help overlay, slider names and values for assistive technology, plot
#: toolbars out of the Tab order, the viewport size report (see the file)
PAGE_JS = asset("js", "page.js").read_text(encoding="utf-8")


def install_paint_fixes(doc, repaint=True):
    """Install the repaint fixes (unless ``repaint`` is False), the reconnection fix and the
    page script in the browser page of ``doc``."""
    if doc is None:
        return
    if repaint and patch_enabled("bokeh_paint_fixes"):
        doc.js_on_event("document_ready", CustomJS(code=PAINT_FIXES_JS))
    if patch_enabled("bokeh_fresh_receiver"):
        doc.js_on_event("document_ready", CustomJS(code=CONNECTION_FIX_JS))
    doc.js_on_event("document_ready", CustomJS(code=PAGE_JS))


#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour
#: vision deficiency
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
             "purple": "#CC79A7"}
#: lags / leads (phase cards): reserved, never a neuron's colour
LAG_COLOR, LEAD_COLOR = OKABE_ITO["blue"], OKABE_ITO["vermillion"]
#: one colour per neuron, the same in every view (yellow darkened to be seen on white)
NEURON_COLORS = [OKABE_ITO["orange"], OKABE_ITO["sky"], OKABE_ITO["green"],
                 OKABE_ITO["purple"], "#B8A800", "#7F7F7F"]
INPUT_COLOR = OKABE_ITO["black"]
#: text of axes, ticks, legends and titles (px): readable from the back of a lecture hall
FONT_PX = 16


def neuron_color(j):
    return NEURON_COLORS[j % len(NEURON_COLORS)]


def make_figure(title, x_label, y_label, height=250, **kw):
    """A canvas-backed figure that stretches to its container's width."""
    fig = figure(title=title, height=height, sizing_mode="stretch_width",
                 output_backend="canvas", tools="pan,wheel_zoom,box_zoom,reset,save",
                 active_scroll=None, toolbar_location="right", **kw)
    fig.title.text_font_size = f"{FONT_PX}px"
    fig.xaxis.axis_label = x_label
    fig.yaxis.axis_label = y_label
    for ax in (fig.xaxis, fig.yaxis):
        ax.axis_label_text_font_size = f"{FONT_PX}px"
        ax.major_label_text_font_size = f"{FONT_PX}px"
        ax.axis_label_text_font_style = "normal"
    if kw.get("y_axis_type", "linear") == "linear":
        # "0.006", not "6.000e-3"
        fig.yaxis.formatter = PrintfTickFormatter(format="%.3g")
    fig.min_border_left = 50
    fig.toolbar.logo = None
    return fig


def add_line(fig, x, y, source, *, color, width, dash="solid", alpha=1.0, label=None):
    """A line of ``source``'s columns ``x``, ``y`` on ``fig``: the models ``fig.line`` and
    :func:`lean_renderers` leave, built directly.

    ``figure.line`` builds a selection and a muted copy of every glyph, a view per renderer
    and a legend inside the plot, which :func:`lean_renderers` and :func:`add_legend` then
    discard: half of a live figure's build (a session builds dozens of lines). Here the
    renderer gets BokehJS's own glyphs for those states ("auto"), renderers of one source
    share one view, and ``label`` goes to the legend items :func:`add_legend` places (lines
    with the same label share an item, as with ``legend_label``). Returns the renderer."""
    glyph = Line(x=field(x), y=field(y), line_color=color, line_width=width,
                 line_dash=dash, line_alpha=alpha)
    view = next((r.view for r in fig.renderers           # all rows of the same source
                 if isinstance(r, GlyphRenderer) and r.data_source is source
                 and type(r.view.filter).__name__ == "AllIndices"), None)
    renderer = GlyphRenderer(data_source=source, glyph=glyph, view=view or CDSView(),
                             nonselection_glyph="auto", muted_glyph="auto")
    fig.renderers.append(renderer)
    if label is not None:
        if not hasattr(fig, "_gle_legend_items"):
            fig._gle_legend_items = []
        items, label = fig._gle_legend_items, value(label)
        item = next((i for i in items if i.label == label), None)
        if item is None:
            items.append(LegendItem(label=label, renderers=[renderer]))
        else:
            item.renderers.append(renderer)
    return renderer


def _legend_items(fig):
    """The figure's legend items: those of :func:`add_line`, then any of ``legend_label``."""
    items = list(getattr(fig, "_gle_legend_items", ()))
    if fig.legend:
        items += fig.legend[0].items
    return items


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


def decade_axis(axis, spread=False):
    """Ticks at whole decades only, labelled 0.01 … 100 (short plots stay legible).

    ``spread``: a range over many decades (a loss) gets a few of them only (every n-th
    decade), never a pile of overlapping labels (its range spans two decades at least:
    :data:`gle_lab.streaming.LOG_MIN_DECADES`)."""
    if spread:
        axis.ticker = LogTicker(mantissas=[1], desired_num_ticks=4, num_minor_ticks=0)
    else:
        axis.ticker = FixedTicker(ticks=[10.0 ** k for k in range(-30, 31)])
    # a precision: BokehJS's bare %g prints 0.6 as 0.6000000000000001
    axis.formatter = PrintfTickFormatter(format="%.3g")
    axis.minor_tick_line_color = None


#: legend rows per column: a longer legend wraps into columns instead of spilling below
#: the plot (over the caption under it)
LEGEND_ROWS = 6
#: the longest label of a legend below a plot that still fits two columns at 390 px
BELOW_TWO_COLUMNS_CHARS = 16


def add_legend(fig, location="top_left", outside=True, side="right"):
    """Put the figure's legend outside the plot area (``side``), clickable to hide lines."""
    if outside:
        items = _legend_items(fig)
        if fig.legend:
            fig.legend[0].visible = False
            fig.center = [c for c in fig.center if not isinstance(c, Legend)]
        legend = Legend(items=detached_items(fig, items), location="top_left",
                        click_policy="hide", label_text_font_size=f"{FONT_PX}px", spacing=0,
                        padding=4, margin=4, glyph_width=28, label_height=18)
        arrange_legend(legend, side)
        fig.add_layout(legend, side)
    else:
        items = _legend_items(fig)
        if not fig.legend:
            fig.add_layout(Legend())
        fig.legend[0].items = detached_items(fig, items)
        fig.legend.location = location
        fig.legend.click_policy = "hide"
        fig.legend.label_text_font_size = f"{FONT_PX}px"
    return fig


def _label_text(item):
    label = item.label
    return str(getattr(label, "value", label) if not isinstance(label, dict)
               else label.get("value", ""))


def arrange_legend(legend, side):
    """Lay out a legend for its side of the plot: beside it ("right"), a column of at most
    LEGEND_ROWS rows; below it (a phone's ~370 px), two columns while the labels fit in half
    of that (:data:`BELOW_TWO_COLUMNS_CHARS`), else one. Two columns' labels get the width
    of the longest and a gap (at their own width "τm n1" ran into the next item's line)."""
    n = len(legend.items)
    longest = max((len(_label_text(item)) for item in legend.items), default=0)
    if side in ("above", "below") and n > 1 and longest <= BELOW_TWO_COLUMNS_CHARS:
        legend.update(orientation="horizontal", ncols=2,
                      label_width=int(math.ceil(0.6 * FONT_PX * longest)) + 14)
    else:
        legend.update(orientation="vertical", label_width=20,
                      ncols=1 if side in ("above", "below")
                      else max(1, math.ceil(n / LEGEND_ROWS)))


def phone_title(title):
    """A title for a narrow plot: without its parenthesised line-style key or details. A
    parenthesis before the title's colon names the plot and stays: "Errors (GLE): error e
    (solid), …" → "Errors (GLE)" (the error mode is named everywhere), "Microcircuit (paper
    Fig. 3): …" → "Microcircuit (paper Fig. 3)"."""
    head, colon, _ = title.partition(": ")
    if colon and " (" in head:
        return head
    return title.split(" (")[0].rstrip()


def lean_renderers(fig):
    """Fewer Bokeh models per figure, the same picture: every model of a session costs server
    CPU when the session is built and sent (issue #11).

    * ``nonselection_glyph="auto"``: ``figure.line`` adds an explicit copy of each glyph for
      the unselected state; these plots have no selection, and BokehJS makes its own when
      one is needed.
    * ``muted_glyph="auto"``: nothing is muted (legends hide lines, they never mute them);
      BokehJS makes its own muted glyph when one is needed.
    * Renderers of one source share one default ``CDSView`` (all rows): the same view.
    Idempotent."""
    if fig is None:
        return fig
    views = {}
    for r in fig.renderers:
        if not isinstance(r, GlyphRenderer):
            continue
        if r.nonselection_glyph not in (None, "auto"):
            r.nonselection_glyph = "auto"
        if r.muted_glyph not in (None, "auto"):
            r.muted_glyph = "auto"
        view = r.view
        if isinstance(view, CDSView) and type(view.filter).__name__ == "AllIndices":
            shared = views.setdefault(r.data_source.id, view)
            if shared is not view:
                r.view = shared
    return fig


def apply_plot_mode(fig, mode, move_legend=True, short_title=None, legend_side=None):
    """Fit a figure to a page layout (``"wide"``, ``"present"``, ``"phone"``).

    Phone (or ``short_title``): the title without its parenthesised part
    (:func:`phone_title`). Presentation and phone: no toolbar (nothing to aim at on a
    projector, and every tool is a Tab stop); phone (or ``legend_side="below"``): the legend
    below the plot (a plot 390 px wide has no room beside it). Only changed properties are
    set: a no-op on an unchanged figure."""
    if fig is None:
        return fig
    lean_renderers(fig)
    # phone: a title's parenthesis (the line styles, told by the legend too) would be cut at
    # 390 px; the full title comes back on a larger screen
    if fig.title is not None and fig.title.text:
        cur, full = fig.title.text, getattr(fig, "_gle_full_title", None)
        if full is None or cur not in (full, phone_title(full)):
            full = fig._gle_full_title = cur          # new, or retitled by its view
        short = mode == "phone" if short_title is None else short_title
        want = phone_title(full) if short else full
        if cur != want:
            fig.title.text = want
    toolbar = "right" if mode == "wide" else None
    if fig.toolbar_location != toolbar:
        fig.toolbar_location = toolbar
    side = legend_side or ("below" if mode == "phone" else "right")
    other = "right" if side == "below" else "below"
    moving = [obj for obj in getattr(fig, other) if isinstance(obj, Legend)]
    if moving and move_legend:
        setattr(fig, other, [obj for obj in getattr(fig, other) if not isinstance(obj, Legend)])
        for legend in moving:
            arrange_legend(legend, side)
            getattr(fig, side).append(legend)
    return fig
