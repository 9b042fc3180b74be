"""What one visitor costs the server, asserted structurally: Bokeh models per document.

Building and serialising a session costs server CPU roughly in proportion to the number of
Bokeh models in its document (measured here: ~1 ms of build and ~0.3 ms of serialisation per
model), so the model count per preset is held below a budget; the seconds themselves are
measured by ``benchmarks/bench_load.py --arrival`` and reported in docs/deployment.md, never
asserted. The budgets are today's counts plus ~10 %: a change that adds models per session
has to raise them here, visibly.
"""
import pytest
from bokeh.document import Document
from panel.io.state import set_curdoc

from gle_lab.main import create_app
from gle_lab.presets import PRESETS

#: models per session document, by preset (measured 2026-11-30: 687, 687, 685, 730, 877;
#: MNIST-1D 379)
BUDGET = {"phase_inversion": 760, "le_limit": 760, "leaky_integrator": 760, "chain": 800,
          "small_network": 970, "mnist1d": 420}


@pytest.mark.parametrize("preset", list(PRESETS) + ["mnist1d"])
def test_models_per_session_within_budget(preset):
    doc = Document()
    with set_curdoc(doc):
        doc.add_root(create_app(preset).get_root(doc))
    n = len(doc.models)
    assert n <= BUDGET[preset], f"{preset}: {n} Bokeh models per session (budget " \
                                f"{BUDGET[preset]})"
    assert n > 50                       # a real dashboard, not the "full" page


#: models in a served session's first document (the first screen; the rest follows the first
#: frame), by preset (measured 2026-11-30: 146, 146, 144, 156, 186)
FIRST_BUDGET = {"phase_inversion": 165, "le_limit": 165, "leaky_integrator": 165, "chain": 175,
                "small_network": 210}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_first_document_within_budget(preset):
    from gle_lab.main import Dashboard
    doc = Document()
    with set_curdoc(doc):
        d = Dashboard(preset=preset, progressive=True)
        doc.add_root(d.layout.get_root(doc))
    n = len(doc.models)
    assert n <= FIRST_BUDGET[preset], f"{preset}: {n} Bokeh models in the first document " \
                                      f"(budget {FIRST_BUDGET[preset]})"
    with set_curdoc(doc):
        d.complete_layout()
    assert len(doc.models) > 2.5 * n    # the rest came with the completion


def test_renderers_carry_no_unused_models():
    """No explicit unselected or muted glyph (no plot selects; legends hide, never mute), one
    default view per source."""
    from bokeh.models import GlyphRenderer
    from gle_lab.main import Dashboard
    doc = Document()
    with set_curdoc(doc):
        d = Dashboard(preset="small_network")
        doc.add_root(d.layout.get_root(doc))
    from bokeh.plotting import figure
    renderers = [m for m in doc.models if isinstance(m, GlyphRenderer)]
    assert len(renderers) > 40
    assert all(r.nonselection_glyph in (None, "auto") for r in renderers)
    assert all(r.muted_glyph in (None, "auto") for r in renderers)
    default_views = {}                      # (figure, source) -> its renderers' views
    for fig in (m for m in doc.models if isinstance(m, figure)):
        for r in fig.renderers:
            if isinstance(r, GlyphRenderer) and type(r.view.filter).__name__ == "AllIndices":
                default_views.setdefault((fig.id, r.data_source.id), set()).add(r.view.id)
    assert len(default_views) > 5 and all(len(v) == 1 for v in default_views.values())


def test_no_view_puts_the_session_in_panels_link_registry():
    """A Panel JS link (``js_on_click``, ``jslink``) registers its widget in Panel's class-level
    link registry; from then on every layout change of the session walks the whole document
    for links (measured: ~40 % of the CPU of completing a session's layout). The buttons that
    act in the browser only (help, copy the teacher link) are handled by the page script."""
    from panel.links import Callback, Link
    from gle_lab.main import Dashboard
    doc = Document()
    with set_curdoc(doc):
        d = Dashboard(preset="chain", progressive=True)
        doc.add_root(d.layout.get_root(doc))
        d.complete_layout()
    ours = {id(o) for o in d.layout.select()}
    assert d.teacher is not None and d.help_button is not None      # the two buttons exist
    registered = [src for reg in (Callback.registry, Link.registry) for src in reg
                  if id(src) in ours]
    assert registered == []
