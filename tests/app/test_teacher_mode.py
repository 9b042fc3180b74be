"""Teacher mode that holds (issue #10, item 3), in-process.

``locked`` and ``hidden`` are parameters of the one session state: with ``lock=tau_m`` no path
(a lesson's "Try" step, a loaded session file, a later URL change, the control itself, a preset
or seed rebuild) changes τm, and the state says so in its ``notice``. Every card, Export
included, can be hidden. The Share field and the Teacher-link card hold full absolute links
with rounded values, and such a link reproduces the run it was made from.
"""
from __future__ import annotations

import json
import re
from base64 import b64decode
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree

import numpy as np
from bokeh.document import Document
from panel.io.location import Location
from panel.util import edit_readonly

from gle_lab.lessons import LESSONS, apply_step
from gle_lab.main import Dashboard

from .sessions import served
from gle_lab.sharing import LOCKED



def taus(st):
    return [float(a[0]) for a in st.net.tau_m]


def test_lesson_step_cannot_change_a_locked_tau_m():
    d, _ = served("?preset=le_limit&lock=tau_m")
    st = d.state
    assert st.locked == ["tau_m"] and st.is_locked("tau_m") and not st.is_locked("tau_r")
    step = next(s for s in LESSONS["le_limit"]["try"] if s["set"].get("tau_m") == 5.0)
    serial = st.notice_serial
    changed = apply_step(st, step)
    assert "tau_m" not in changed and "tau_r" in changed      # the unlocked part applies
    assert st.tau_m == 1.0 and taus(st) == [1.0]
    assert st.tau_r == 5.0 and float(st.net.tau_r[0][0]) == 5.0
    assert st.notice_serial > serial and st.notice_level == "warning"
    assert "τm is locked by the teacher" in st.notice and "lesson step" in st.notice
    assert "locked" in st.message and st.message_level == "warning"


def test_session_file_cannot_change_a_locked_tau_m_nor_unlock_it():
    a, _ = served("?preset=le_limit&tau_m=4&tau_r=4")
    text = a.sharing.session_json()
    assert json.loads(text)["state"]["lock"] is None          # the file has no lock
    b, _ = served("?preset=le_limit&lock=tau_m")
    problems = b.sharing.load_session(text)
    st = b.state
    assert ("tau_m", LOCKED) in problems
    assert taus(st) == [1.0] and st.tau_m == 1.0
    assert float(st.net.tau_r[0][0]) == 4.0                   # the rest of the file applies
    assert st.locked == ["tau_m"]                             # and the lock still holds
    assert "τm is locked" in st.notice and "session file" in st.notice
    assert "Locked by the teacher" in st.message


def test_url_change_cannot_change_a_locked_tau_m():
    d, loc = served("?preset=chain&seed=2&tau_m=0.5,2&lock=tau_m")
    st = d.state
    assert taus(st) == [0.5, 2.0] and st.locked == ["tau_m"]  # the link itself set them
    d.sharing.url.tau_m = "3,3"                               # the address bar changes
    assert taus(st) == [0.5, 2.0]
    assert "τm is locked" in st.notice and "URL" in st.notice
    d.sharing.url.seed = 7                                    # a rebuild would redraw τm
    assert st.seed == 2 and taus(st) == [0.5, 2.0]
    assert "redraw τm" in st.notice
    d.sharing.url.omega = 2.5                                 # unlocked values still apply
    assert st.omega == 2.5


def test_control_and_preset_paths_respect_the_lock():
    d, _ = served("?preset=chain&lock=tau_m,experiment")
    st = d.state
    before = taus(st)
    st.tau_m = 7.0                                            # what a slider would do
    assert st.tau_m == before[st.neuron] and taus(st) == before
    st.preset = "phase_inversion"
    assert st.preset == "chain" and "locked" in st.notice
    st.tau_r = 0.3                                            # not locked
    assert float(st.net.tau_r[1][0]) == 0.3
    d.tick(n_steps=20)                                        # the guard left no mute state
    st.gamma = 0.5
    assert st.net.gamma == 0.5


