"""The MNIST-1D preset (issue #14): both starts, frames, the read-out, the trained checkpoint
against gle_core's own read-out, the per-process cap of heavy sessions."""
from __future__ import annotations


import numpy as np
import pytest
from bokeh.document import Document

from gle_core.datasets import LabelledSequences, evaluate
from gle_core.mnist1d import DT, load_parameters, make_network

from .test_capacity import _destroy, _session_doc

L = 360


@pytest.fixture(scope="module")
def mnist():
    from gle_lab import mnist
    mnist.dataset()
    return mnist


def _snapshot(dash):
    return {"sample": (dict(dash.sample.source.data)["x"].copy(), dash.sample.cursor.location),
            "bars": np.array(dash.output.bars.data["sum"], float),
            "rates": len(dash.output.rates.data["t"]),
            "running": len(dash.accuracy.running.data["acc"]),
            "errors": len(dash.credit.errors.data["t"]),
            "heat": np.array(dash.credit.heat_source.data["image"][0]),
            "confusion": int(dash.confusion.matrix.sum())}


@pytest.mark.parametrize("start,streams", [("trained", 1), ("scratch", 100)])
def test_both_starts_build_and_frames_update_every_view(mnist, start, streams):
    dash = mnist.MnistDashboard(start=start)
    lab = dash.state
    assert lab.start == start and lab.streams == streams
    assert lab.learning == (start == "scratch")
    dash.layout.get_root(Document())          # the whole page builds into a document
    before = _snapshot(dash)
    assert before["confusion"] == 0 and before["running"] == 0
    for _ in range(5):                      # frames 2..6: the last one redraws the slow views
        dash.tick(n_steps=300)
    after = _snapshot(dash)
    assert lab.sim.n_steps == 1500 and lab.samples == 1500 // L
    assert not np.array_equal(before["sample"][0], after["sample"][0]) or \
        before["sample"][1] != after["sample"][1]
    assert after["sample"][1] == 1500 % L                  # the cursor is at the step shown
    assert not np.array_equal(before["bars"], after["bars"])
    assert after["rates"] == 1500 % L                     # this sample's steps so far
    assert after["running"] == lab.samples                 # one point per completed sample
    assert after["errors"] > before["errors"]
    assert after["heat"].shape == (53, L // 2) and np.ptp(after["heat"]) > 0
    assert after["confusion"] == lab.samples
    # the sample on screen is the one stream 0 is being shown, with its label
    i, label, point = lab.current()
    np.testing.assert_array_equal(dash.sample.source.data["x"], lab.source.x[i, :, 0])
    assert f"true label {label}" in dash.sample.fig.title.text


def test_readout_shown_is_argmax_of_summed_outputs(mnist):
    dash = mnist.MnistDashboard(start="trained")
    lab = dash.state
    dash.tick(n_steps=2 * L + 123)
    out = lab.sim.probes["output"].last(L + 123)
    current, finished = out[L:], out[:L]
    # independent of the lab's bookkeeping: the recorded outputs of stream 0
    assert dash.output.prediction == int(np.argmax(current.sum(axis=0)))
    assert dash.output.last_shown[1] == int(np.argmax(finished.sum(axis=0)))
    summed = current.sum(axis=0)
    np.testing.assert_allclose(dash.output.bars.data["sum"], summed - summed.mean())
    idx, _ = lab.source.sample_index(np.array([L]))
    assert dash.output.last_shown[0] == lab.source.labels[idx[0, 0]]
    assert lab.results[-1] == dash.output.last_shown
    # the bar of the prediction is coloured right/wrong against the true label
    _, label, _ = lab.current()
    from gle_lab.views.mnist_common import RIGHT, WRONG
    color = dash.output.bars.data["color"][dash.output.prediction]
    assert color == (RIGHT if dash.output.prediction == label else WRONG)


def test_trained_checkpoint_classifies_as_gle_core(mnist):
    """The live session (learning off, one stream, from rest) predicts the first validation
    samples it shows exactly as gle_core's read-out (datasets.evaluate) of the shipped
    parameters does on the same samples in the same order."""
    meta = mnist.checkpoint_meta()
    for key in ("command", "seed", "epochs_completed", "val_acc", "history"):
        assert key in meta
    assert meta["command"].startswith("gle-run mnist1d --net 15k")
    assert meta["history"][-1]["val_acc"] == meta["val_acc"]
    assert meta["epochs_completed"] == meta["history"][-1]["epoch"] >= 1
    dash = mnist.MnistDashboard(start="trained", seed=7)
    lab = dash.state
    n = 6
    while lab.samples < n:
        lab.advance(n_steps=1000)
    shown = [p for _, p in list(lab.results)[:n]]
    d = mnist.dataset()
    order = lab.source.permutation(0)[:n]
    net = make_network("15k", "gle", 0, 1)
    with mnist.asset(*mnist.CHECKPOINT).open("rb") as f:
        load_parameters(f, net)
    ref = evaluate(net, LabelledSequences(d["x_val"][order], d["y_val"][order], 10, DT, 1,
                                          shuffle=False), tile=False)
    assert shown == list(ref["predictions"])
    assert [t for t, _ in list(lab.results)[:n]] == list(d["y_val"][order])


def test_controls_change_the_running_simulation(mnist):
    lab = mnist.MnistLab(start="scratch", streams=10)
    sim = lab.sim
    lab.mode = "ie"
    assert sim.network.error_mode == "ie"
    lab.lr = 3e-4
    assert sim.lr == pytest.approx(3e-4)
    lab.learning = False
    assert sim.learn == {}
    lab.streams = 1                                # a structural change rebuilds
    assert lab.sim is not sim and lab.sim.network.batch_size == 1
    lab.start = "trained"                          # brings the trained defaults
    assert lab.streams == 1 and not lab.learning and lab.meta is not None
    dash = mnist.MnistDashboard(start="trained")
    dash.state.start = "scratch"                   # the controls show the new defaults
    widgets = {w.name: w for w in dash.layout.select(lambda o: hasattr(o, "value")
                                                     and hasattr(o, "name"))}
    assert widgets["Parallel streams"].value == 100 == dash.state.sim.network.batch_size
    assert widgets["Learning on"].value is True and widgets["As fast as possible"].value
    with pytest.raises(ValueError):
        lab.lr = 1.0


def test_url_reproduces_the_run_and_csv_export(mnist):
    settings, problems = mnist.MnistLab.from_query(
        {"preset": "mnist1d", "start": "scratch", "mode": "ie", "lr": "0.0005", "seed": "3",
         "streams": "10", "learning": "true", "bogus": "1"})
    assert problems == []
    dash = mnist.MnistDashboard()

    class Loc:
        query_params = {"start": "scratch", "mode": "ie", "lr": 0.0005, "seed": 3,
                        "streams": 10, "lr_bad": 1}
        search = ""
    loc = Loc()
    dash.sync_location(loc)
    lab = dash.state
    assert (lab.start, lab.mode, lab.lr, lab.seed, lab.streams) == ("scratch", "ie", 5e-4, 3,
                                                                     10)
    assert loc.search == lab.query_string()
    again, _ = mnist.MnistLab.from_query(dict(
        kv.split("=") for kv in loc.search.lstrip("?").split("&")))
    assert again == {**settings, "learning": True}
    bad, problems = mnist.MnistLab.from_query({"lr": "5", "streams": "7", "mode": "x"})
    assert bad == {} and len(problems) == 3
    lab.streams = 1
    for _ in range(3):
        dash.tick(n_steps=L)
    text = lab.accuracy_csv()
    rows = [r for r in text.splitlines() if r.startswith("running")]
    assert text.startswith("# GLE Lab MNIST-1D: ?preset=mnist1d")
    assert len(rows) == 3 and rows[-1].split(",")[1] == "3"
    assert float(rows[-1].split(",")[2]) == pytest.approx(lab.running_accuracy())


def test_create_app_hook_and_heavy_cap_refuses_politely_at_the_phones_width(mnist):
    from panel.io.state import set_curdoc

    from gle_lab import capacity
    from gle_lab.main import VIEWPORT_TEMPLATE, create_app
    old = capacity.HEAVY.max_sessions
    capacity.HEAVY.max_sessions = 1
    try:
        doc1, ctx1 = _session_doc("heavy-1")
        doc2, ctx2 = _session_doc("heavy-2")
        with set_curdoc(doc1):
            first = create_app(preset="mnist1d")
        with set_curdoc(doc2):
            second = create_app(preset="mnist1d")
        assert isinstance(first.dashboard, mnist.MnistDashboard)
        assert capacity.HEAVY_FULL_MESSAGE in second.object
        # both of its links are a phone's touch targets
        assert second.object.count("<a ") == second.object.count("min-height:44px") == 2
        # the page and the "busy" page carry the dashboard's viewport template (a phone lays
        # them out at its own width, not a shrunk 980 px desktop page)
        assert doc1.template is VIEWPORT_TEMPLATE and doc2.template is VIEWPORT_TEMPLATE
        assert 'name="viewport"' in VIEWPORT_TEMPLATE
        assert "another preset" in second.object and not hasattr(second, "dashboard")
        assert capacity.HEAVY.active == 1
        _destroy(doc1, ctx1)                       # the first visitor leaves
        assert capacity.HEAVY.active == 0 and first.dashboard.state.sim is None
        doc3, ctx3 = _session_doc("heavy-3")
        with set_curdoc(doc3):
            third = create_app(preset="mnist1d")
        assert isinstance(third.dashboard, mnist.MnistDashboard)
        _destroy(doc3, ctx3)
        _destroy(doc2, ctx2)
    finally:
        capacity.HEAVY.max_sessions = old


def test_serve_option_max_heavy_sessions():
    from gle_lab.serve import parse_args
    assert parse_args(["--max-heavy-sessions", "3"]).max_heavy_sessions == 3
    assert parse_args([]).max_heavy_sessions is None      # capacity.DEFAULT_MAX_HEAVY
    with pytest.raises(SystemExit):
        parse_args(["--max-heavy-sessions", "-1"])


def test_validation_after_an_epoch_is_gle_cores_on_a_snapshot(mnist, monkeypatch):
    """The per-epoch point: gle_core's evaluate on held-out samples, from a snapshot of the
    network taken when the epoch ended (later learning does not leak into it)."""
    monkeypatch.setattr(mnist, "VAL_SAMPLES", 20)
    lab = mnist.MnistLab(start="scratch", streams=10, seed=5)
    lab.advance(n_steps=L + 17)
    d = mnist.dataset()
    src = LabelledSequences(d["x_val"][:20], d["y_val"][:20], 10, DT, 20, shuffle=False)
    expected = evaluate(lab.net, src)["accuracy"]
    lab._start_validation()
    epoch, _, fut = lab._pending_val
    lab.advance(n_steps=L)                 # learning goes on meanwhile
    fut.result(timeout=120)
    lab._check_validation()
    assert lab.validations == [(epoch, pytest.approx(100 * expected))]
    assert lab._pending_val is None


def test_an_epoch_end_starts_validation(mnist, monkeypatch):
    """Epoch = every training sample once on every stream; its end (wherever a frame's steps
    happen to stop) starts one validation, whose point is labelled with that epoch."""
    monkeypatch.setattr(mnist, "TRAIN_SAMPLES", 20)
    monkeypatch.setattr(mnist, "VAL_SAMPLES", 10)
    lab = mnist.MnistLab(start="scratch", streams=10, seed=3)
    spe = lab.source.steps_per_epoch
    assert spe == 2 * L
    lab.advance(n_steps=spe - 5)
    assert lab._pending_val is None and lab.epoch == 0
    lab.advance(n_steps=97)                 # the epoch ends inside this frame
    assert lab._pending_val is not None and lab._pending_val[0] == 1
    lab._pending_val[2].result(timeout=120)
    lab.advance(n_steps=1)
    assert [e for e, _ in lab.validations] == [1]


def test_a_frame_that_fails_pauses_the_session_says_why_once_and_reset_recovers(
        mnist, monkeypatch, caplog):
    import logging
    dash = mnist.MnistDashboard(start="trained")
    lab = dash.state
    lab.playing = True
    dash.tick(n_steps=50)
    assert lab.sim.n_steps == 50 and lab.playing

    def broken(*args, **kwargs):
        raise IndexError("window index 7 is out of range")
    monkeypatch.setattr(dash, "render", broken)
    with caplog.at_level(logging.ERROR, logger="gle_lab"):
        dash.tick(n_steps=50)                 # does not raise out of the frame callback
    assert not lab.playing and lab.level == "danger"
    assert "a frame failed (IndexError: window index 7 is out of range)" in lab.message
    assert "Press Reset" in lab.message
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info[0] is IndexError
    monkeypatch.undo()
    dash.reset()
    assert lab.message == "" and not dash.notice.visible
    dash.tick(n_steps=50)
    assert lab.sim.n_steps == 50


def test_served_frame_yields_between_kernel_calls(mnist, monkeypatch):
    """The served frame (tick_async) simulates the same steps as tick, in slices, and lets
    other coroutines of the event loop run between them."""
    import asyncio
    monkeypatch.setattr(mnist, "CHUNK_S", 1e-9)       # one step per kernel call
    monkeypatch.setattr(mnist, "BUDGET_S", 60.0)      # a slow machine still does them all
    mnist.warm_up()
    dash = mnist.MnistDashboard(start="trained", full_speed=False, speed=1.0)
    lab = dash.state
    others = []

    async def neighbour():
        for _ in range(1000):
            others.append(lab.sim.n_steps)
            await asyncio.sleep(0)

    async def run():
        task = asyncio.ensure_future(neighbour())
        dash._last_tick = None                         # first frame: one frame period
        await dash.tick_async()
        task.cancel()
    # its own thread: pytest-playwright's sync API may hold this thread's event loop
    import threading
    t = threading.Thread(target=asyncio.run, args=(run(),))
    t.start()
    t.join()
    assert lab.sim.n_steps == dash.steps_done[-1] == 36     # 1 sample/s × 0.1 s × 360
    # the other coroutine ran while the frame was simulating (saw intermediate steps)
    assert len({n for n in others if 0 < n < 36}) >= 5
    assert dash.sample.cursor.location == 36


#: Bokeh models of a served session's first document (controls, sample, output; measured
#: 161) and of the whole page (379): today's counts plus ~10 %, as tests/app/
#: test_session_budget.py (what a session costs the server is in proportion to its models)
FIRST_BUDGET, PAGE_BUDGET = 180, 420


def _page(mnist, **kw):
    from panel.io.state import set_curdoc
    doc = Document()
    with set_curdoc(doc):
        dash = mnist.MnistDashboard(**kw)
        doc.add_root(dash.layout.get_root(doc))
    return dash, doc


def _classes(doc):
    return {c for m in doc.models for c in (getattr(m, "css_classes", None) or [])}


def test_served_first_document_is_the_first_screen_then_completes(mnist, monkeypatch):
    """A served session's first document holds the first screen (controls, sample, output)
    within a model budget; after the first frame the later views are built one per callback
    (the simulation dashboard's completion steps) and added in one patch: then the page is
    the page built at once, and every view follows the frames."""
    import gle_lab.main as main
    from panel.io.state import set_curdoc

    from .test_layout_modes import _Callbacks
    monkeypatch.setattr(main, "_completion_pacer", main.CompletionPacer(pace=0.0))
    monkeypatch.setattr(main, "visitors_arriving", lambda now=None, besides=None: False)
    _, full = _page(mnist)
    dash, doc = _page(mnist, progressive=True)
    assert len(doc.models) <= FIRST_BUDGET, f"{len(doc.models)} models in the first document"
    shown = _classes(doc)
    assert {"gle-view-mnist-sample", "gle-view-mnist-output",
            "gle-view-mnist-controls"} <= shown
    assert not shown & {"gle-view-mnist-accuracy", "gle-view-mnist-credit",
                        "gle-view-mnist-confusion", "gle-mnist-about"}
    assert not dash.complete and dash.views == [dash.sample, dash.output]
    with set_curdoc(doc):
        dash.tick(n_steps=400)                       # the first frames come first
        callbacks = _Callbacks()
        dash._complete_when_quiet(callbacks, since=0.0)
        built = []
        while callbacks.pending and len(built) < 10:
            n_models = len(doc.models)
            callbacks.run_one()
            built.append(sum(v is not None for v in (dash.accuracy, dash.credit,
                                                     dash.confusion)))
            if not dash.complete:
                assert len(doc.models) == n_models   # built off the page until the patch
    assert built == [1, 2, 3, 3] and dash.complete
    assert len(doc.models) == len(full.models) <= PAGE_BUDGET
    assert _classes(doc) == _classes(full)
    # the later views took what the lab collected before they existed, and follow it now
    assert len(dash.accuracy.running.data["acc"]) == dash.state.samples == 1
    with set_curdoc(doc):
        for _ in range(3):
            dash.tick(n_steps=360)
    lab = dash.state
    assert len(dash.accuracy.running.data["acc"]) == lab.samples == 4
    assert int(dash.confusion.matrix.sum()) == lab.samples
    assert len(dash.credit.errors.data["t"]) > 0
    dash.complete_layout()                            # once only
    assert len(doc.models) == len(full.models)


def test_outside_a_server_the_page_is_complete_at_once(mnist):
    dash, doc = _page(mnist)
    assert dash.complete and all(v is not None for v in (dash.accuracy, dash.credit,
                                                         dash.confusion))
    n = len(doc.models)
    dash.start()                                      # no server: nothing comes later
    dash.destroy()
    assert len(doc.models) == n


def test_page_renderers_carry_no_unused_models(mnist):
    """No explicit unselected or muted glyph (nothing selects or mutes), one default view
    per source in every figure."""
    from bokeh.models import GlyphRenderer
    from bokeh.plotting import figure
    _, doc = _page(mnist)
    renderers = [m for m in doc.models if isinstance(m, GlyphRenderer)]
    assert len(renderers) > 20
    assert all(r.nonselection_glyph in (None, "auto") and r.muted_glyph in (None, "auto")
               for r in renderers)
    views = {}
    for fig in (m for m in doc.models if isinstance(m, figure)):
        for r in fig.renderers:
            views.setdefault((fig.id, r.data_source.id), set()).add(r.view.id)
    assert all(len(v) == 1 for v in views.values())


# ---------------------------------------------------------------------- screens (issue: MNIST-1D
# page on a phone and a 1280×720 projector)
def _figures(dash):
    from bokeh.plotting import figure
    return [f for v in dash.views for f in vars(v).values() if isinstance(f, figure)]


def _fixed_widths(obj, out):
    """(name, width) of every Panel object in ``obj`` with a fixed width."""
    from gle_lab.views.controls import children
    width = getattr(obj, "width", None)
    if width and getattr(obj, "sizing_mode", None) in (None, "fixed"):
        out.append((type(obj).__name__, width))
    for child in children(obj):
        _fixed_widths(child, out)
    return out


@pytest.mark.parametrize("progressive", [False, True])
def test_a_phone_gets_one_column_without_fixed_widths_beyond_its_screen(mnist, monkeypatch,
                                                                       progressive):
    """A 390 px window (reported by the page, or known from the request) gets one column:
    the controls' buttons, the sample, the output, the settings, then the other views, every
    view's plots one under the other; nothing fixed wider than the screen; 44 px targets;
    back on a projector: controls beside the views, plots side by side."""
    from bokeh.layouts import Column as BkColumn, Row as BkRow

    from gle_lab.views.controls import TOUCH_CSS
    dash = mnist.MnistDashboard(progressive=progressive)
    dash.set_viewport("390x844")
    assert dash.mode == "phone"
    if progressive:
        dash.complete_layout()                 # the later views arrive in the phone layout
    assert list(dash.layout.objects) == [dash.viewport_input, dash.phone_main]
    col = list(dash.phone_main.objects)
    assert col == [dash.phone_head, dash.notice, dash.sample.layout, dash.output.layout,
                   dash.settings, dash.accuracy.layout, dash.confusion.layout,
                   dash.credit.layout, dash.about]
    wide = [w for w in _fixed_widths(dash.layout, []) if w[1] > 390 - 20]
    assert wide == [], wide
    for view in (dash.output, dash.accuracy, dash.credit):
        assert isinstance(view.pane.object, BkColumn), type(view).__name__
    assert all(f.toolbar_location is None for f in _figures(dash))
    assert TOUCH_CSS in dash.play.stylesheets and TOUCH_CSS in dash.reset_button.stylesheets
    dash.layout.get_root(Document())
    dash.set_viewport("1280x720")
    assert dash.mode == "present" and list(dash.layout.objects) == [dash.viewport_input,
                                                                   dash.body]
    assert list(dash.body.objects) == [dash.sidebar, dash.grid]
    assert dash.sidebar.width == mnist.CONTROLS_PX
    for view in (dash.output, dash.accuracy, dash.credit):
        assert isinstance(view.pane.object, BkRow), type(view).__name__
    # a projector: the plots without toolbars (more room for titles and data)
    assert all(f.toolbar_location is None for f in _figures(dash))
    dash.set_viewport("1920x1080")
    assert dash.mode == "wide" and all(f.toolbar_location == "right" for f in _figures(dash))


def test_a_served_session_is_built_for_the_window_the_request_tells(mnist):
    from panel.io.state import set_curdoc
    doc, ctx = _session_doc("cookie-phone")
    ctx.request.cookies = {"gle_viewport": "390x844"}
    with set_curdoc(doc):
        dash = mnist.MnistDashboard(progressive=True)
    assert dash.mode == "phone" and dash.phone_main in dash.layout.objects


@pytest.mark.parametrize("mode", ["wide", "present", "phone"])
def test_legends_lie_outside_the_data_and_list_only_what_is_drawn(mnist, mode):
    from bokeh.models import Legend
    dash = mnist.MnistDashboard()
    dash.apply_mode(mode)
    legends = 0
    for fig in _figures(dash):
        assert not [o for o in fig.center if isinstance(o, Legend)], fig.title.text
        side = fig.below if mode == "phone" else fig.right
        legends += len([o for o in side if isinstance(o, Legend)])
    assert legends == 2                     # validation per epoch, |e| per layer
    items = dash.accuracy.epoch_fig.legend[0].items
    shown = [i.label.value for i in items if i.visible]
    assert "this session" not in shown and len(shown) == 3   # nothing validated yet
    dash.state.validations.append((1, 50.0))
    dash.render(force=True)
    assert dash.accuracy.session_item.visible


def test_every_axis_is_set_by_the_server_and_finite(mnist):
    """No auto-ranged axis: one over a source still empty when the page is built has no
    initial range (BokehJS logs "could not set initial ranges"), and BokehJS would send
    every auto-ranged change back to the server."""
    from bokeh.models import DataRange1d, Range1d
    dash, doc = _page(mnist)
    assert not [m for m in doc.models if isinstance(m, DataRange1d)]
    ranges = [m for m in doc.models if isinstance(m, Range1d)]
    assert len(ranges) >= 10
    assert all(np.isfinite([r.start, r.end]).all() and r.end > r.start for r in ranges)
    dash.tick(n_steps=2 * L + 50)
    lab = dash.state
    out = lab.current_outputs()
    yr = dash.output.lines_fig.y_range
    assert yr.start <= out.min() and out.max() <= yr.end     # the data stays in view
    t = np.asarray(dash.credit.errors.data["t"])
    assert dash.credit.err_fig.x_range.start == t[0] and dash.credit.err_fig.x_range.end == t[-1]
    assert dash.accuracy.run_fig.x_range.end >= lab.samples
