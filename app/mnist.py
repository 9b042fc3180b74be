"""The MNIST-1D preset: a 15k GLE network learning a real temporal task, live (paper Fig. 6).

Everything about the network, the data and the read-out comes from :mod:`gle_core.mnist1d`
and :mod:`gle_core.datasets` (the same code as ``gle-run mnist1d``): this module only runs
it in a browser session and keeps the few numbers the views show.

:class:`MnistLab` is one session's state: the settings (start, GLE/IE, learning rate, speed,
streams, heat-map layer, seed, play/pause) and the simulator. :meth:`MnistLab.advance` is the
frame loop's simulation half: it simulates as many Euler steps as the speed asks for, but
never more than a CPU budget per frame (``budget_s``), so display (≤ 10 Hz) and simulation
are decoupled and one heavy session cannot starve the server process. The views
(``gle_lab.views.mnist_*``) only render what the lab collected.

Streams: the network runs ``streams`` samples side by side (the paper's protocol trains at
batch 100); the views show stream 0, and the accuracy counts the samples shown there.

:class:`MnistDashboard` composes the controls and the five views and owns the frame callback;
:func:`create_mnist_app` is what ``create_app(preset="mnist1d")`` returns (and ``?preset=
mnist1d``). The number of MNIST-1D sessions per server process is capped separately
(:data:`gle_lab.capacity.HEAVY`, ``gle-lab --max-heavy-sessions``).
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import csv
import html
import io
import os
import threading
import time

import numpy as np
import panel as pn
import param
from panel.viewable import Viewer

from gle_core.datasets import LabelledSequences, evaluate, tile_state
from gle_core.errors import SimulationDiverged
from gle_core.mnist1d import DT, N_CLASSES, load_data, load_parameters, make_network
from gle_core.simulator import Simulator
from gle_lab import collector
from gle_lab.capacity import frame_failed
from gle_lab.compat import patch_enabled
from gle_lab.resources import asset

__all__ = ["MnistLab", "MnistDashboard", "create_mnist_app", "dataset", "checkpoint_meta", "warm_up",
           "reference_curve", "FRAME_MS", "BUDGET_S"]

#: display period (ms): 10 frames/s at most
FRAME_MS = 100
#: server CPU spent simulating per frame at most (s): 60 % of a core for one session
BUDGET_S = 0.06
#: one kernel call lasts about this long (s): the budget is checked between calls
CHUNK_S = 0.015
#: steps of stream 0 kept for the views (> the steps of one frame at full speed)
WINDOW = 2048
#: samples the running accuracy is taken over
ACC_OVER = 200
#: samples the confusion matrix counts
CONFUSION_OVER = 500
#: |e| per layer is shown as the mean over blocks of this many steps
ERROR_BLOCK = 4
#: the heat map and the confusion matrix are redrawn every this many frames
SLOW_EVERY = 3
CHECKPOINT = ("checkpoints", "mnist1d-15k-gle.npz")
REFERENCE = ("reference", "mnist1d_gle15k_val_acc.csv")
LEARN = {"W": True, "b": True}
STREAM_CHOICES = [1, 10, 100]
DEFAULTS = {"trained": {"learning": False, "streams": 1, "full_speed": False, "speed": 2.0},
            "scratch": {"learning": True, "streams": 100, "full_speed": True, "speed": 2.0}}

_data = None
_data_lock = threading.Lock()
_checkpoint = None
_reference = None
#: held-out samples validated after each epoch of a session: the protocol's 1000 cost ~20 s
#: of CPU in gle_core's numpy read-out (3 × a whole epoch of training at 100 streams);
#: 200 cost a fifth of it and give the curve's shape within ±3.5 points (binomial)
VAL_SAMPLES = 200
#: training samples of the from-scratch start (None: all 4000, the protocol)
TRAIN_SAMPLES = None


def _lower_priority():
    """Validation is background work: below the frame loops of every session (Linux
    niceness is per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)
    except (AttributeError, OSError):
        pass


#: per-epoch validation runs off the event loop, one at a time per server process
_validator = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                   thread_name_prefix="mnist1d-val",
                                                   initializer=_lower_priority)


def dataset():
    """The MNIST-1D set (:func:`gle_core.mnist1d.load_data`), loaded once per process."""
    global _data
    with _data_lock:
        if _data is None:
            _data = load_data()
        return _data


def _checkpoint_bytes():
    global _checkpoint
    if _checkpoint is None:
        _checkpoint = asset(*CHECKPOINT).read_bytes()
    return _checkpoint


def checkpoint_meta():
    """Provenance of the shipped trained parameters (command, seed, epochs, val_acc,
    history)."""
    net = make_network("15k", "gle", 0, 1)
    return load_parameters(io.BytesIO(_checkpoint_bytes()), net)


