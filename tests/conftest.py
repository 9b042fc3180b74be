"""Suite-wide settings.

Markers are given by folder (see ``pyproject.toml``): everything under ``tests/ui`` is ``ui``
(real Chromium), the capacity and soak tests of ``tests/app`` are ``load``. ``make test`` runs
everything; ``pytest -m "not ui and not load and not slow"`` is the fast suite.

``GLE_LAB_WITHOUT_NUMBA=1`` runs the suite as on a machine without numba (and llvmlite): both
imports fail here, and the engine honours the variable in the processes the tests start (CLI
runs, Dask workers), so everything takes the numpy paths.
"""
import os
import sys
from pathlib import Path

import pytest

if os.environ.get("GLE_LAB_WITHOUT_NUMBA"):
    sys.modules["numba"] = None          # ``import numba`` raises ImportError
    sys.modules["llvmlite"] = None

HERE = Path(__file__).resolve().parent
LOAD_FILES = {"test_capacity.py", "test_soak.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if HERE / "ui" in path.parents:
            item.add_marker(pytest.mark.ui)
        if path.name in LOAD_FILES:
            item.add_marker(pytest.mark.load)
