"""PATCH-DOC messages whose cost does not grow with the document's model count (Bokeh 3.9).

Every change Bokeh sends to a browser is one PATCH-DOC message, and Bokeh 3.9 builds each
one with ``Serializer(references=doc.models.synced_references)``: a new set of every model
of the document and a new ``Ref`` object per model, only so that the serializer can ask
"is this model already in the browser?" for the few models the message mentions. With a
dashboard session of ~800 models that is ~2 ms of server CPU per frame, per session, spent
before a single value is encoded (profiled: the largest single cost of a streaming frame).

:func:`install` replaces ``patch_doc.create`` with the same message built against a lazy
view of the same references: the answer for a model is computed when the serializer asks
(``id(model)`` → the model, from an index rebuilt only when the document's model set
changes). The encoded message is identical (``tests/app/test_patch_refs.py`` compares it
with Bokeh's own on real frames, new models included). Guarded by
:func:`gle_lab.compat.patch_enabled` ("bokeh_lazy_patch_refs"): on another Bokeh version
Bokeh's own ``create`` is kept.
"""
from __future__ import annotations

from typing import Any

from .compat import patch_enabled

__all__ = ["LazySyncedRefs", "install", "installed"]

_original_create = None


class LazySyncedRefs:
    """``{id(model): model.ref}`` for the synced models of a document, answered on demand.

    Implements the part of a dict that :class:`bokeh.core.serialization.Serializer` uses
    for its ``_references`` (``in``, ``get``, item assignment for models it adds while
    encoding).
    """

    __slots__ = ("_by_pyid", "_new", "_added")

    def __init__(self, by_pyid, new_models):
        self._by_pyid = by_pyid          # id(model) -> model, every model of the document
        self._new = new_models           # models the browser does not have yet
        self._added = {}

    def _synced(self, key):
        model = self._by_pyid.get(key)
        if model is None or model in self._new:
            return None
        return model

    def __contains__(self, key):
        return key in self._added or self._synced(key) is not None

    def get(self, key, default=None):
        ref = self._added.get(key)
        if ref is not None:
            return ref
        model = self._synced(key)
        return default if model is None else model.ref

    def __getitem__(self, key):
        ref = self.get(key)
        if ref is None:
            raise KeyError(key)
        return ref

    def __setitem__(self, key, value):
        self._added[key] = value


def _index(manager):
    """id(model) -> model for ``manager``'s current model set (cached until it changes:
    Bokeh's ``recompute`` always installs a new ``_models`` dict)."""
    models = manager._models
    cached = getattr(manager, "_gle_pyid_index", None)
    if cached is not None and cached[0] is models:
        return cached[1]
    index = {id(m): m for m in models.values()}
    manager._gle_pyid_index = (models, index)
    return index


def _create(cls, events, **metadata: Any):
    """``patch_doc.create`` of Bokeh 3.9 with a lazy reference map (same message)."""
    from bokeh.core.serialization import Serializer
    from bokeh.protocol.messages.patch_doc import PatchJson

    header = cls.create_header()
    if not events:
        raise ValueError("PATCH-DOC message requires at least one event")
    docs = {event.document for event in events}
    if len(docs) != 1:
        raise ValueError("PATCH-DOC message configured with events for more than one document")
    [doc] = docs
    manager = doc.models
    serializer = Serializer()
    serializer._references = LazySyncedRefs(_index(manager), manager._new_models)
    patch_json = PatchJson(events=serializer.encode(events))
    manager.flush_synced(lambda model: not serializer.has_ref(model))
    msg = cls(header, metadata, patch_json)
    msg.add_buffers(*serializer.buffers)
    return msg


def install():
    """Use the lazy reference map for every PATCH-DOC of this process (idempotent)."""
    global _original_create
    if _original_create is not None or not patch_enabled("bokeh_lazy_patch_refs"):
        return
    from bokeh.protocol.messages.patch_doc import patch_doc
    _original_create = patch_doc.__dict__["create"]
    patch_doc.create = classmethod(_create)


def installed():
    return _original_create is not None


def original_create():
    """Bokeh's own ``patch_doc.create`` (bound), whether or not the patch is installed."""
    from bokeh.protocol.messages.patch_doc import patch_doc
    if _original_create is None:
        return patch_doc.create
    return _original_create.__get__(None, patch_doc)
