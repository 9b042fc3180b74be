"""Presets: gle_core configuration dicts stored as JSON in ``assets/presets/*.json``.

Each file is a :func:`gle_core.config.build_simulator` configuration plus a few keys the
dashboard reads: ``name``, ``title``, ``description`` and ``ui`` (``neuron``: the neuron shown
in the Fourier and phase views, ``speed``: simulated a.u. per wall second, ``window``: a.u. of
the scrolling traces, ``tau_max``: upper end of the τ sliders).
"""
from __future__ import annotations

import copy
import json
from .resources import asset, json_files

PRESET_DIR = asset("presets")
#: display order (files not listed here follow alphabetically)
ORDER = ("phase_inversion", "le_limit", "leaky_integrator", "chain", "small_network")
UI_DEFAULTS = {"neuron": 0, "speed": 4.0, "window": 20.0, "tau_max": 10.0}


def load_presets(directory=PRESET_DIR) -> dict:
    """All presets in ``directory``, keyed by name, in display order."""
    found = {}
    for path in json_files(directory):
        cfg = json.loads(path.read_text(encoding="utf-8"))
        cfg.setdefault("name", path.name[:-len(".json")])
        cfg.setdefault("title", cfg["name"])
        cfg.setdefault("description", "")
        cfg["ui"] = {**UI_DEFAULTS, **cfg.get("ui", {})}
        found[cfg["name"]] = cfg
    names = [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)
    return {n: found[n] for n in names}


PRESETS = load_presets()


def get_preset(name: str) -> dict:
    """A deep copy of preset ``name`` (safe to modify)."""
    return copy.deepcopy(PRESETS[name])
