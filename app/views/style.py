"""Shared look of the dashboard's Bokeh figures (canvas backend, projector-friendly fonts)."""
from __future__ import annotations

from bokeh.models import Legend
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

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


def add_legend(fig, location="top_left", outside=True):
    """Put the figure's legend outside the plot area (right), clickable to hide lines."""
    if outside:
        items = fig.legend[0].items if fig.legend else []
        if fig.legend:
            fig.legend[0].visible = False
            fig.center = [c for c in fig.center if not isinstance(c, Legend)]
        legend = Legend(items=items, location="top_left", click_policy="hide",
                        label_text_font_size="12px", spacing=0, padding=4, margin=4)
        fig.add_layout(legend, "right")
    else:
        fig.legend.location = location
        fig.legend.click_policy = "hide"
        fig.legend.label_text_font_size = "12px"
    return fig