def reference_curve():
    """The published GLE 15k validation accuracy per epoch: dict of arrays ``epoch``,
    ``median``, ``min``, ``max`` (%), and ``source`` (its provenance line)."""
    global _reference
    if _reference is None:
        text = asset(*REFERENCE).read_text()
        lines = text.splitlines()
        source = lines[0].lstrip("# ").strip()
        rows = list(csv.DictReader(lines[1:]))
        _reference = {k: np.array([float(r[k]) for r in rows])
                      for k in ("epoch", "median", "min", "max")}
        _reference["source"] = source
    return _reference


def warm_up():
    """Load the data, the checkpoint and the compiled kernel once per server process
    (``gle-lab`` runs it in a thread of every serving process): the first visitor of the
    preset then waits for its session, not for ~2 s of numba loading."""
    t0 = time.perf_counter()
    for start in ("trained", "scratch"):
        MnistLab(start=start, streams=1).advance(n_steps=2)
    return time.perf_counter() - t0


class MnistLab(param.Parameterized):
    """One session of the MNIST-1D preset: settings, simulator and what the views show."""

    start = param.Selector(default="trained", objects=["trained", "scratch"], label="Start",
                           doc="trained: the shipped gle-run checkpoint, on validation "
                               "samples; scratch: the 15k network learning the training set")
    mode = param.Selector(default="gle", objects=["gle", "ie"], label="Errors",
                          doc="GLE (prospective) or IE (instantaneous) errors")
    lr = param.Number(default=1e-3, bounds=(1e-5, 1e-2), label="Learning rate (Adam)")
    learning = param.Boolean(default=False, label="Learning on")
    streams = param.Selector(default=1, objects=STREAM_CHOICES, label="Parallel streams",
                             doc="samples presented side by side (the protocol: 100)")
    speed = param.Number(default=2.0, bounds=(0.1, 20.0), label="Speed (samples/s)",
                         doc="samples per second on the stream shown")
    full_speed = param.Boolean(default=False, label="As fast as possible")
    layer = param.Integer(default=3, bounds=(1, 6), label="Heat-map layer")
    seed = param.Integer(default=42, bounds=(0, 2**31 - 1), label="Seed")
    playing = param.Boolean(default=False)
    message = param.String(default="")
    level = param.String(default="info")

    def __init__(self, **params):
        start = params.get("start", "trained")
        for k, v in DEFAULTS[start].items():
            params.setdefault(k, v)
        super().__init__(**params)
        self.sim = None
        self._applying_defaults = False
        self.build()
        self.param.watch(self._on_rebuild, ["start", "streams", "seed"])
        self.param.watch(self._on_mode, "mode")
        self.param.watch(self._on_lr, "lr")
        self.param.watch(self._on_learning, "learning")

    # ------------------------------------------------------------------ building
    def build(self):
        """A fresh network, data stream and simulator for the current settings."""
        d = dataset()
        B = int(self.streams)
        net = make_network("15k", self.mode, self.seed, B)
        if self.start == "trained":
            self.meta = load_parameters(io.BytesIO(_checkpoint_bytes()), net)
            x, y = d["x_val"], d["y_val"]
            self.epoch_offset = int(self.meta["epochs_completed"])
            self.val_history = [(r["epoch"], r["val_acc"]) for r in self.meta["history"]]
        else:
            self.meta = None
            x, y = d["x_train"][:TRAIN_SAMPLES], d["y_train"][:TRAIN_SAMPLES]
            self.epoch_offset = 0
            self.val_history = []
        self.source = LabelledSequences(x, y, N_CLASSES, DT, B, seed=self.seed)
        self.sim = Simulator(net, self.source.inputs, target=self.source.targets,
                             optimizer="adam", lr=self.lr,
                             learn=LEARN if self.learning else {},
                             record=("output", "error", "r"), window=WINDOW, record_every=1)
        self.net = net
        L = self.source.steps_per_sample
        self.L = L
        self.edges = np.cumsum([0] + net.layer_sizes[1:])
        self.seen = 0                    # recorded steps already collected
        self.samples = 0                 # completed samples on stream 0
        self.acc_sum = np.zeros(N_CLASSES)   # output summed over the current sample so far
        self.results = collections.deque(maxlen=max(ACC_OVER, CONFUSION_OVER))
        self.last_result = None          # (label, prediction, summed output)
        self.accuracy_curve = []         # (samples, running accuracy %), kept short below
        self.error_curve = collections.deque(maxlen=3 * L // ERROR_BLOCK)  # (t, |e| per layer)
        self.new_errors = []
        self.new_accuracy = []
        self.validations = []            # (epoch, val_acc) measured in this session
        self._pending_val = None
        self._carry = 0.0
        self.cost_per_step = 2e-4        # measured below (s of wall time per Euler step)
        self.version = getattr(self, "version", 0) + 1
        self.diverged = None

    def _on_rebuild(self, *events):
        if self._applying_defaults:
            return
        if "start" in {e.name for e in events}:
            # a start brings its defaults; announced, so that the controls show them
            self._applying_defaults = True
            try:
                self.param.update(**DEFAULTS[self.start])
            finally:
                self._applying_defaults = False
        self.build()

    def _on_mode(self, event):
        self.sim.set_rule(event.new)

    def _on_lr(self, event):
        self.sim.lr = float(event.new)

    def _on_learning(self, event):
        self.sim.learn = LEARN if event.new else {}

    def reset(self):
        self.build()
        if self.level == "danger":          # what paused the session is gone with it
            self.notify("")

    def notify(self, text, level="info"):
        self.param.update(message=str(text), level=level)

    def fail(self, exc):
        """Pause and say why: a divergence, or any other fault of a frame (named by its
        type); Reset starts again."""
        if isinstance(exc, SimulationDiverged):
            self.diverged = exc
            text = f"The network diverged ({exc}); press Reset."
        else:
            text = (f"Paused: a frame failed ({type(exc).__name__}: {exc}). Press Reset to "
                    "start again.")
        self.playing = False
        self.notify(text, "danger")

    def pause(self):
        self.playing = False

    # ------------------------------------------------------------------ stream 0
    def current(self):
        """(sample index, label, point) shown on stream 0 at the next step."""
        k = self.sim.n_steps
        idx, point = self.source.sample_index(np.array([k]))
        i = int(idx[0, 0])
        return i, int(self.source.labels[i]), int(point[0])

    @property
    def epoch(self):
        """Completed epochs of this session's stream (plus the checkpoint's)."""
        return self.epoch_offset + self.sim.n_steps // self.source.steps_per_epoch

    # ------------------------------------------------------------------ simulation
    def steps_wanted(self, wall_dt):
        """Euler steps that ``wall_dt`` seconds of play ask for at the current speed."""
        if self.full_speed:
            return WINDOW - 1
        self._carry += self.speed * self.L * wall_dt
        n = int(self._carry)
        self._carry -= n
        return min(n, WINDOW - 1)

    def advance(self, wall_dt=0.0, n_steps=None, budget_s=None):
        """Simulate ``n_steps`` (default: what ``wall_dt`` asks for) within ``budget_s`` of
        simulation time, then collect the new steps of stream 0. Returns the steps
        simulated."""
        for _ in self.advance_slices(wall_dt, n_steps, budget_s):
            pass
        return self.last_done

    def advance_slices(self, wall_dt=0.0, n_steps=None, budget_s=None):
        """:meth:`advance` as a generator that yields after every kernel call (~``CHUNK_S``):
        the frame loop lets the server's other sessions run in between."""
        self.last_done = 0
        if self.sim is None or self.diverged is not None:
            return
        budget_s = BUDGET_S if budget_s is None else budget_s
        want = self.steps_wanted(wall_dt) if n_steps is None else min(int(n_steps),
                                                                         WINDOW - 1)
        done, spent = 0, 0.0
        try:
            while done < want:
                chunk = max(1, min(want - done, int(CHUNK_S / self.cost_per_step)))
                if n_steps is None and done and spent + chunk * self.cost_per_step > budget_s:
                    break
                sim = self.sim
                c0 = time.perf_counter()
                sim.run_steps(chunk)
                dt = time.perf_counter() - c0
                spent += dt
                done += chunk
                self.last_done = done
                # per-step cost, smoothed: sizes the next chunks
                self.cost_per_step = 0.7 * self.cost_per_step + 0.3 * dt / chunk
                if n_steps is None and spent >= budget_s:
                    break
                yield
                if self.sim is not sim:             # rebuilt in between (a new start)
                    return
        except SimulationDiverged as exc:
            self.fail(exc)
        self.collect()
        self._check_validation()

    def collect(self):
        """Read the steps recorded since the last call: per-sample read-out of stream 0
        (argmax of the output summed over its steps, as :func:`gle_core.datasets.evaluate`),
        |e| per layer."""
        probes = self.sim.probes
        total = probes["output"].total
        n = total - self.seen
        if n <= 0:
            return
        out = probes["output"].since(self.seen)
        err = probes["error"].since(self.seen)
        k0 = self.seen
        self.seen = total
        L = self.L
        pos = 0
        while pos < n:
            k = k0 + pos
            within = k % L
            take = min(n - pos, L - within)
            self.acc_sum += out[pos:pos + take].sum(axis=0)
            if within + take == L:                  # the sample is complete
                idx, _ = self.source.sample_index(np.array([k]))
                label = int(self.source.labels[idx[0, 0]])
                pred = int(np.argmax(self.acc_sum))
                self.last_result = (label, pred, self.acc_sum.copy())
                self.results.append((label, pred))
                self.samples += 1
                last = list(self.results)[-ACC_OVER:]
                acc = 100.0 * sum(a == b for a, b in last) / len(last)
                self.accuracy_curve.append((self.samples, acc))
                self.new_accuracy.append((self.samples, acc))
                if len(self.accuracy_curve) > 20000:
                    del self.accuracy_curve[:10000]
                self.acc_sum = np.zeros(N_CLASSES)
                if self.learning and (k + take) % self.source.steps_per_epoch == 0:
                    self._start_validation()
            pos += take
        # |e| per layer (mean over neurons), averaged over blocks of ERROR_BLOCK steps
        e = np.abs(err)
        per_layer = np.stack([e[:, a:b].mean(axis=1) for a, b in
                              zip(self.edges[:-1], self.edges[1:])], axis=1)
        first = (-k0) % ERROR_BLOCK
        for j in range(first, n - ERROR_BLOCK + 1, ERROR_BLOCK):
            row = (float((k0 + j) * DT), per_layer[j:j + ERROR_BLOCK].mean(axis=0))
            self.error_curve.append(row)
            self.new_errors.append(row)
        # the views take these each frame; a caller that never renders keeps them bounded
        del self.new_errors[:-self.error_curve.maxlen]
        del self.new_accuracy[:-1000]

    def running_accuracy(self, n=ACC_OVER):
        last = list(self.results)[-n:]
        if not last:
            return float("nan")
        return 100.0 * sum(a == b for a, b in last) / len(last)

    def confusion(self, n=CONFUSION_OVER):
        """Counts [true, predicted] over the last ``n`` samples of stream 0."""
        m = np.zeros((N_CLASSES, N_CLASSES), dtype=int)
        for a, b in list(self.results)[-n:]:
            m[a, b] += 1
        return m

    def heat(self):
        """Rates of hidden layer ``layer`` over the last sample's steps (neurons × time)."""
        r = self.sim.probes["r"].last(self.L)
        a, b = self.edges[self.layer - 1], self.edges[self.layer]
        return r[:, a:b].T

    def current_outputs(self):
        """Output rates of stream 0 over the current sample so far (steps × 10)."""
        _, _, point = self.current()
        return self.sim.probes["output"].last(point)

    # ------------------------------------------------------------------ validation
    def _start_validation(self):
        """Validate on the first :data:`VAL_SAMPLES` held-out samples (as the protocol: all
        at once, the training state tiled, learning off; :func:`gle_core.datasets.evaluate`)
        in a low-priority worker thread, from a snapshot of the network."""
        if self._pending_val is not None:
            return
        d = dataset()
        val = LabelledSequences(d["x_val"][:VAL_SAMPLES], d["y_val"][:VAL_SAMPLES],
                                N_CLASSES, DT, VAL_SAMPLES, shuffle=False)
        snap = tile_state(self.net, val.batch_size)
        epoch = self.epoch
        # one thread: the server's other core serves the other sessions' frames
        self._pending_val = (epoch, self.version,
                             _validator.submit(evaluate, snap, val, threads=1))

    def _check_validation(self):
        p = self._pending_val
        if p is None or not p[2].done():
            return
        self._pending_val = None
        epoch, version, fut = p
        if version != self.version or fut.exception() is not None:
            return
        self.validations.append((epoch, 100.0 * fut.result()["accuracy"]))

    # ------------------------------------------------------------------ export, URL
    def accuracy_csv(self):
        """The accuracy curve as CSV text (running accuracy per sample; validation per
        epoch), with the run's settings in a comment line."""
        buf = io.StringIO()
        buf.write(f"# GLE Lab MNIST-1D: {self.query_string()}\n")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["kind", "x", "accuracy_percent"])
        for s, a in self.accuracy_curve:
            w.writerow(["running_last_%d_samples" % ACC_OVER, s, f"{a:.2f}"])
        for e, a in self.val_history + self.validations:
            w.writerow(["validation_epoch", e, f"{a:.2f}"])
        return buf.getvalue()

    URL_KEYS = ("start", "mode", "lr", "seed", "streams", "learning")

    def query_string(self):
        parts = ["preset=mnist1d"]
        for k in self.URL_KEYS:
            v = getattr(self, k)
            if isinstance(v, bool):
                v = str(v).lower()
            elif isinstance(v, float):
                v = f"{v:.4g}"
            parts.append(f"{k}={v}")
        return "?" + "&".join(parts)

    @classmethod
    def from_query(cls, query):
        """Settings from URL query values (strings or parsed); bad ones are reported, not
        applied. Returns ``(settings, problems)``."""
        out, problems = {}, []
        conv = {"start": str, "mode": str, "lr": float, "seed": int, "streams": int,
                "learning": lambda v: v if isinstance(v, bool) else
                str(v).lower() in ("1", "true", "yes", "on")}
        for k in cls.URL_KEYS:
            if k not in query or query[k] is None:
                continue
            v = query[k]
            if isinstance(v, list):
                v = v[-1]
            if isinstance(v, bytes):
                v = v.decode()
            try:
                v = conv[k](v)
                cls.param[k]._validate(v)
            except (TypeError, ValueError) as exc:
                problems.append(f"{k}={html.escape(str(query[k]))[:40]}: {exc}")
                continue
            out[k] = v
        return out, problems


