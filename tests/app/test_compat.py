"""Private-internals patches run only on the versions they were written for."""
import logging

import pytest
from bokeh.document import Document

from gle_lab import compat
from gle_lab.views import style


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(compat, "_decided", {})
    return compat


def test_installed_versions_enable_every_patch(fresh):
    assert all(fresh.patch_enabled(name) for name in fresh.PATCHED_FOR)


def test_other_version_disables_with_one_warning(fresh, monkeypatch, caplog):
    monkeypatch.setattr(fresh, "version", lambda dist: "3.10.1" if dist == "bokeh" else "1.9.4")
    with caplog.at_level(logging.WARNING, logger="gle_lab"):
        assert fresh.patch_enabled("bokeh_paint_fixes") is False
        assert fresh.patch_enabled("bokeh_paint_fixes") is False
        assert fresh.patch_enabled("panel_debounce") is True
    warnings = [r for r in caplog.records if "bokeh_paint_fixes" in r.getMessage()]
    assert len(warnings) == 1
    assert "3.10" in warnings[0].getMessage() and "3.9" in warnings[0].getMessage()
    assert paint_fix_callbacks() == 0       # skipped on the other version


def paint_fix_callbacks():
    doc = Document()
    style.install_paint_fixes(doc)
    return sum(cb.code == style.PAINT_FIXES_JS
               for cb in doc.callbacks._js_event_callbacks.get("document_ready", []))


def test_matching_version_installs_the_page_fixes(fresh):
    assert paint_fix_callbacks() == 1


def test_patches_can_be_turned_off_by_name(fresh, monkeypatch):
    monkeypatch.setenv("GLE_LAB_DISABLE_PATCHES", "panel_batched_events, bokeh_paint_fixes")
    assert fresh.patch_enabled("panel_batched_events") is False
    assert fresh.patch_enabled("bokeh_paint_fixes") is False
    assert fresh.patch_enabled("panel_debounce") is True
    assert paint_fix_callbacks() == 0
