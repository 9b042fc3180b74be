"""Bokeh property defaults computed once per class, not once per read (Bokeh 3.9).

Reading a Bokeh property that was never set returns its default, and Bokeh 3.9 derives that
default afresh on every read: ``Property.themed_default`` merges the ``__overridden_defaults__``
of every class in the model's MRO into a new dict (``HasProps._overridden_defaults``), copies
the default and validates it again (``prepare_value``), and it asks again whether the
property's type may have a default that must be made per instance (a walk over the type's
parameters). A session's models read ~5 000 defaults while they are built and ~100 000
while they are serialised (every widget and layout has ~80 properties); in a profile of a
served session that was the largest single cost of the Bokeh side.

:func:`install` memoises the answer to that question per property and class, and the
defaults themselves for defaults that cannot be shared by mistake: immutable values
(``None``, ``bool``, ``int``, ``float``, ``str``, ``Undefined``) of properties read without a
theme override, and empty containers (``[]``, ``{}``, ``set()``: the memo says which, and
every read gets a new empty one, as from Bokeh). Other mutable defaults (non-empty lists,
models) are still made by Bokeh for every instance, and a theme override still wins. The
values returned are the ones Bokeh computes (``tests/app/test_bokeh_defaults.py`` compares every property of every
model class with Bokeh's own). Guarded by :func:`gle_lab.compat.patch_enabled`
("bokeh_cached_defaults").
"""
from __future__ import annotations

from .compat import patch_enabled

__all__ = ["install", "installed", "uninstall"]

_original = None          # Bokeh's three methods, while the memo is installed


def install():
    """Memoise the defaults that cannot be shared by mistake, each class's overridden
    defaults and each property's "unstable default" answer per class (idempotent)."""
    global _original
    if _original is not None or not patch_enabled("bokeh_cached_defaults"):
        return
    from bokeh.core.has_props import HasProps
    from bokeh.core.property.bases import Property
    from bokeh.core.property.descriptors import PropertyDescriptor
    from bokeh.core.property.singletons import Undefined
    from bokeh.core.property.wrappers import (PropertyValueDict, PropertyValueList,
                                              PropertyValueSet)

    immutable = (type(None), bool, int, float, str, type(Undefined))
    empty_containers = (PropertyValueDict, PropertyValueList, PropertyValueSet)
    themed_default = Property.themed_default
    overridden = HasProps.__dict__["_overridden_defaults"].__func__
    has_unstable_default = PropertyDescriptor.has_unstable_default
    # (id(property), class, name, no_eval) -> (property, the value or, for an empty
    # container, its type, whether to make a new one)
    defaults = {}
    per_class = {}        # class -> its merged overridden defaults
    unstable = {}         # (id(descriptor), class) -> (descriptor, bool)

    def cached_themed_default(self, cls, name, theme_overrides, *, no_eval=False):
        if theme_overrides is not None and name in theme_overrides:
            return themed_default(self, cls, name, theme_overrides, no_eval=no_eval)
        key = (id(self), cls, name, no_eval)
        hit = defaults.get(key)
        if hit is not None and hit[0] is self:      # the same property object, not a reused id
            return hit[1]() if hit[2] else hit[1]
        value = themed_default(self, cls, name, theme_overrides, no_eval=no_eval)
        kind = type(value)
        if kind in immutable:
            defaults[key] = (self, value, False)
        elif kind in empty_containers and not value:
            defaults[key] = (self, kind, True)      # a new empty one for every instance
        return value

    def cached_overridden_defaults(cls):
        merged = per_class.get(cls)
        if merged is None:
            merged = per_class[cls] = overridden(cls)
        # a copy: Bokeh's callers get a fresh dict and may change it
        return dict(merged)

    def cached_has_unstable_default(self, obj):
        # a function of the property's type and the class's own overridden defaults only
        key = (id(self), type(obj))
        hit = unstable.get(key)
        if hit is not None and hit[0] is self:
            return hit[1]
        value = has_unstable_default(self, obj)
        unstable[key] = (self, value)
        return value

    _original = (themed_default, overridden, has_unstable_default)
    Property.themed_default = cached_themed_default
    HasProps._overridden_defaults = classmethod(cached_overridden_defaults)
    PropertyDescriptor.has_unstable_default = cached_has_unstable_default


def installed():
    return _original is not None


def uninstall():
    """Bokeh's own methods again (tests compare both)."""
    global _original
    if _original is None:
        return
    from bokeh.core.has_props import HasProps
    from bokeh.core.property.bases import Property
    from bokeh.core.property.descriptors import PropertyDescriptor
    Property.themed_default = _original[0]
    HasProps._overridden_defaults = classmethod(_original[1])
    PropertyDescriptor.has_unstable_default = _original[2]
    _original = None
