"""PATCH-DOC messages with the lazy reference map are Bokeh's own messages, byte for byte."""
import json

import numpy as np
import pytest
from bokeh.document import Document

from gle_lab import patch_refs
from gle_lab.compat import patch_enabled
from gle_lab.main import Dashboard

pytestmark = pytest.mark.skipif(not patch_enabled("bokeh_lazy_patch_refs"),
                                reason="written for Bokeh 3.9 (Bokeh's own create is used)")


def normalised(msg):
    """Content and buffers with the buffers' ids numbered in order (ids are per call)."""
    content = msg.content_json
    ids = {}
    for buf in msg.buffers:
        ids[buf.id] = f"buffer{len(ids)}"
    for old, new in ids.items():
        content = content.replace(json.dumps(old), json.dumps(new))
    return content, [bytes(buf.to_bytes()) for buf in msg.buffers]


def both(events):
    """(Bokeh's message, the patched message, new models after each) from the same state."""
    from bokeh.protocol.messages.patch_doc import patch_doc
    manager = events[0].document.models
    before = set(manager._new_models)
    a = patch_refs.original_create()(events)
    new_a = set(manager._new_models)
    manager._new_models = set(before)
    b = patch_refs._create(patch_doc, events)
    new_b = set(manager._new_models)
    return a, b, new_a, new_b


def test_frames_and_a_rebuild_give_the_same_messages():
    assert patch_refs.installed()                      # gle_lab.main installs it
    d = Dashboard(preset="phase_inversion")
    doc = Document()
    doc.add_root(d.layout.get_root(doc))
    doc.models.flush_synced()                          # the browser has the first document
    events = []
    doc.callbacks.on_change(lambda ev: events.append(ev))
    compared = streamed = with_new = 0
    for k in range(40):
        if k == 20:
            d.state.preset = "small_network"           # new figures: new models in the patch
        d.tick(n_steps=13)
        if not events:
            continue
        a, b, new_a, new_b = both(list(events))
        events.clear()
        assert normalised(a) == normalised(b)
        assert new_a == new_b
        compared += 1
        streamed += '"ColumnsStreamed"' in a.content_json
        with_new += bool(len(a.content_json) > 20000)
    assert compared >= 30 and streamed >= 30
    assert with_new >= 1                               # the rebuild sent whole new models


def test_lazy_refs_answer_like_the_dict_bokeh_builds():
    d = Dashboard(preset="le_limit")
    doc = Document()
    doc.add_root(d.layout.get_root(doc))
    manager = doc.models
    some = list(manager._models.values())
    manager._new_models = set(some[:5])                # five models the browser lacks
    eager = {id(m): m.ref for m in manager.synced_references}
    lazy = patch_refs.LazySyncedRefs(patch_refs._index(manager), manager._new_models)
    for m in some + [object()]:
        assert (id(m) in lazy) == (id(m) in eager)
        assert lazy.get(id(m)) == eager.get(id(m))
    lazy[id(some[0])] = some[0].ref                    # what the serializer adds
    assert id(some[0]) in lazy and lazy[id(some[0])] == some[0].ref
    # the index follows a change of the model set
    assert patch_refs._index(manager) is patch_refs._index(manager)
    d.state.preset = "small_network"
    index = patch_refs._index(manager)
    assert set(index) == {id(m) for m in manager._models.values()}
    assert np.all([index[id(m)] is m for m in manager._models.values()])
