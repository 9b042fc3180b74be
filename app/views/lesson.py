"""Lesson view: the guided lesson of the current preset, on one line until opened.

The bar (always one line on a projector): an "open" toggle, the lesson's title and its
numbered "try this" steps as buttons (a step's button gets a check mark once applied, and its
expected result appears as a toast, see :class:`gle_lab.main.Dashboard`). On a phone the steps
stand one under the other at the column's full width, each one tap away. Opened, it shows
what to look at (Markdown), the equations involved (KaTeX, the paper's equation numbers) and
each step with its expected result. Rebuilt when the preset changes; a selector appears when a
preset has more than one lesson (see :mod:`gle_lab.lessons`).
"""
from __future__ import annotations

import html

import panel as pn
from panel.viewable import Viewer

from gle_lab.lessons import apply_step, lessons_for
from gle_lab.views.controls import on_click

CSS = """
.gle-lesson-eq-label {font-size: 14px; color: #4d4d4d;}
.gle-lesson-expect {font-size: 15px; color: #333333;}
.gle-lesson-title {font-size: 17px; font-weight: 600; color: #222222; white-space: nowrap; margin: 0;
                   overflow: hidden; text-overflow: ellipsis; line-height: 40px;}
:host(.gle-lesson-phone) .gle-lesson-title {white-space: normal; line-height: 22px;
                                            padding: 9px 0;}
"""
#: the step buttons: real buttons (border, left-aligned label), one line each
STEP_CSS = """
.bk-btn {text-align: left; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
         border: 1px solid #595959; min-height: 40px; font-size: 15px; color: #1a1a1a;}
:host(.gle-done) .bk-btn {border: 2px solid #1a6e3a; background: #eef7f0;}
@media (max-width: 480px) { .bk-btn {min-height: 44px;} }
:host(.gle-lesson-phone) .bk-btn {white-space: normal; min-height: 44px;}
"""
#: a step button's width in the one-line bar: its label's (≈ 7.6 px a character at 15 px,
#: and the padding), at most STEP_MAX_WIDTH; every lesson's steps then fit one line at
#: 1280 px beside the title, which gives way first (ellipsis)
STEP_PX_PER_CHAR, STEP_PADDING, STEP_MAX_WIDTH = 7.6, 30, 340


def step_width(label):
    """The one-line bar's width (px) for a step button showing ``label``."""
    return int(min(STEP_MAX_WIDTH, STEP_PADDING + STEP_PX_PER_CHAR * len(label)))


def _step_name(i, step, done=False):
    return f"{'✓ ' if done else ''}{i + 1}. {step['label']}"


