"""Package data: presets, lessons and page scripts, read with :mod:`importlib.resources`.

In the repository the data live in the top-level ``assets/`` folder; installed (wheel or
editable), the same folder is the package ``gle_lab.assets`` (see ``pyproject.toml``), so
nothing here depends on where the repository is.
"""
from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

__all__ = ["asset", "json_files"]


def asset(*parts: str) -> Traversable:
    """The packaged file or folder ``assets/<parts...>``."""
    node = files("gle_lab.assets")
    for part in parts:
        node = node / part
    return node


def json_files(folder) -> list:
    """The ``*.json`` files of a packaged folder (a Traversable or a path), sorted by name."""
    return sorted((p for p in folder.iterdir() if p.name.endswith(".json")),
                  key=lambda p: p.name)
