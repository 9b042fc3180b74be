"""Memoised Bokeh property defaults (gle_lab.bokeh_defaults) are Bokeh's own defaults."""
import json
import warnings

import pytest
from bokeh.core.has_props import HasProps
from bokeh.document import Document
from bokeh.model import Model
from bokeh.plotting import figure

from gle_lab import bokeh_defaults
from gle_lab.compat import patch_enabled
from gle_lab.main import Dashboard

pytestmark = pytest.mark.skipif(not patch_enabled("bokeh_cached_defaults"),
                                reason="written for Bokeh 3.9 (Bokeh's own defaults are used)")


@pytest.fixture
def restore():
    """Leave the process as it was: patched (the app installs it at import)."""
    was = bokeh_defaults.installed()
    yield
    bokeh_defaults.uninstall()
    if was:
        bokeh_defaults.install()


def comparable(value):
    if isinstance(value, HasProps):
        return ("model", type(value).__name__)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [comparable(v) for v in value])
    if isinstance(value, dict):
        return (type(value).__name__, {k: comparable(v) for k, v in value.items()})
    return repr(value)


def all_defaults():
    """{(class, property): default} for every property of every Bokeh model class."""
    out = {}
    for name, cls in sorted(Model.model_class_reverse_map.items()):
        for prop in sorted(cls.properties()):
            descriptor = cls.lookup(prop)
            out[(name, prop)] = comparable(descriptor.class_default(cls))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")    # deprecated classes are left out
                obj = cls()
        except Exception:                         # noqa: BLE001 (needs arguments, deprecated)
            continue
        for prop in sorted(cls.properties()):
            out[(name, prop, "unstable")] = cls.lookup(prop).has_unstable_default(obj)
    return out


def test_every_class_default_is_bokehs(restore):
    bokeh_defaults.uninstall()
    theirs = all_defaults()
    bokeh_defaults.install()
    assert bokeh_defaults.installed()
    first, again = all_defaults(), all_defaults()       # computed, then from the cache
    assert len(theirs) > 3000
    assert first == theirs and again == theirs


def test_mutable_defaults_are_new_for_every_instance_and_themes_still_win(restore):
    bokeh_defaults.install()
    a, b = figure(), figure()
    assert a.renderers == [] and a.renderers is not b.renderers
    a.renderers.append(b.xaxis[0])               # a mutated default stays with its model
    assert figure().renderers == []
    assert a.css_classes is not b.css_classes and a.tags is not b.tags
    a.tags.append("mine")                        # an empty default is new for every model
    assert figure().tags == [] and type(b.tags).__name__ == "PropertyValueList"
    assert a.styles is not b.styles and type(b.styles).__name__ == "PropertyValueDict"
    assert a.background_fill_color == "#ffffff"
    a.apply_theme({"background_fill_color": "#123456"})
    assert a.background_fill_color == "#123456" and b.background_fill_color == "#ffffff"
    a.unapply_theme()
    assert a.background_fill_color == "#ffffff"


def test_a_dashboard_document_serialises_the_same(restore):
    bokeh_defaults.install()
    doc = Document()
    doc.add_root(Dashboard(preset="small_network").layout.get_root(doc))
    ours = json.dumps(doc.to_json(deferred=False), sort_keys=True)
    bokeh_defaults.uninstall()
    theirs = json.dumps(doc.to_json(deferred=False), sort_keys=True)
    assert len(ours) > 100_000 and ours == theirs
