"""Shared look of the MNIST-1D views: a plain Bokeh figure, the colours, and how a view fits
a page layout (:data:`MODES`: the simulation dashboard's "wide", "present" and "phone",
:meth:`gle_lab.main.Dashboard.effective_mode`).

Every axis is a :class:`~bokeh.models.Range1d` the server sets (:func:`fit_range`), never a
``DataRange1d``: an auto-ranged axis of a source that is still empty when the page is built
has no initial range (BokehJS: "could not set initial ranges"), and BokehJS sends every
auto-ranged change back to the server (one more message per streamed frame)."""
from __future__ import annotations

import math

from bokeh.layouts import column, row
from bokeh.models import Legend, Range1d
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure as _figure

from ..streaming import decade_bounds


#: a colour per class (outputs) and per layer (errors)
CLASS_COLORS = list(Category10_10)
LAYER_COLORS = ["#08306b", "#2171b5", "#4292c6", "#6baed6", "#41ab5d", "#fd8d3c", "#d62728"]
RIGHT, WRONG, NEUTRAL = "#1a9641", "#d7191c", "#9e9e9e"
HEAT_PALETTE = Viridis256
#: page layouts (gle_lab.main): the plots' toolbar only on a wide screen (nothing to aim at
#: on a projector, and every tool is a Tab stop); on a phone every view is one column
MODES = ("wide", "present", "phone")
#: text sizes (px): a 1280×720 projector and a 390 px phone read them; a title is short
#: enough to fit its plot at 390 px (tests/ui/test_mnist_browser.py measures it)
TITLE_PX, AXIS_PX, TICK_PX, LEGEND_PX = 15, 13, 13, 13


def figure(title, x_label, y_label, height=240, **kw):
    """A Bokeh figure in the MNIST-1D views' style (canvas backend, server-set ranges)."""
    kw.setdefault("x_range", Range1d(0, 1))
    kw.setdefault("y_range", Range1d(0, 1))
    fig = _figure(title=title, height=height, sizing_mode="stretch_width",
                  tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="right",
                  output_backend="canvas", **kw)
    fig.xaxis.axis_label = x_label
    fig.yaxis.axis_label = y_label
    fig.title.text_font_size = f"{TITLE_PX}px"
    for ax in (fig.xaxis, fig.yaxis):
        ax.axis_label_text_font_size = f"{AXIS_PX}px"
        ax.major_label_text_font_size = f"{TICK_PX}px"
        ax.axis_label_text_font_style = "normal"
    fig.toolbar.logo = None
    fig.min_border_right = 10
    return fig


def fixed(lo, hi):
    return Range1d(lo, hi)


def fit_range(rng, lo, hi, pad=0.05, slack=0.5):
    """Set ``rng`` (a Range1d) to hold ``[lo, hi]`` with ``pad`` of the span on each side,
    only when the data leaves it or fills less than ``slack`` of it: a live plot's axis
    moves now and then, not with every frame. Returns True when it moved."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return False
    span = hi - lo
    if span <= 0:
        span = max(abs(hi), 1.0) * 0.1
        lo, hi = lo - span / 2, hi + span / 2
    start, end = rng.start, rng.end
    margin = pad / (1 + 2 * pad) * (end - start)        # the padding the data keeps
    inside = start + margin <= lo + 1e-12 * span and hi <= end - margin + 1e-12 * span
    if inside and span >= slack * (end - start):
        return False
    rng.update(start=lo - pad * span, end=hi + pad * span)
    return True


def decades(rng, lo, hi):
    """A log axis over whole decades holding ``[lo, hi]`` (> 0); moved only when a decade
    changes."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return False
    start, end = decade_bounds(lo, hi)
    if (rng.start, rng.end) == (start, end):
        return False
    rng.update(start=start, end=end)
    return True


def arrange(figs, mode):
    """The figures of one view side by side, or one under the other on a phone."""
    make = column if mode == "phone" else row
    return make(*figs, sizing_mode="stretch_width")


def fit_pair(view, figs, mode):
    """Fit a view of two plots to a page layout: each figure (:func:`fit_mode`), side by
    side or, on a phone, one under the other (the view's pane is rearranged only when that
    changes)."""
    stacked = (mode == "phone") != (view.mode == "phone")
    view.mode = mode
    for fig in figs:
        fit_mode(fig, mode)
    if stacked:
        view.pane.object = arrange(list(figs), mode)


def fit_mode(fig, mode, legend_cols=None):
    """A figure for a page layout: its toolbar on a wide screen only; its legend (if any)
    outside the data, at its right on a screen and below it on a phone (``legend_cols``
    columns there). Only changed properties are set."""
    toolbar = "right" if mode == "wide" else None
    if fig.toolbar_location != toolbar:
        fig.toolbar_location = toolbar
    legends = [obj for side in ("center", "right", "below") for obj in getattr(fig, side)
               if isinstance(obj, Legend)]
    side = "below" if mode == "phone" else "right"
    for legend in legends:
        for other in ("center", "right", "below"):
            if other != side and legend in getattr(fig, other):
                setattr(fig, other, [o for o in getattr(fig, other) if o is not legend])
        if legend not in getattr(fig, side):
            getattr(fig, side).append(legend)
        horizontal = side == "below"
        want = dict(orientation="horizontal" if horizontal else "vertical",
                    ncols=(legend_cols or 2) if horizontal else 1, location="top_left",
                    spacing=8 if horizontal else 0)
        legend.update(**{k: v for k, v in want.items() if getattr(legend, k) != v})
    return fig


def legend_style(fig):
    """The figure's legend (from ``legend_label``) in the views' style: readable, compact,
    clickable to hide a line."""
    legend = fig.legend[0]
    legend.update(label_text_font_size=f"{LEGEND_PX}px", spacing=0, padding=4, margin=4,
                  glyph_width=20, label_height=16, click_policy="hide",
                  background_fill_alpha=0.0, border_line_alpha=0.0)
    return legend