# ---------------------------------------------------------------------- dashboard
#: views a served session adds after its first frame (:meth:`MnistDashboard.complete_layout`),
#: built in this order: below the first screen (controls, sample, output) of a 1280×720
#: window, and ~60 % of the page's Bokeh models (issue #11: the first document is built and
#: sent sooner); name -> (module of gle_lab.views, class)
LATER_VIEWS = {"accuracy": ("mnist_accuracy", "MnistAccuracyView"),
               "credit": ("mnist_credit", "MnistCreditView"),
               "confusion": ("mnist_confusion", "MnistConfusionView")}
_about_text = None
#: width of the controls' column beside the views on a screen (px)
CONTROLS_PX = 320
#: phones: no spin arrows on number fields (too small to touch; the field takes typing), and
#: no button narrower than a finger
PHONE_WIDGET_CSS = """
@media (max-width: 480px) { .bk-spin-wrapper, .bk-spin-btn {display: none !important;}
                            .bk-btn {min-width: 44px;} }
"""
#: phones: the link back to the other presets is a 44 px target too
LINK_TOUCH_CSS = """
@media (max-width: 480px) { a {display: inline-block; min-height: 44px; line-height: 44px;} }
"""


def about_text():
    """The page's "about" paragraph (the shipped checkpoint's provenance): the same for every
    visitor, made once per process."""
    global _about_text
    if _about_text is None:
        m = checkpoint_meta()
        _about_text = (
            f"The 15k network (1 → 53 → 5 × 53 tanh → 10) of `gle-run mnist1d` sees one "
            f"point of a 360-point sequence per Euler step (dt = 0.2); its prediction is "
            f"the class with the largest output summed over the sample. *Trained*: "
            f"parameters from `{m['command']}` after {m['epochs_completed']} epochs "
            f"(validation accuracy {m['val_acc']:.1f} %), shown validation samples it "
            f"never learned from. *From scratch*: the same network learning online with "
            f"GLE's local rules (one Adam step per dt). Published curve: "
            f"{reference_curve()['source']}.")
    return _about_text


