"""Lesson view: the guided lesson of the current preset beside the traces.

What to look at (Markdown), the equations involved (KaTeX, the paper's equation numbers) and
two or three "try this" buttons that set parameters (see :mod:`gle_lab.lessons`). Rebuilt when the
preset changes; a selector appears when a preset has more than one lesson.
"""
from __future__ import annotations

import panel as pn

from gle_lab.lessons import apply_step, lessons_for
from gle_lab.views.controls import on_click

CSS = """
.gle-lesson-eq-label {font-size: 12px; color: #666;}
.gle-lesson-expect {font-size: 12px; color: #555;}
"""


class LessonView:
    title = "Lesson"

    def __init__(self, state):
        self.state = state
        self.select = pn.widgets.Select(name="Lesson", options={}, width=320,
                                        css_classes=["gle-lesson-select"])
        self.body = pn.Column(sizing_mode="stretch_width", margin=0)
        self.pane = pn.Card(self.select, self.body, title="Lesson", collapsed=False,
                            sizing_mode="stretch_width", margin=(4, 10),
                            header_background="#f4efe4", css_classes=["gle-lesson"],
                            stylesheets=[CSS])
        self.buttons = []
        self.lesson = None
        self.select.param.watch(lambda e: self.show(e.new), "value")
        state.param.watch(lambda e: self.rebuild(), "structure")
        self.rebuild()

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
        if lesson is None:
            self.body[:] = [pn.pane.Markdown("*No lesson for this preset yet.*")]
            self.pane.title = "Lesson"
            return
        self.pane.title = f"Lesson: {lesson['title']}"
        eqs = []
        for eq in lesson["equations"]:
            eqs.append(pn.pane.HTML(f"<span class='gle-lesson-eq-label'>{eq['label']}</span>",
                                    margin=(4, 10, 0, 10), stylesheets=[CSS]))
            eqs.append(pn.pane.LaTeX(f"$${eq['latex']}$$", renderer="katex",
                                     styles={"font-size": "15px"}, margin=(0, 10),
                                     css_classes=["gle-lesson-eq"]))
        self.buttons = []
        steps = []
        for i, step in enumerate(lesson["try"]):
            b = pn.widgets.Button(name=f"Try: {step['label']}", button_type="light",
                                  css_classes=["gle-lesson-try", f"gle-lesson-try-{i}"],
                                  description=step.get("expect", ""), width=320)
            on_click(b, lambda s=step: apply_step(self.state, s))
            self.buttons.append(b)
            steps.append(pn.Row(b, pn.pane.HTML(
                f"<span class='gle-lesson-expect'>{step.get('expect', '')}</span>",
                stylesheets=[CSS], sizing_mode="stretch_width"), sizing_mode="stretch_width"))
        self.body[:] = [pn.pane.Markdown(lesson["look"], sizing_mode="stretch_width",
                                         styles={"font-size": "14px"}, margin=(0, 10)),
                        pn.Row(pn.Column(*eqs, sizing_mode="stretch_width"),
                               sizing_mode="stretch_width"),
                        pn.pane.Markdown("**Try this**", margin=(0, 10)), *steps]

    def click(self, i):
        """Apply try-step ``i`` of the shown lesson (what its button does)."""
        return apply_step(self.state, self.lesson["try"][i])

    @property
    def panel(self):
        return self.pane