def test_every_card_can_be_hidden_export_included():
    d, loc = served("?hide=export,share,teacher,learning&lock=learning")
    assert d.export.pane.visible is False
    assert d.sharing.share_card.visible is False
    assert d.teacher.pane.visible is False
    assert d.controls.cards["learning"].visible is False
    assert d.state.hidden == ["export", "share", "teacher", "learning"]
    assert d.state.is_hidden("gamma") and d.state.is_locked("lr")
    assert dict(parse_qsl(loc.search[1:]))["hide"] == "export,share,teacher,learning"
    d.sharing.hidden = []                                    # the state drives the cards
    assert d.export.pane.visible and d.sharing.share_card.visible and d.teacher.pane.visible


def _numbers(query):
    nums = []
    for k, v in parse_qsl(query):
        if k in ("tau_m", "tau_r", "W"):
            nums += v.split(",")
    return nums


def test_share_field_is_an_absolute_link_with_rounded_values_that_reproduces_the_run():
    d, _ = served("?preset=chain&seed=5")
    link = d.sharing.link.value
    parts = urlsplit(link)
    assert parts.scheme in ("http", "https") and parts.netloc and parts.path
    nums = _numbers(parts.query)
    assert len(nums) == 6
    for n in nums:                                           # ≤ 4 significant digits
        assert len(re.sub(r"[-.]|e.*$", "", n).lstrip("0")) <= 4, n
    # the chain draws τm and W at random: the rounded link still gives the same traces
    e, _ = served("?" + parts.query)
    assert taus(e.state) == taus(d.state)
    for x in (d, e):
        for _ in range(5):
            x.tick(n_steps=40)
    assert np.array_equal(d.traces.source.data["r1"], e.traces.source.data["r1"])


def test_share_link_uses_the_page_address():
    d = Dashboard(preset="le_limit")
    d.layout.get_root(Document())
    loc = Location(search="?preset=le_limit")
    with edit_readonly(loc):                # what Panel holds once the page reported it
        loc.param.update(protocol="https:", hostname="lab.example.org", port="8443")
    d.sharing.sync_location(loc)
    assert d.sharing.link.value.startswith("https://lab.example.org:8443/?preset=le_limit")
    with edit_readonly(loc):                # the page reports another port later
        loc.port = "9000"
    assert d.sharing.link.value.startswith("https://lab.example.org:9000/?")


def test_teacher_link_builder_makes_a_link_with_qr_code():
    d, _ = served("?preset=chain&seed=1")
    t = d.teacher
    root = t.pane.get_root(Document())
    assert "gle-view-teacher" in root.css_classes
    t.lock = ["tau_m", "learning"]
    t.hide = ["teacher", "export", "seed"]
    t.views = ["phase", "activity"]
    parts = urlsplit(t.link)
    assert parts.scheme == "http" and parts.netloc
    q = dict(parse_qsl(parts.query))
    assert q["lock"] == "tau_m,learning" and q["hide"] == "teacher,export,seed"
    assert q["views"] == "phase,activity" and q["preset"] == "chain" and q["seed"] == "1"
    assert t.link_widget.value == t.link
    assert t.qr.object == ""                 # drawn only once the card is opened
    t.pane.collapsed = False
    img = re.search(r'src="data:image/svg\+xml(;[^,"]*)?,([^"]+)"', t.qr.object)
    data = img.group(2)
    svg = ElementTree.fromstring(b64decode(data) if "base64" in (img.group(1) or "")
                                 else unquote(data))
    # a standalone SVG document: an <img> shows nothing of an SVG outside this namespace
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.find(".//{http://www.w3.org/2000/svg}path") is not None
    assert "alt=\"QR code" in t.qr.object
    # this page is not changed by the builder; the link opens a locked session
    assert d.state.locked == [] and d.state.hidden == []
    s, _ = served("?" + parts.query)
    assert s.state.locked == ["tau_m", "learning"] and s.state.is_locked("gamma")
    assert s.teacher.pane.visible is False and s.export.pane.visible is False
    old = taus(s.state)
    apply_step(s.state, {"label": "slow", "set": {"tau_m": 5.0}})
    assert taus(s.state) == old
    # the link follows the state
    d.state.omega = 2.0
    assert dict(parse_qsl(urlsplit(t.link).query))["omega"] == "2.0"
