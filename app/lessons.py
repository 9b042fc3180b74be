"""Guided lessons: data in ``assets/lessons/*.json`` (one lesson per file).

A lesson names its ``preset`` and holds ``title``, ``look`` (Markdown: what to look at),
``equations`` (``[{label, latex}]``, the paper's numbering in the labels) and ``try`` steps
(``[{label, set: {LabState parameter: value}, expect}]``): clicking a step sets those parameters
(``neuron`` first, so that τm/τr act on the right neuron). ``order`` sorts lessons of a preset.
"""
from __future__ import annotations

import json
from .resources import asset, json_files

LESSON_DIR = asset("lessons")
REQUIRED = ("name", "preset", "title", "look", "equations", "try")


def load_lessons(directory=LESSON_DIR) -> dict:
    """All lessons, keyed by name, sorted by (``order``, name)."""
    found = {}
    for path in json_files(directory):
        lesson = json.loads(path.read_text(encoding="utf-8"))
        lesson.setdefault("name", path.name[:-len(".json")])
        missing = [k for k in REQUIRED if k not in lesson]
        if missing:
            raise ValueError(f"lesson {path.name} lacks {', '.join(missing)}")
        found[lesson["name"]] = lesson
    return dict(sorted(found.items(), key=lambda kv: (kv[1].get("order", 99), kv[0])))


LESSONS = load_lessons()


def lessons_for(preset: str) -> list:
    """The lessons of ``preset`` (first = the default one)."""
    return [lesson for lesson in LESSONS.values() if lesson["preset"] == preset]


def apply_step(state, step):
    """Apply a "try this" step to a :class:`~gle_lab.state.LabState`; returns what changed.

    ``neuron`` is applied first; every value goes through the state's own parameters (bounds,
    engine checks), so a refused value shows the usual message. A value the teacher locked
    (:attr:`~gle_lab.state.LabState.locked`) is not changed: the state's ``notice`` says so and
    the step's message names it.
    """
    values = dict(step["set"])
    order = (["neuron"] if "neuron" in values else []) + [k for k in values if k != "neuron"]
    for key in order:
        if key not in state.param:
            raise KeyError(f"lesson step sets unknown parameter {key!r}")
    changed, refused = [], []
    with state.changes_from("the lesson step"):
        for key in order:
            value = values[key]
            if getattr(state, key) == value:
                continue
            if state.is_locked(key) or (key in ("preset", "seed") and state.value_locks()):
                refused.append(state.refuse_locked(key, value))
                continue
            setattr(state, key, value)
            changed.append(key)
    text = f"Lesson step: {step['label']}. {step.get('expect', '')}".strip()
    if refused:
        text += " — " + " ".join(refused)
    state.notify(text, "warning" if refused else "info")
    if refused:
        state.toast(" ".join(refused), "warning")
    return changed
