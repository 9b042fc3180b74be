"""The "Teacher link" card: pick what students see, get a link (copy button and QR code).

A render-only view over the session state and its :class:`~gle_lab.sharing.Sharing`: the
choices (controls to hide, controls to lock, views to show) are widgets; the link is built by
:meth:`gle_lab.sharing.Sharing.teacher_link` from the current state with those flags, as a full
absolute address with rounded values. The QR code (``segno``, pure Python) is an inline SVG
image, large enough to scan from the back of a room when the card is shown on a projector.

The choices do not change this page: the link opens a new session for each student, in which
hidden controls are not shown and locked ones cannot be changed by any path (see
:attr:`gle_lab.state.LabState.locked`).
"""
from __future__ import annotations

import panel as pn
import param

from ..sharing import GROUPS, KEYS, TEACHER_NAMES, VIEWS
from .controls import lazy_card

#: what a teacher link hides unless the teacher chooses otherwise: this builder itself
DEFAULT_HIDE = ("teacher",)
#: JavaScript of the copy button (the Clipboard API needs a secure context; a plain http page
#: on the lecture-hall network falls back to a selected textarea and execCommand)
def _label(name):
    """Option label: groups are marked as such."""
    return f"{name} (group)" if name in GROUPS else name


def qr_svg_data_uri(text, scale=4):
    """A QR code of ``text`` as an ``data:image/svg+xml`` URI (error correction level L).

    A standalone SVG document with the SVG namespace, percent-encoded (no quotes left to
    end the ``src`` attribute): an ``<img>`` shows nothing of an SVG without the namespace."""
    import segno
    qr = segno.make(text, error="l", micro=False)
    return qr.svg_data_uri(scale=scale, border=2, dark="#000", light="#fff")


class TeacherView(pn.viewable.Viewer):
    """The Teacher-link builder card (outermost CSS class ``gle-view-teacher``)."""

    hide = param.ListSelector(default=list(DEFAULT_HIDE), objects=list(TEACHER_NAMES),
                              doc="Controls and cards the students do not see.")
    lock = param.ListSelector(default=[], objects=list(TEACHER_NAMES),
                              doc="Controls the students see but cannot change.")
    views = param.ListSelector(default=list(VIEWS), objects=list(VIEWS),
                               doc="Views shown to the students.")
    link = param.String("", doc="The full link with the current state and these choices.")

    def __init__(self, state, sharing, **params):
        super().__init__(**params)
        self.state, self.sharing = state, sharing
        opts = {_label(n): n for n in TEACHER_NAMES}
        self.hide_widget = pn.widgets.MultiChoice.from_param(
            self.param.hide, name="Hide", options=opts, sizing_mode="stretch_width",
            css_classes=["gle-teacher-hide"])
        self.lock_widget = pn.widgets.MultiChoice.from_param(
            self.param.lock, name="Lock (shown, cannot be changed)", options=opts,
            sizing_mode="stretch_width", css_classes=["gle-teacher-lock"])
        self.views_widget = pn.widgets.MultiChoice.from_param(
            self.param.views, name="Show views", options=list(VIEWS),
            sizing_mode="stretch_width", css_classes=["gle-teacher-views"])
        self.link_widget = pn.widgets.TextInput(
            label="Teacher link", value="", sizing_mode="stretch_width",
            css_classes=["gle-teacher-link"])
        self.copy = pn.widgets.Button(label="Copy link", color="primary",
                                      sizing_mode="stretch_width",
                                      css_classes=["gle-teacher-copy"],
                                      description="Copy the teacher link to the clipboard.")
        # copies the link by itself (assets/js/page.js: gle.copyLink): no Panel JS link
        self.qr = pn.pane.HTML("", sizing_mode="stretch_width", margin=(4, 10),
                               css_classes=["gle-teacher-qr"])
        self.pane = None
        self.param.watch(self._refresh, ["hide", "lock", "views"])
        sharing.url.param.watch(self._refresh, list(KEYS))
        self._refresh()
        # its controls join the page when the card is first opened (most visitors never do)
        self.pane = lazy_card([
            pn.pane.Markdown("Build a link for students: this state, with the controls you "
                             "choose hidden or locked. It opens a new session per student; "
                             "this page is not changed.", margin=(0, 10),
                             styles={"font-size": "13px"}),
            self.hide_widget, self.lock_widget, self.views_widget, self.link_widget,
            self.copy, self.qr], title="Teacher link",
            sizing_mode="stretch_width", margin=(4, 4), header_background="#eef2f7",
            css_classes=["gle-view-teacher"])
        self.pane.visible = not state.is_hidden("teacher")
        self.pane.param.watch(lambda e: self._draw_qr(), "collapsed")

    def _refresh(self, *events):
        url = self.sharing.teacher_link(hide=self.hide, lock=self.lock, views=self.views)
        if url == self.link:
            return
        self.link = url
        self.link_widget.value = url
        self._draw_qr()

    def _draw_qr(self):
        """The QR code of the current link, drawn only while the card is open (it costs
        ~60 ms of server CPU, a fifth of what a new session may cost)."""
        if self.pane is None or self.pane.collapsed:
            self.qr.object = ""
            return
        self.qr.object = (f'<img src="{qr_svg_data_uri(self.link)}" alt="QR code of the '
                          f'teacher link" style="width:100%;max-width:320px;'
                          f'image-rendering:pixelated">')

    def __panel__(self):
        return self.pane

    @property
    def panel(self):
        return self.pane
