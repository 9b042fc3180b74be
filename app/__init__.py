"""GLE Lab: the live Panel dashboard for Generalized Latent Equilibrium neurons.

In a notebook::

    from gle_lab import dashboard
    dashboard()                      # or dashboard("chain")

From a shell: ``gle-lab`` (see :mod:`gle_lab.serve`).
"""
from __future__ import annotations

__all__ = ["dashboard"]


def dashboard(preset="phase_inversion", seed=0):
    """A servable dashboard layout (displays inline in Jupyter; ``.servable()`` in scripts).

    The layout's ``dashboard`` attribute is the :class:`gle_lab.main.Dashboard` (state, views).
    """
    import panel as pn

    from .main import create_app

    pn.extension("katex")
    return create_app(preset=preset, seed=seed)
