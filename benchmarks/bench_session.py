"""What one visitor costs the server: building a session and serialising its document.

    python benchmarks/bench_session.py [--runs 5] [--preset NAME ...] [--layout present]

Per preset, the median over ``--runs`` of the server CPU (process time) to build the session
(``create_app`` + its Bokeh models) and to serialise the whole document
(``Document.to_json``), with the model count and the JSON size; then the same for a served
session, whose first document is the first screen only ("first doc": build + serialise, what
stands between the request and the page), and the CPU of completing its layout after the
first frame (the later views built and their patch message), and how much of the served
session's CPU Python's garbage collector took ("gc"). By default it first does what
``gle-lab`` does at start-up (:func:`gle_lab.serve.tune_gc`: start-up objects frozen out of
the collector's way; :func:`gle_lab.serve.quiet_bokeh_diagnostics`); ``--settings default``
keeps Python's and Bokeh's defaults. Target (issue #11): build +
serialise ≤ 0.3 s of CPU for every preset. "(best)": the fastest of the runs, the session's
own cost with the least interference (on this shared VM the same build varies by ±30 %
between runs; compare medians only within one run). Prints, asserts nothing; the load
average is printed with the figures.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time

from bokeh.document import Document
from panel.io.state import set_curdoc

from gle_lab.main import create_app
from gle_lab.presets import PRESETS


def one(preset):
    """(build, serialise, models, bytes) of a whole session document (as outside a server)."""
    doc = Document()
    t0 = time.process_time()
    with set_curdoc(doc):
        doc.add_root(create_app(preset).get_root(doc))
    t1 = time.process_time()
    js = doc.to_json()
    t2 = time.process_time()
    size = len(json.dumps(js, default=str))
    return t1 - t0, t2 - t1, len(doc.models), size


class GCTimer:
    """CPU seconds spent in Python's garbage collector (``gc.callbacks``) since ``reset``."""

    def __init__(self):
        self.seconds, self._t0 = 0.0, None
        gc.callbacks.append(self._on)

    def _on(self, phase, info):
        if phase == "start":
            self._t0 = time.process_time()
        elif self._t0 is not None:
            self.seconds += time.process_time() - self._t0
            self._t0 = None

    def reset(self):
        self.seconds = 0.0


#: the viewport a served session's page reports, per ``--layout``
VIEWPORTS = {"wide": None, "present": "1280x720", "phone": "390x844"}


def served(preset, layout="wide"):
    """A served session: (build, serialise) of its first document, its models, and the CPU of
    completing the layout after the first frame (building the later views + their patch).
    ``layout``: the page's layout from the start (a phone's user agent, a ``?present`` link;
    "wide" = no viewport reported)."""
    from bokeh.protocol import Protocol
    from gle_lab.main import Dashboard
    from gle_lab.mnist import MnistDashboard
    doc = Document()
    t0 = time.process_time()
    with set_curdoc(doc):
        if preset == "mnist1d":                          # its own page (gle_lab.mnist)
            d = MnistDashboard(progressive=True)
            d.sync_location()
        else:
            d = Dashboard(preset=preset, progressive=True)
            d.sharing.sync_location()
            if VIEWPORTS[layout]:
                d.set_viewport(VIEWPORTS[layout])
        doc.add_root(d.layout.get_root(doc))
    t1 = time.process_time()
    doc.to_json()
    t2 = time.process_time()
    n_first = len(doc.models)
    doc.models.flush_synced()
    events = []
    doc.callbacks.on_change(lambda ev: events.append(ev))
    with set_curdoc(doc):
        d.tick(n_steps=13)
        events.clear()
        t3 = time.process_time()
        d.complete_layout()
        Protocol().create("PATCH-DOC", list(events))
        t4 = time.process_time()
    return t1 - t0, t2 - t1, n_first, t4 - t3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--preset", nargs="*", default=list(PRESETS) + ["mnist1d"])
    p.add_argument("--settings", choices=("gle-lab", "default"), default="gle-lab",
                   help="gle-lab: what gle-lab sets at start-up (start-up objects frozen out "
                        "of the GC's way, Bokeh's developer diagnostics off; the default); "
                        "default: Python's and Bokeh's defaults")
    p.add_argument("--layout", choices=list(VIEWPORTS), default="wide",
                   help="the served session's page layout (wide: the default)")
    p.add_argument("--served-only", action="store_true",
                   help="skip the whole-document columns (as outside a server)")
    args = p.parse_args(argv)
    one(args.preset[0])                                  # imports, numba, first templates
    if args.settings == "gle-lab":
        from gle_lab.serve import quiet_bokeh_diagnostics, tune_gc
        os.environ.pop("GLE_LAB_GC", None)
        tune_gc()
        quiet_bokeh_diagnostics()
    timer = GCTimer()
    print(f"# session cost, median of {args.runs} (CPU seconds), settings {args.settings}, "
          f"served layout {args.layout}, GC frozen "
          f"{gc.get_freeze_count()}"
          f"   loadavg {' '.join(os.getloadavg().__repr__().strip('()').split(', '))}")
    print(f"{'preset':>18} {'build':>7} {'serialise':>9} {'total':>7} {'models':>6} {'KB':>5}"
          f"   | served: {'first doc':>9} {'(best)':>6} {'models':>6} {'complete later':>14} "
          f"{'gc':>6}")
    for preset in args.preset:
        if args.served_only:
            line = f"{preset:>18} {'':7} {'':9} {'':7} {'':6} {'':5}"
        else:
            rows = [one(preset) for _ in range(args.runs)]
            b = statistics.median(r[0] for r in rows)
            s = statistics.median(r[1] for r in rows)
            line = (f"{preset:>18} {b:7.3f} {s:9.3f} {b + s:7.3f} {rows[0][2]:6d} "
                    f"{rows[0][3] / 1024:5.0f}")
        srv, gcs = [], []
        for _ in range(args.runs):
            timer.reset()
            srv.append(served(preset, args.layout))
            gcs.append(timer.seconds)
        first = statistics.median(r[0] + r[1] for r in srv)
        best = min(r[0] + r[1] for r in srv)
        later = statistics.median(r[3] for r in srv)
        line += (f"   |         {first:9.3f} {best:6.3f} {srv[0][2]:6d} {later:14.3f} "
                 f"{statistics.median(gcs):6.3f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