class LessonView(Viewer):
    title = "Lesson"

    def __init__(self, state, **params):
        super().__init__(**params)
        self.state = state
        self.mode = None
        self.select = pn.widgets.Select(label="Lesson", options={}, width=280,
                                        css_classes=["gle-lesson-select"], margin=(0, 8))
        self.toggle = pn.widgets.Toggle(label="▸ Lesson", value=False, width=110, height=40,
                                        css_classes=["gle-lesson-open"], margin=(0, 8))
        self.heading = pn.pane.HTML("", stylesheets=[CSS], margin=(0, 8), min_width=120,
                                    sizing_mode="stretch_width")
        # the steps: in one line (a Row) on wider screens, one under the other on a phone
        self.steps_bar = pn.Row(margin=0)
        self.bar = pn.Row(self.toggle, self.heading, self.steps_bar,
                          sizing_mode="stretch_width", margin=0,
                          styles={"flex-wrap": "wrap", "align-items": "center"})
        self.body = pn.Column(sizing_mode="stretch_width", margin=0)
        self.body.visible = False
        self.toggle.param.watch(self._on_toggle, "value")
        self.pane = pn.Card(self.bar, title="Lesson", hide_header=True,
                            collapsed=False, sizing_mode="stretch_width", margin=(2, 10),
                            styles={"background": "#f7f3ea", "border-radius": "6px"},
                            css_classes=["gle-lesson", "gle-view-lesson"], stylesheets=[CSS])
        self.buttons = []
        self.done = set()
        self.lesson = None
        self.select.param.watch(lambda e: self.show(e.new), "value")
        state.param.watch(lambda e: self.rebuild(), "structure")
        self.rebuild()

    def set_mode(self, mode):
        """Fit the bar to a page layout: on a phone ("phone") the title wraps and the step
        buttons stand one under the other at full width (a row of them is wider than a
        phone, and a clipped row cannot be scrolled)."""
        if mode == self.mode:
            return
        self.mode = mode
        phone = mode == "phone"
        self.heading.css_classes = ["gle-lesson-phone"] if phone else []
        kind = pn.Column if phone else pn.Row
        # on a phone the steps take a line of their own in the bar (which wraps)
        sizing = dict(sizing_mode="stretch_width", styles={"flex": "1 1 100%"}) if phone else {}
        self.steps_bar[:] = []                    # a widget is in one container at a time
        self.steps_bar = kind(*self.buttons, margin=0, **sizing)
        self.bar[2] = self.steps_bar
        for i, b in enumerate(self.buttons):
            self._size_step(i, b)

    def _size_step(self, i, button):
        # the expected result is a tooltip with a mouse; a touch leaves a tooltip open over
        # its neighbours (the toast says the same when the step is applied)
        classes = [c for c in button.css_classes if c != "gle-lesson-phone"]
        if self.mode == "phone":
            button.param.update(sizing_mode="stretch_width", width=None, height=None,
                                min_height=44, description=None,
                                css_classes=classes + ["gle-lesson-phone"])
        else:
            step = self.lesson["try"][i]
            button.param.update(sizing_mode="fixed",
                                width=step_width(_step_name(i, step, done=True)),
                                height=40, min_height=None, css_classes=classes,
                                description=step.get("expect", ""))

    def _on_toggle(self, event):
        # only an opened lesson's body is on the page: a closed one (how every session
        # starts) sends no models for its text, equations and expected results (~40 % of
        # the lesson's share of a visitor's first page, issue #11)
        self.pane[:] = [self.bar, self.body] if event.new else [self.bar]
        self.body.visible = event.new
        self.toggle.label = "▾ Lesson" if event.new else "▸ Lesson"

    def rebuild(self):
        lessons = lessons_for(self.state.preset)
        options = {lesson["title"]: lesson["name"] for lesson in lessons}
        self._shown = None
        self.select.options = options       # may select (and show) the first lesson itself
        self.select.visible = len(options) > 1
        name = next(iter(options.values()), None)
        if self.select.value != name:
            self.select.value = name
        elif self._shown != (self.state.preset, name):
            self.show(name)

    def show(self, name):
        lessons = {lesson["name"]: lesson for lesson in lessons_for(self.state.preset)}
        lesson = lessons.get(name)
        self._shown = (self.state.preset, name)
        self.lesson = lesson
        self.done = set()
        if lesson is None:
            self.body[:] = [pn.pane.Markdown("*No lesson for this preset yet.*")]
            self.pane.title = "Lesson"
            self.heading.object = "<h2 class='gle-lesson-title'>No lesson</h2>"
            self.steps_bar[:] = []
            return
        self.pane.title = f"Lesson: {lesson['title']}"
        # the page's second heading level (h1 GLE Lab, h2 the lesson, h3 the sidebar cards)
        self.heading.object = (f"<h2 class='gle-lesson-title' title='{html.escape(lesson['title'])}'>"
                               f"{html.escape(lesson['title'])}</h2>")
        eqs = []
        for eq in lesson["equations"]:
            eqs.append(pn.pane.HTML(f"<span class='gle-lesson-eq-label'>{eq['label']}</span>",
                                    margin=(4, 10, 0, 10), stylesheets=[CSS]))
            eqs.append(pn.pane.LaTeX(f"$${eq['latex']}$$", renderer="katex",
                                     styles={"font-size": "16px"}, margin=(0, 10),
                                     css_classes=["gle-lesson-eq"]))
        self.buttons = []
        expected = []
        for i, step in enumerate(lesson["try"]):
            b = pn.widgets.Button(label=_step_name(i, step), color="default",
                                  css_classes=["gle-lesson-try", f"gle-lesson-try-{i}"],
                                  description=step.get("expect", ""),
                                  width=step_width(_step_name(i, step, done=True)),
                                  height=40, stylesheets=[STEP_CSS], margin=(2, 4))
            if self.mode == "phone":
                self._size_step(i, b)
            on_click(b, lambda i=i: self.click(i))
            self.buttons.append(b)
            expected.append(pn.pane.HTML(
                f"<span class='gle-lesson-expect'><b>{i + 1}. {html.escape(step['label'])}"
                f"</b> — {html.escape(step.get('expect', ''))}</span>",
                stylesheets=[CSS], sizing_mode="stretch_width", margin=(2, 10)))
        self.steps_bar[:] = self.buttons
        self.body[:] = [self.select, pn.pane.Markdown(lesson["look"], sizing_mode="stretch_width",
                                         styles={"font-size": "16px"}, margin=(0, 10)),
                        pn.Row(pn.Column(*eqs, sizing_mode="stretch_width"),
                               sizing_mode="stretch_width"),
                        pn.pane.Markdown("**Try this** (the numbered buttons above; what you "
                                         "should see):", margin=(0, 10),
                                         styles={"font-size": "15px"}),
                        *expected]

    def click(self, i):
        """Apply try-step ``i`` of the shown lesson (what its button does); marks it done."""
        step = self.lesson["try"][i]
        changed = apply_step(self.state, step)
        self.done.add(i)
        if i < len(self.buttons):
            b = self.buttons[i]
            b.label = _step_name(i, step, done=True)
            if "gle-done" not in b.css_classes:
                b.css_classes = [*b.css_classes, "gle-done"]
        return changed

    def __panel__(self):
        return self.pane

    @property
    def panel(self):
        return self.pane
