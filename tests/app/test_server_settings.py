"""gle-lab's start-up settings: the garbage collector (gle_lab.serve.tune_gc) and Bokeh's
developer diagnostics (gle_lab.serve.quiet_bokeh_diagnostics)."""
import json
import os
import subprocess
import sys

PROBE = """
import gc, json
import gle_lab.main                       # what a serving process imports before it serves
from gle_lab.serve import tune_gc
before = gc.get_freeze_count()
tuned = tune_gc()
class Cycle:
    pass
a = Cycle(); a.self = a                   # garbage made after start-up is still collected
del a
found = gc.collect()
print(json.dumps({"tuned": tuned, "before": before, "frozen": gc.get_freeze_count(),
                  "threshold": gc.get_threshold(), "collected": found}))
"""


def probe(**env):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_start_up_objects_are_frozen_and_later_garbage_still_collected():
    r = probe(GLE_LAB_GC="")
    assert r["tuned"] is True and r["before"] == 0
    assert r["frozen"] > 100_000                      # Bokeh, Panel, numpy, … (~0.6 million)
    # CPython's thresholds kept: rarer collections let closed sessions' garbage pile up
    assert r["threshold"] == [700, 10, 10]
    assert r["collected"] >= 1                        # a new cycle is still freed


def test_default_keeps_cpythons_settings():
    r = probe(GLE_LAB_GC="default")
    assert r["tuned"] is False and r["frozen"] == 0 and r["threshold"] == [700, 10, 10]


DIAGNOSTICS = """
import json, os
from bokeh.settings import settings
from gle_lab.serve import quiet_bokeh_diagnostics
off = quiet_bokeh_diagnostics()
print(json.dumps({"off": off, "validate": settings.perform_document_validation(),
                  "diagnose": settings.perform_error_diagnostics()}))
"""


def test_bokeh_diagnostics_off_in_the_server_unless_the_environment_asks():
    def run(**env):
        base = {k: v for k, v in os.environ.items()
                if k not in ("BOKEH_VALIDATE_DOC", "BOKEH_PERFORM_ERROR_DIAGNOSTICS")}
        out = subprocess.run([sys.executable, "-c", DIAGNOSTICS], capture_output=True,
                             text=True, env={**base, **env}, timeout=300, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    r = run()
    assert r == {"off": ["perform_document_validation", "perform_error_diagnostics"],
                 "validate": False, "diagnose": False}
    r = run(BOKEH_VALIDATE_DOC="true")
    assert r == {"off": ["perform_error_diagnostics"], "validate": True, "diagnose": False}
