"""Shared look of the MNIST-1D views: a plain Bokeh figure and the colours."""
from __future__ import annotations

from bokeh.models import Range1d
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure as _figure


#: a colour per class (outputs) and per layer (errors)
CLASS_COLORS = list(Category10_10)
LAYER_COLORS = ["#08306b", "#2171b5", "#4292c6", "#6baed6", "#41ab5d", "#fd8d3c", "#d62728"]
RIGHT, WRONG, NEUTRAL = "#1a9641", "#d7191c", "#9e9e9e"
HEAT_PALETTE = Viridis256


def figure(title, x_label, y_label, height=240, **kw):
    """A Bokeh figure in the MNIST-1D views' style (canvas backend, no toolbar clutter)."""
    fig = _figure(title=title, height=height, sizing_mode="stretch_width",
                  tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="right",
                  output_backend="canvas", **kw)
    fig.xaxis.axis_label = x_label
    fig.yaxis.axis_label = y_label
    fig.title.text_font_size = "14px"
    fig.toolbar.logo = None
    return fig


def fixed(lo, hi):
    return Range1d(lo, hi)
