"""Version guards for the few places that rely on private Panel/BokehJS internals.

GLE Lab patches ten things that no public API offers (see the call sites):

* ``assets/js/bokeh_paint_fixes.js`` replaces BokehJS 3.9 repaint internals in the page;
* ``assets/js/bokeh_connection_fix.js`` gives each BokehJS 3.9 connection attempt a new
  message receiver (a websocket lost mid-message otherwise never streams again);
* :mod:`gle_lab.bokeh_defaults` computes Bokeh 3.9's immutable property defaults once per
  class instead of at every read;
* :mod:`gle_lab.patch_refs` builds Bokeh 3.9's PATCH-DOC messages without a reference map
  of the whole document per message;
* :func:`gle_lab.views.controls.on_click` batches a widget's ``_process_events`` and sets
  ``_debounce`` (Panel 1.9);
* the frame callbacks (dashboard and MNIST-1D page) register themselves in ``pn.state._periodic``
  so that Panel removes them with the session (Panel 1.9);
* :mod:`gle_lab.write_queue` sends the messages Panel 1.9 leaves in its write queue;
* :class:`gle_lab.views.phase.LiveHTML` sends only the text when its object changes (Panel
  1.9's ``HTMLBasePane._update`` re-derives and re-sends every property);
* :func:`gle_lab.collector.hand_over_panel_collections` leaves the full collection after a
  session closes to GLE Lab's schedule instead of Panel 1.9's own;
* :mod:`gle_lab.ws_nodelay` sets ``TCP_NODELAY`` on Bokeh 3.9's websocket handler (Tornado's
  public ``set_nodelay``, called from Bokeh's ``WSHandler.open``).

Each is written for one minor version. :func:`patch_enabled` says whether the installed
version is that one; on any other version the patch is skipped (the dashboard still works,
only slower or with Panel's defaults) and one warning is logged per patch and process, never
an exception. ``GLE_LAB_DISABLE_PATCHES=name,name`` turns patches off by name (A/B
benchmarks, or a deployment that meets a problem with one).
"""
from __future__ import annotations

import logging
import os
from importlib.metadata import PackageNotFoundError, version

__all__ = ["PATCHED_FOR", "patch_enabled"]

log = logging.getLogger("gle_lab")

#: patch name -> (distribution, the major.minor it was written for)
PATCHED_FOR = {
    "bokeh_paint_fixes": ("bokeh", "3.9"),
    "bokeh_lazy_patch_refs": ("bokeh", "3.9"),
    "bokeh_cached_defaults": ("bokeh", "3.9"),
    "bokeh_fresh_receiver": ("bokeh", "3.9"),
    "bokeh_forget_session_callbacks": ("bokeh", "3.9"),
    "bokeh_ws_nodelay": ("bokeh", "3.9"),
    "panel_batched_events": ("panel", "1.9"),
    "panel_debounce": ("panel", "1.9"),
    "panel_periodic_registry": ("panel", "1.9"),
    "panel_html_text_update": ("panel", "1.9"),
    "panel_write_queue": ("panel", "1.9"),
    "panel_scheduled_gc": ("panel", "1.9"),
}
_decided: dict = {}


def _minor(dist: str) -> str:
    try:
        return ".".join(version(dist).split(".")[:2])
    except PackageNotFoundError:
        return "missing"


def patch_enabled(name: str) -> bool:
    """True when the installed version is the one patch ``name`` was written for.

    The answer is computed once per process; a mismatch logs one warning naming the
    patch, the installed and the expected version.
    """
    if name not in _decided:
        off = {n.strip() for n in os.environ.get("GLE_LAB_DISABLE_PATCHES", "").split(",")}
        if name in off:
            _decided[name] = False
            log.info("GLE Lab: %s is disabled by GLE_LAB_DISABLE_PATCHES", name)
            return False
        dist, wanted = PATCHED_FOR[name]
        have = _minor(dist)
        _decided[name] = have == wanted
        if have != wanted:
            log.warning("GLE Lab: %s is written for %s %s.x but %s is installed; "
                        "it is disabled (the dashboard works with the library's defaults)",
                        name, dist, wanted, have)
    return _decided[name]
