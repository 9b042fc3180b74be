"""Lessons: data files are complete, cover every preset, render, and their steps apply."""
from __future__ import annotations

import math

import pytest
from bokeh.document import Document

from gle_lab.lessons import LESSONS, apply_step, lessons_for
from gle_lab.main import Dashboard
from gle_lab.presets import PRESETS
from gle_lab.state import LabState


def test_every_preset_has_a_lesson_and_required_topics_exist():
    for preset in PRESETS:
        assert lessons_for(preset), preset
    for name in ("phase_inversion", "le_limit", "chain_ie", "fourier_adjoint"):
        assert name in LESSONS
    text = " ".join(e["label"] for e in LESSONS["fourier_adjoint"]["equations"])
    for eq in ("Eq. 9", "Eq. 10", "Eqs. 11-12", "Eq. 13"):
        assert eq in text
    assert any("Eq. 6" in e["label"] for e in LESSONS["phase_inversion"]["equations"])
    assert any("Eq. 7" in e["label"] for e in LESSONS["chain_ie"]["equations"])


@pytest.mark.parametrize("name", list(LESSONS))
def test_lesson_steps_are_valid_and_apply(name):
    lesson = LESSONS[name]
    assert 2 <= len(lesson["try"]) <= 3
    st = LabState(preset=lesson["preset"])
    for step in lesson["try"]:
        apply_step(st, step)
        for key, value in step["set"].items():
            assert getattr(st, key) == value, (name, key)
        assert st.message_level == "info" and step["label"] in st.message


def test_tau_r_step_flips_the_phase():
    st = LabState(preset="phase_inversion")
    assert st.analytic("forward").imag < 0                 # lags
    apply_step(st, LESSONS["phase_inversion"]["try"][0])   # τr = 2 > τm
    assert st.tau_r == 2.0 and float(st.net.tau_r[0][0]) == 2.0
    import numpy as np
    ph = float(np.angle(st.analytic("forward", discrete=False)))
    assert math.isclose(ph, math.atan(2.0) - math.atan(1.0), abs_tol=1e-12)


def test_lesson_view_follows_preset_and_buttons_apply():
    d = Dashboard()
    d.layout.get_root(Document())
    lv = d.lesson
    assert lv.lesson["name"] == "phase_inversion"
    assert lv.select.visible                               # two lessons for this preset
    assert len(lv.buttons) == 3
    # a closed lesson's card holds the bar only (its body sends no models); opened, the body
    assert list(lv.pane.objects) == [lv.bar] and not lv.body.visible
    lv.toggle.value = True
    assert list(lv.pane.objects) == [lv.bar, lv.body] and lv.body.visible
    eqs = [o for o in _walk(lv.body) if type(o).__name__ == "LaTeX"]
    assert len(eqs) == len(lv.lesson["equations"])
    assert all(o.object.startswith("$$") for o in eqs)
    lv.buttons[0].clicks += 1                              # "set τr = 2"
    assert d.state.tau_r == 2.0
    lv.select.value = "fourier_adjoint"
    assert lv.lesson["name"] == "fourier_adjoint" and "Eq. 13" in lv.pane.title + str(
        [e["label"] for e in lv.lesson["equations"]])
    d.state.preset = "chain"
    assert lv.lesson["name"] == "chain_ie" and not lv.select.visible
    lv.click(0)                                            # IE errors
    assert d.state.error_mode == "ie" and d.state.net.error_mode == "ie"


def _walk(obj):
    yield obj
    for child in getattr(obj, "objects", []) or []:
        yield from _walk(child)