class MnistDashboard:
    """The MNIST-1D page: controls, five render-only views and the frame callback.

    ``progressive`` (a served session): the first document holds the first screen only
    (controls, sample, output); the views of :data:`LATER_VIEWS` are built one per callback
    after the first frame and added in one patch, as the simulation dashboard does
    (:meth:`gle_lab.main.Dashboard._complete_when_quiet`). Built outside a server, the
    dashboard is complete at once."""

    def __init__(self, progressive=False, **settings):
        from gle_lab.views.mnist_output import MnistOutputView
        from gle_lab.views.mnist_sample import MnistSampleView
        #: False until the views of LATER_VIEWS are in the layout (:meth:`complete_layout`)
        self.complete = not progressive
        self.state = lab = MnistLab(**settings)
        self.sample = MnistSampleView(lab)
        self.output = MnistOutputView(lab)
        self.accuracy = self.credit = self.confusion = None
        self.views = [self.sample, self.output]      # the views built so far, rendered
        if self.complete:
            self._build_later_views()
        self.callback = None
        self.frame = 0
        self._last_tick = None
        self.tick_seconds = []           # server CPU of recent frames (benchmarks)
        self.sim_seconds = []            # of which simulating
        self.steps_done = []
        self.location = None
        self.viewport = None             # (width, height) of the visitor's window, if known
        lab.param.watch(self._on_playing, "playing")
        lab.param.watch(self._on_built, ["start", "streams", "seed"])
        lab.param.watch(lambda e: self.render(force=True), "layer")
        lab.param.watch(self._push_url, list(MnistLab.URL_KEYS))
        self.layout = self._layout()
        self.render(force=True)

    # ------------------------------------------------------------------ later views
    def _build_next_later_view(self):
        """Build the next missing view of :data:`LATER_VIEWS` (it renders from then on, off
        the page until :meth:`complete_layout`); False when none is missing."""
        import importlib
        for name, (module, cls) in LATER_VIEWS.items():
            if getattr(self, name) is None:
                mod = importlib.import_module(f"gle_lab.views.{module}")
                view = getattr(mod, cls)(self.state)
                if getattr(self, "mode", None) is not None:
                    view.set_mode(self.mode)         # the page's layout, off the page
                setattr(self, name, view)
                self.views.append(view)
                return True
        return False

    def _build_later_views(self):
        while self._build_next_later_view():
            pass

    def _add_sidebar_extras(self):
        """Nothing of this page's sidebar comes later (the completion steps of
        :meth:`gle_lab.main.Dashboard._complete_when_quiet` ask)."""
        return False

    def _complete_when_quiet(self, doc, since):
        """Complete the layout as a served simulation dashboard does: after its first frame,
        later while visitors arrive, one view per callback, paced per process."""
        from gle_lab.main import Dashboard
        return Dashboard._complete_when_quiet(self, doc, since)

    def complete_layout(self):
        """Add the views left out of the first document (accuracy, confusion, credit, and
        the about text) in one patch."""
        if self.complete:
            return
        self.complete = True
        with pn.io.unlocked():
            self._build_later_views()
            self._compose(self.mode, force=True)
            self.render(force=True)

    # ------------------------------------------------------------------ layout
    def _layout(self):
        lab = self.state
        from gle_lab.main import ROOT_CSS, touch_targets
        # a toggle bound to the state: a click sends the wanted state, not "flip it"; the
        # page's keyboard shortcuts (assets/js/page.js) find them by their classes
        self.play = pn.widgets.Toggle.from_param(lab.param.playing, label="▶ Play",
                                                 color="primary", width=100,
                                                 css_classes=["gle-play"])
        self.step_button = pn.widgets.Button(label="Step", width=80, css_classes=["gle-step"])
        self.step_button.on_click(lambda e: self.single_step())
        self.reset_button = pn.widgets.Button(label="Reset", width=80,
                                              css_classes=["gle-reset"])
        self.reset_button.on_click(lambda e: self.reset())
        widgets = pn.Param(
            lab, parameters=["start", "mode", "learning", "lr", "streams", "speed",
                             "full_speed", "layer", "seed"],
            widgets={"start": {"type": pn.widgets.RadioButtonGroup,
                               "options": {"trained": "trained", "from scratch": "scratch"}},
                     "mode": {"type": pn.widgets.RadioButtonGroup,
                              "options": {"GLE": "gle", "IE": "ie"}},
                     "lr": {"type": pn.widgets.FloatInput, "step": 1e-4, "format": "0.[0000]"},
                     "speed": {"type": pn.widgets.FloatSlider, "step": 0.1},
                     "layer": {"type": pn.widgets.IntSlider},
                     "seed": {"type": pn.widgets.IntInput}},
            show_name=False, sizing_mode="stretch_width")
        self.status = pn.pane.HTML("", sizing_mode="stretch_width",
                                   css_classes=["gle-mnist-status"])
        self.notice = pn.pane.Alert("", alert_type="info", visible=False,
                                    sizing_mode="stretch_width")
        lab.param.watch(self._on_message, ["message", "level"])
        self.download = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(self.state.accuracy_csv()),
            filename="gle-lab-mnist1d-accuracy.csv", label="Accuracy curve (CSV)",
            color="light", sizing_mode="stretch_width")
        self.back = pn.pane.HTML("<a href='?preset=phase_inversion'>← other presets</a>",
                                 margin=(4, 10), stylesheets=[LINK_TOUCH_CSS])
        # the page reports its window here (assets/js/page.js, as on the simulation
        # dashboard): the layout follows it; it stays first in the page's root whatever the
        # layout (a moved widget gets a new model, and the page would report to the old one)
        self.viewport_input = pn.widgets.TextInput(value="", visible=False, width=1, margin=0,
                                                   css_classes=["gle-viewport"])
        self.viewport_input.param.watch(lambda e: self.set_viewport(e.new), "value")
        self.heading = pn.pane.Markdown("### Learning a real task: MNIST-1D (paper Fig. 6)",
                                        sizing_mode="stretch_width")
        self.buttons = pn.Row(self.play, self.step_button, self.reset_button)
        self.settings = pn.Column(widgets, self.status, self.download, self.back,
                                  sizing_mode="stretch_width", margin=0)
        for obj in (self.buttons, self.settings, widgets.layout):
            touch_targets(obj)             # phones: 44 px targets (a media query)
        for w in widgets.layout:
            # phones: a number is typed (its spin arrows are no target for a finger); a
            # short button ("IE") is 44 px wide too
            w.stylesheets = [*w.stylesheets, PHONE_WIDGET_CSS]
        # the containers stay; a layout change only rearranges what they hold (as
        # gle_lab.main.Dashboard._compose)
        box = dict(sizing_mode="stretch_width", margin=0)
        # a screen: the controls at the left (fixed width), the views in rows beside them
        self.sidebar = pn.Column(width=CONTROLS_PX, css_classes=["gle-view-mnist-controls"])
        self.top_row = pn.Row(**box)                  # sample | output
        self.bottom_row = pn.Row(**box)               # confusion | about
        self.grid = pn.Column(**box)
        self.body = pn.Row(**box)
        # a phone: one column (the controls' heading and buttons first, at full width)
        self.phone_head = pn.Column(css_classes=["gle-view-mnist-controls"], **box)
        self.phone_main = pn.Column(css_classes=["gle-mnist-phone"], **box)
        self.about = pn.pane.Markdown(about_text(), sizing_mode="stretch_width",
                                      css_classes=["gle-mnist-about"])
        # never wider than the window (the dashboard's own root style): a phone whose first
        # document had the screen layout (its window not known yet) would otherwise zoom
        # out to it and report that wider window instead of its own
        self.root = pn.Column(sizing_mode="stretch_width", margin=0, css_classes=["gle-mnist"],
                              stylesheets=[ROOT_CSS])
        self.mode = None
        self._compose(self._guess_mode())
        return self.root

    # ------------------------------------------------------------------ page layouts
    def _guess_mode(self):
        """The layout for the visitor's window as the request tells it
        (:func:`gle_lab.main.guess_layout`); a wide screen when nothing tells."""
        from gle_lab.main import guess_layout
        return guess_layout(self, "wide")

    def effective_mode(self):
        """The layout for the reported window, at the simulation dashboard's thresholds
        (:func:`gle_lab.main.mode_for`); the current one while the window is not known."""
        from gle_lab.main import mode_for
        if not self.viewport:
            return self.mode or "wide"
        return mode_for(self.viewport[0])

    def set_viewport(self, text):
        """The page's ``"<width>x<height>"`` (assets/js/page.js): pick the layout."""
        from gle_lab.main import parse_viewport
        size = parse_viewport(text)
        if size is not None:
            self.viewport = size
            self.apply_mode()

    def apply_mode(self, mode=None):
        """Compose the page for a layout ("wide", "present", "phone"; only when it
        changes: the views' figures are kept)."""
        mode = mode or self.effective_mode()
        if mode == self.mode:
            return
        import contextlib
        doc = pn.state.curdoc
        with (doc.models.freeze() if doc is not None else contextlib.nullcontext()):
            self._compose(mode)

    def _compose(self, mode, force=False):
        if mode == self.mode and not force:
            return
        self.mode = mode
        for view in self.views:
            view.set_mode(mode)
        later = self.complete
        if mode == "phone":
            want = [(self.sidebar, []), (self.top_row, []), (self.bottom_row, []),
                    (self.grid, []), (self.body, []),
                    (self.phone_head, [self.heading, self.buttons]),
                    (self.phone_main, [self.phone_head, self.notice, self.sample, self.output,
                                       self.settings] +
                     ([self.accuracy, self.confusion, self.credit, self.about] if later
                      else [])),
                    (self.root, [self.viewport_input, self.phone_main])]
        else:
            want = [(self.phone_head, []), (self.phone_main, []),
                    (self.sidebar, [self.heading, self.buttons, self.settings]),
                    (self.top_row, [self.sample, self.output]),
                    (self.bottom_row, [self.confusion, self.about] if later else []),
                    (self.grid, [self.notice, self.top_row] +
                     ([self.accuracy, self.credit, self.bottom_row] if later else [])),
                    (self.body, [self.sidebar, self.grid]),
                    (self.root, [self.viewport_input, self.body])]
        # a view is held by its layout (what a Panel container keeps of it)
        from gle_lab.main import place
        place([(container, [o.layout if isinstance(o, Viewer) else o for o in objs])
               for container, objs in want])

    def _on_message(self, *events):
        lab = self.state
        self.notice.object = html.escape(lab.message)
        self.notice.alert_type = lab.level if lab.level in (
            "info", "warning", "danger", "success") else "info"
        self.notice.visible = bool(lab.message)

    # ------------------------------------------------------------------ URL
    def sync_location(self, location=None):
        """Apply the link's settings (``?preset=mnist1d&start=...&seed=...``) and keep the
        address bar following the session's settings."""
        loc = location if location is not None else pn.state.location
        if loc is None:
            return
        self.location = loc
        settings, problems = MnistLab.from_query(dict(loc.query_params))
        if "start" in settings:         # first: a start brings its own defaults
            self.state.start = settings.pop("start")
        if settings:
            self.state.param.update(**settings)
        if problems:
            self.state.notify("Ignored from the link: " + "; ".join(problems), "warning")
        self._push_url()

    def _push_url(self, *events):
        if self.location is not None:
            q = self.state.query_string()
            if self.location.search != q:
                self.location.search = q

    # ------------------------------------------------------------------ frames
    def _on_playing(self, event):
        self.play.label = "❚❚ Pause" if event.new else "▶ Play"
        self._last_tick = None
        if self.callback is not None:
            if event.new and not self.callback.running:
                self.callback.start()
            elif not event.new and self.callback.running:
                self.callback.stop()

    def _on_built(self, *events):
        for v in self.views:
            v.rebuild()
        self.render(force=True)

    def start(self):
        """Create the frame callback (from ``pn.state.onload``) and play."""
        if self.callback is None:
            from panel.io.callbacks import PeriodicCallback
            self.callback = PeriodicCallback(callback=self.tick_async, period=FRAME_MS,
                                             background=True, log=False)
            doc = pn.state.curdoc
            if doc is not None and patch_enabled("panel_periodic_registry"):
                # removed with the session, like Panel's own
                pn.state._periodic.setdefault(doc, []).append(self.callback)
            self.state.playing = True
            if not self.callback.running:
                self.callback.start()
            if not self.complete:
                if doc is not None and doc.session_context is not None:
                    self._complete_when_quiet(doc, time.monotonic())
                else:
                    self.complete_layout()

    def destroy(self, session_context=None):
        if self.callback is not None:
            self.callback.stop()
            self.callback = None
        self.state.sim = None

    def tick(self, n_steps=None):
        """One frame: simulate within the CPU budget, then update every view (≤ 10 Hz)."""
        t0 = time.perf_counter()
        lab = self.state
        if lab.sim is None:
            return
        wall = FRAME_MS / 1000 if self._last_tick is None else t0 - self._last_tick
        self._last_tick = t0
        try:
            done = lab.advance(wall_dt=wall, n_steps=n_steps)
            self._frame_done(t0, time.perf_counter() - t0, done)
        except Exception as exc:                                   # noqa: BLE001
            frame_failed(self.state, exc)

    async def tick_async(self):
        """The served frame: as :meth:`tick`, but between two kernel calls (~15 ms) the
        event loop serves the process's other sessions (their frames are not held up for
        the whole simulation budget)."""
        t0 = time.perf_counter()
        lab = self.state
        if lab.sim is None:
            return
        wall = FRAME_MS / 1000 if self._last_tick is None else t0 - self._last_tick
        self._last_tick = t0
        sim_s = 0.0
        try:
            s0 = time.perf_counter()
            for _ in lab.advance_slices(wall_dt=wall):
                sim_s += time.perf_counter() - s0
                await asyncio.sleep(0)
                s0 = time.perf_counter()
            sim_s += time.perf_counter() - s0
            if lab.sim is None:                     # the session closed meanwhile
                return
            self._frame_done(time.perf_counter() - sim_s, sim_s, lab.last_done)
        except Exception as exc:                                   # noqa: BLE001
            frame_failed(self.state, exc)

    def _frame_done(self, t_sim_start, sim_s, done):
        with pn.io.unlocked():
            self.render()
        self.tick_seconds.append(time.perf_counter() - t_sim_start)
        self.sim_seconds.append(sim_s)
        self.steps_done.append(done)
        if len(self.tick_seconds) > 1000:
            for a in (self.tick_seconds, self.sim_seconds, self.steps_done):
                del a[:500]

    def render(self, force=False):
        self.frame += 1
        slow = force or self.frame % SLOW_EVERY == 0
        for v in self.views:
            v.update(slow=slow)
        lab = self.state
        total = lab.sim.n_steps * lab.streams // lab.L
        rate = ""
        if self.steps_done and self.sim_seconds:
            steps = sum(self.steps_done[-10:])
            secs = sum(self.sim_seconds[-10:]) or 1e-9
            rate = f" · {steps / secs * lab.streams / lab.L:.0f} samples/s when simulating"
        self.status.object = (
            f"<b>{lab.samples}</b> samples shown · {total} presented in all "
            f"({lab.streams} stream{'s' if lab.streams > 1 else ''}) · epoch "
            f"{lab.epoch}{rate}")

    def single_step(self):
        """Advance one tenth of a sample while paused."""
        self.state.advance(n_steps=self.state.L // 10)
        self.render(force=True)

    def reset(self):
        self.state.reset()
        for v in self.views:
            v.rebuild()
        self.render(force=True)


def create_mnist_app(**settings):
    """A new MNIST-1D session's layout (servable), refused politely beyond the per-process
    cap of heavy sessions (:data:`gle_lab.capacity.HEAVY`)."""
    from gle_lab.capacity import (HEAVY, forget_session_callbacks, heavy_full_page,
                                  purge_links, register_dashboard,
                                  report_exception, unregister_dashboard)
    from gle_lab.main import VIEWPORT_TEMPLATE
    from gle_lab.views.style import install_paint_fixes
    doc = pn.state.curdoc
    if doc is not None:
        # phones render the page (or the "busy" page) at device width, not a shrunk desktop
        # page; and the window's size is kept in a cookie (gle_lab.client_hints)
        doc.template = VIEWPORT_TEMPLATE
    ctx = getattr(doc, "session_context", None) if doc is not None else None
    sid = getattr(ctx, "id", None) if ctx is not None else None
    if sid is not None and not HEAVY.try_acquire(sid):
        return heavy_full_page()
    try:
        dash = MnistDashboard(progressive=sid is not None, **settings)
    except Exception:
        if sid is not None:
            HEAVY.release(sid)
        raise
    dash.sync_location()
    # the page script (keyboard shortcuts, accessibility, the window's size reported to the
    # server: the layout follows it) and the reconnection fix; not the repaint fixes: with
    # them a legend's glyphs were missing on a 2× phone screen
    install_paint_fixes(doc, repaint=False)
    pn.state.onload(dash.start)
    if ctx is not None:
        register_dashboard(doc, dash)
        if pn.config.exception_handler is None:
            pn.config.exception_handler = report_exception

    def release(session_context):
        dash.destroy()
        if sid is not None:
            HEAVY.release(sid)
        unregister_dashboard(doc)
        purge_links(dash.layout)
        forget_session_callbacks(doc)
        collector.session_closed()     # its cycles are freed a few seconds later
    pn.state.on_session_destroyed(release)
    dash.layout.dashboard = dash
    return dash.layout
