"""The one state object of a dashboard session: :class:`LabState`.

It owns the :class:`gle_core.Simulator` (which records the teacher's rates too, so the
teacher's hidden rates can be shown) and every control as a ``param`` parameter with
bounds, units and a ``doc`` (shown as the widget's tooltip). Changing a parameter changes the
running simulation at once (through :meth:`gle_core.GLENetwork.set_parameter`, so an invalid
value is refused with the engine's :class:`~gle_core.GLEParameterError` message); a preset or
seed change rebuilds the simulator and bumps :attr:`LabState.structure` so the views rebuild.

The state knows nothing about Bokeh or Panel layouts; views read from it.
"""
from __future__ import annotations

import copy
import math
import time
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import param

from gle_core import GLEParameterError, SimulationDiverged, Simulator
from gle_core import fourier, physics
from gle_core.config import build_simulator, build_stimulus

from .am import AM_LR_FACTOR, AM_METHOD, AM_WINDOW
from .history import ALIGN_EXECUTOR, History, gradient_alignment
from .presets import PRESETS, get_preset
from . import shared_runs

#: waveform name -> label
WAVEFORMS = {"Sine": "sine", "Sum of sines": "sum_of_sines",
             "Smoothed square": "smoothed_square", "Constant": "constant"}
#: the frequencies of paper Fig. 5 relative to the lowest (0.49, 1.07, 1.98 rad/a.u.)
SUM_OF_SINES_RATIOS = (1.0, 1.07 / 0.49, 1.98 / 0.49)
ERROR_MODES = {"GLE (prospective errors)": "gle", "IE (instantaneous errors)": "ie",
               "AM (exact adjoint, windowed)": "am"}
RECORD = ("t", "input", "loss", "prospective_voltage", "r", "inst_error", "error",
          "W", "b", "tau_m", "tau_r",
          "r_prime", "target",          # φ′(ŭ) and y: the Errors view's AM adjoint λ
          "teacher_r")                  # the teacher's hidden rates, shown beside the student's
#: samples kept by the simulator's probes (record_every = 1): the phase fits use them
PROBE_WINDOW = 8192
#: at most this many Euler steps per frame (a slow frame must not snowball)
MAX_STEPS_PER_FRAME = 2000
#: the longest wall-clock gap (s) a frame catches up on
MAX_FRAME_GAP = 0.1
#: display points per neuron trace in the scrolling window
DISPLAY_POINTS = 1000
#: the GLE/exact alignment is measured over windows of TW a.u. (the AM window), at most
#: this many steps, starting at most every ALIGN_EVERY wall seconds (it costs ~25 ms of CPU)
ALIGN_MAX_STEPS = 600
ALIGN_EVERY = 2.0
#: whole periods used by the sliding-window phase fit
FIT_PERIODS = 2
#: a fit is trusted below this relative residual (phase readouts)
FIT_MAX_RESIDUAL = 0.05
#: "error ≈ 0": e and ε are below this fraction of the neuron's forward signal (RMS); their
#: phase is then the phase of numerical noise and learning jitter, never shown as a lag/lead
ERROR_ZERO = 1e-4
#: "not periodic": a signal differs from itself one input period earlier by more than this
#: fraction of its RMS (learning drift, noise); the transfer function at ω is then undefined
PERIODIC_TOL = 0.2
#: "not periodic" too: the component at ω carries less than 20 % of a signal's RMS (the fit's
#: relative residual exceeds √(1 − 0.2²)); its ratio would be that of noise
MAX_OFF_TONE = math.sqrt(1 - 0.2 ** 2)
#: |phase| below this (rad, half a degree) reads "in phase"
PHASE_ZERO = math.radians(0.5)
#: a measured phase within this (rad) of the analytic one reads as the analytic verdict (the
#: fit of a discretised signal is good to a fraction of a degree, not to the sign of 0.3°)
PHASE_AGREE = math.radians(1.0)

PRESET_TITLES = {cfg["title"]: name for name, cfg in PRESETS.items()}

#: teacher mode: control groups (the sidebar cards, the playback bar and the Share, Export and
#: Teacher-link cards) -> the controls they hold
GROUPS = {
    "experiment": ("preset", "seed"),
    "neuron": ("neuron", "tau_m", "tau_r", "weight"),
    "input": ("waveform", "omega", "amplitude"),
    "learning": ("error_mode", "learn", "lr", "beta", "gamma"),
    "display": ("window",),
    "playback": ("play", "step", "reset", "speed"),
    "share": (),
    "export": (),
    "teacher": (),
}
#: LabState parameter -> the teacher-mode control that sets it
PARAM_CONTROL = {
    "preset": "preset", "seed": "seed", "neuron": "neuron", "tau_m": "tau_m",
    "tau_r": "tau_r", "weight_select": "weight", "weight": "weight", "waveform": "waveform",
    "omega": "omega", "amplitude": "amplitude", "error_mode": "error_mode",
    "am_window": "error_mode", "learn_W": "learn", "learn_b": "learn", "learn_tau_m": "learn",
    "learn_tau_r": "learn", "lr": "lr", "beta": "beta", "gamma": "gamma", "window": "window",
    "speed": "speed"}
#: parameters whose last change "Reset and undo the last change" can revert
UNDOABLE = ("tau_m", "tau_r", "weight", "waveform", "omega", "amplitude", "learn_W", "learn_b",
            "learn_tau_m", "learn_tau_r", "lr", "beta", "gamma", "am_window")
#: short names of parameters in sentences
SHORT = {"tau_m": "τm", "tau_r": "τr", "weight": "the weight", "weight_select": "the weight",
         "omega": "ω", "amplitude": "the amplitude", "waveform": "the waveform", "lr": "η",
         "beta": "β", "gamma": "γ", "am_window": "TW", "error_mode": "the error mode",
         "preset": "the preset", "seed": "the seed", "neuron": "the neuron",
         "window": "the window", "speed": "the speed", "learn_W": "learn W",
         "learn_b": "learn b", "learn_tau_m": "learn τm", "learn_tau_r": "learn τr"}
#: values fixed by the controls of these names are what a rebuild (preset, seed) redraws
VALUE_CONTROLS = ("tau_m", "tau_r", "weight")


def preset_seed(preset):
    """The seed a preset opens with (its ``ui.seed``, default 0) unless the user chose one:
    a typical draw of its random initial parameters (the chain's U(0, 1) τm draw of seed 0
    hits the floor τm = τr for both neurons, the LE limit the experiment is not about)."""
    return int(PRESETS[preset].get("ui", {}).get("seed", 0))


def _cap(text):
    """First letter upper-case (ASCII only: "τm" stays "τm")."""
    return text[0].upper() + text[1:] if text and text[0].isascii() else text


def _show(v):
    """A value for a sentence: 4 significant digits for numbers."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
        return str(v)
    return f"{float(v):.4g}"


def _round_lr(x):
    """3 significant digits (the learning-rate slider's resolution)."""
    return float(f"{x:.3g}")


def neuron_labels(layer_sizes):
    """Names of the neurons ``n1``, ``n2`` (one per layer) or ``n1.0``, ``n1.1`` ..."""
    labels = []
    for layer, n in enumerate(layer_sizes[1:]):
        for i in range(n):
            labels.append(f"n{layer + 1}" if n == 1 else f"n{layer + 1}.{i}")
    return labels


def sign_word(phase):
    """(css class, word) of a phase: lead/LEADS, lag/LAGS, zero/IN PHASE, or ("", "…")."""
    if not np.isfinite(phase):
        return "", "…"
    if abs(phase) < PHASE_ZERO:
        return "zero", "IN PHASE"
    return ("lead", "LEADS") if phase > 0 else ("lag", "LAGS")


def format_degrees(phase):
    """``+12.3°`` / ``-4.0°`` / ``0.0°`` (never ``-0.0°``), ``—`` for NaN."""
    if not np.isfinite(phase):
        return "—"
    deg = round(math.degrees(phase), 1)
    return "0.0°" if deg == 0 else f"{deg:+.1f}°"


def periodicity_residual(x, period_steps):
    """RMS of ``x(t) − x(t − T)`` over RMS of ``x`` (0: exactly periodic with period T of
    ``period_steps`` samples, rounded); ``inf`` if there is less than one period."""
    n = int(round(period_steps))
    x = np.asarray(x, dtype=float)
    if n < 1 or len(x) <= n:
        return float("inf")
    scale = float(np.sqrt(np.mean(x ** 2)))
    if scale == 0.0:
        return 0.0
    return float(np.sqrt(np.mean((x[n:] - x[:-n]) ** 2))) / scale


@dataclass
class PhaseReadout:
    """Measured and analytic phases of the selected neuron at the drive frequency."""

    omega: float = float("nan")
    forward_analytic: complex = complex("nan")
    error_analytic: complex = complex("nan")
    forward_fit: Optional[fourier.GainPhaseFit] = None
    error_fit: Optional[fourier.GainPhaseFit] = None
    status: str = ""
    error_mode: str = "gle"
    history: dict = field(default_factory=dict)
    #: per card ("forward", "error"): "measured" | "measuring" (settling after a change: the
    #: last measured value is shown greyed) | "zero" (error ≈ 0) | "not periodic" | "none"
    verdicts: dict = field(default_factory=lambda: {"forward": "measuring",
                                                    "error": "measuring"})
    #: per card: the last trusted measured phase (rad), NaN if none (kept while "measuring")
    shown: dict = field(default_factory=lambda: {"forward": float("nan"),
                                                 "error": float("nan")})

    def forget(self):
        """Drop the shown measurements (another neuron or error mode: they no longer apply)."""
        self.shown = {"forward": float("nan"), "error": float("nan")}
        self.history = {}

    def card(self, key):
        """What the ``key`` card ("forward" or "error") shows, decided here (views render it).

        Returns a dict: ``measured`` (phase in rad to show, NaN: none), ``verdict`` (see
        :attr:`verdicts`), ``note`` ("measured", "measuring…", "error ≈ 0", "not periodic" or
        ""), ``stale`` (the value shown is the last one before a change), ``analytic`` (rad),
        ``cls`` / ``word`` ("lag"/"LAGS", "lead"/"LEADS", "zero"/"IN PHASE", ""/"…") of the
        card and ``analytic_cls`` / ``analytic_word`` of the analytic value. The card's word
        follows the analytic value unless a fresh measurement disagrees with it by more than
        :data:`PHASE_AGREE` (so it flips in the frame of the slider change, and a 0.7° fit
        of an in-phase signal reads "IN PHASE").
        """
        analytic = (self.forward_analytic_phase if key == "forward"
                    else self.error_analytic_phase)
        verdict = self.verdicts.get(key, "none")
        shown = self.shown.get(key, float("nan"))
        if verdict in ("zero", "not periodic", "none"):
            shown = float("nan")
        stale = verdict == "measuring" and bool(np.isfinite(shown))
        a_cls, a_word = sign_word(analytic)
        if verdict in ("zero", "not periodic"):
            cls, word = "", ""          # nothing measured: no lag/lead claimed by the card
        elif verdict == "measured" and np.isfinite(shown) and \
                not (np.isfinite(analytic) and abs(shown - analytic) <= PHASE_AGREE):
            cls, word = sign_word(shown)
        else:
            cls, word = a_cls, a_word
        note = {"measured": "measured", "measuring": "measuring…", "zero": "error ≈ 0",
                "not periodic": "not periodic", "none": ""}[verdict]
        if key == "forward" and verdict == "zero":
            note = "input ≈ 0"
        return {"measured": shown, "verdict": verdict, "note": note, "stale": stale,
                "analytic": analytic, "cls": cls, "word": word, "analytic_cls": a_cls,
                "analytic_word": a_word}

    @staticmethod
    def _phase(fit):
        if fit is None or not fit.ok:
            return float("nan")
        return float(fit.phase)

    @property
    def forward_phase(self) -> float:
        """Measured phase (rad) of ŭ relative to its drive; NaN while not measurable."""
        return self._phase(self.forward_fit)

    @property
    def error_phase(self) -> float:
        """Measured phase (rad) of e relative to ε; NaN while not measurable."""
        return self._phase(self.error_fit)

    @property
    def forward_analytic_phase(self) -> float:
        return float(np.angle(self.forward_analytic))

    @property
    def error_analytic_phase(self) -> float:
        return float(np.angle(self.error_analytic))


class LabState(param.Parameterized):
    """Everything a GLE Lab session shows and controls."""

    # ---------------------------------------------------------------- model
    preset = param.Selector(default="phase_inversion", objects=PRESET_TITLES,
                            doc="Experiment to load. Changing it rebuilds the simulation.")
    neuron = param.Selector(default=0, objects={"n1": 0},
                            doc="Neuron whose τm and τr the sliders set and whose phase and "
                                "transfer functions are shown.")
    tau_m = param.Number(1.0, bounds=(1e-3, 100.0), label="τm membrane (a.u.)",
                         doc="Membrane time constant τm of the selected student neuron (a.u.): "
                             "the retrospective low-pass I⁻τm of its input.")
    tau_r = param.Number(0.1, bounds=(1e-3, 100.0), label="τr prospective (a.u.)",
                         doc="Prospective time constant τr of the selected student neuron "
                             "(a.u.): the look-ahead D⁺τr of its rate. τr < τm: the rate lags "
                             "its input; τr > τm: it leads.")
    weight_select = param.Selector(default=(0, 0, 0), objects={"W1 (input → n1)": (0, 0, 0)},
                                   label="Weight",
                                   doc="Which synaptic weight of the student the slider sets.")
    weight = param.Number(1.0, bounds=(-10.0, 10.0), softbounds=(-3.0, 3.0),
                          label="Weight value",
                          doc="Value of the selected weight W (dimensionless).")
    # ---------------------------------------------------------------- input
    waveform = param.Selector(default="sine", objects=WAVEFORMS, label="Input waveform",
                              doc="Input r0(t): a sine, the sum of three sines of paper Fig. 5 "
                                  "(ω, 2.18ω, 4.04ω), a smoothed ±1 square wave of period 2π/ω, "
                                  "or a constant.")
    omega = param.Number(1.0, bounds=(0.01, 50.0), label="ω input (rad/a.u.)",
                         doc="Angular frequency ω of the input (rad per a.u.); period 2π/ω. "
                             "For the sum of sines it is the lowest frequency.")
    amplitude = param.Number(1.0, bounds=(0.0, 5.0), label="Amplitude",
                             doc="Input amplitude (the value for a constant input).")
    # ---------------------------------------------------------------- learning
    learn_W = param.Boolean(False, label="learn W", doc="Weights learn: ΔW = η e rᵀ (Eq. 8).")
    learn_b = param.Boolean(False, label="learn b", doc="Biases learn: Δb = η e.")
    learn_tau_m = param.Boolean(False, label="learn τm",
                                doc="Membrane time constants learn: Δτm = -η e ⊙ u̇.")
    learn_tau_r = param.Boolean(False, label="learn τr (experimental)",
                                doc="Prospective time constants learn: Δτr = +η ε ⊙ u̇ "
                                    "(no published experiment does this).")
    lr = param.Number(1e-3, bounds=(0.0, 1.0), label="Learning rate η",
                      doc="Learning rate of the preset's optimizer (per Euler step).")
    beta = param.Number(1.0, bounds=(0.0, 1000.0), softbounds=(0.0, 10.0), label="β nudging",
                        doc="β: strength of the output cost; output error g = β (y - r).")
    gamma = param.Number(0.0, bounds=(0.0, 100.0), softbounds=(0.0, 2.0), label="γ error → soma",
                         doc="γ: how strongly the error e feeds back into the soma "
                             "(τm u̇ = -u + W r + b + γ e). γ = 1 is energy-consistent.")
    error_mode = param.Selector(default="gle", objects=ERROR_MODES, label="Error mode",
                                doc="GLE: prospective errors e = D⁺τm I⁻τr{ε} (Eq. 7). "
                                    "IE: instantaneous errors e = ε (plain backprop baseline). "
                                    "AM: exact gradients of windows of TW a.u. (truncated "
                                    "BPTT / adjoint method), one optimizer step per window; "
                                    "switching to or from AM restarts the simulation.")
    am_window = param.Number(AM_WINDOW, bounds=(0.05, 50.0), label="AM window TW (a.u.)",
                             doc="AM mode: parameters stay fixed for a window of TW a.u., then "
                                 "take one optimizer step with the window's exact gradient.")
    # ---------------------------------------------------------------- run
    playing = param.Boolean(True, doc="Run the simulation live.")
    speed = param.Number(4.0, bounds=(0.05, 200.0), label="Speed (a.u./s)",
                         doc="Simulated time per wall-clock second (a.u./s).")
    window = param.Number(20.0, bounds=(1.0, 80.0), label="Window (a.u.)",
                          doc="Simulated time shown by the scrolling traces (a.u.).")
    present = param.Boolean(None, allow_None=True, label="Present",  # url: present
                            doc="Presentation mode (projector: large text, the phase cards, "
                                "the Activity plot and the τ sliders on one screen). None: "
                                "automatic, on below 1600 px of window width.")
    seed = param.Integer(0, bounds=(0, 2**31 - 1), label="Seed",
                         doc="Seed of the random initial parameters and input shifts. "
                             "Changing it rebuilds the simulation.")
    # ---------------------------------------------------------------- outputs
    message = param.String("", doc="Status or error message shown to the user.")
    message_level = param.Selector(default="info", objects=["info", "success", "warning",
                                                            "danger"])
    failed = param.Boolean(False, doc="The simulation diverged and waits for a reset.")
    structure = param.Integer(0, doc="Bumped after a rebuild that may change the network's "
                                     "shape (preset, error engine): views rebuild.")
    reseeded = param.Integer(0, doc="Bumped after a rebuild that kept the shape (a new seed): "
                                    "views keep their figures and refresh values.")
    cleared = param.Integer(0, doc="Bumped when the recorded data restart (reset, rebuild).")
    tau_version = param.Integer(0, doc="Bumped when τm or τr of the shown neuron change.")
    # ---------------------------------------------------------------- teacher mode
    locked = param.List([], item_type=str,
                        doc="Teacher mode: names of locked controls (control groups such as "
                            "'neuron', 'learning' or single controls such as 'tau_m', "
                            "'weight'; see gle_lab.sharing.TEACHER_NAMES). Every path that "
                            "changes a value (sliders, lesson steps, URL, session files, "
                            "presets) refuses to change a locked one and says so in "
                            "`notice`. Views render locked controls disabled.")
    hidden = param.List([], item_type=str,
                        doc="Teacher mode: names of hidden controls and cards (the names of "
                            "`locked` plus the cards 'share', 'export', 'teacher'). Views do "
                            "not show them.")
    # ---------------------------------------------------------------- transient notices
    notice = param.String("", doc="A short transient message for a toast (e.g. 'τm is "
                                  "locked by the teacher: the lesson step left it at 1'). "
                                  "Unlike `message` it never moves the page.")
    notice_level = param.Selector(default="info", objects=["info", "success", "warning",
                                                           "danger"],
                                  doc="Severity of `notice`.")
    notice_serial = param.Integer(0, doc="Bumped with every notice (the same text twice is "
                                         "two toasts): watch this to show `notice`.")
    # ---------------------------------------------------------------- recovery
    fail_cause = param.String("", doc="After a divergence: the LabState parameter changed last "
                                      "before it (e.g. 'gamma'), '' if none. Views show the "
                                      "divergence message next to that control too.")
    undo_value = param.Parameter(None, doc="After a divergence: the value `fail_cause` had "
                                           "before its last change (what reset_and_undo() "
                                           "restores), None if unknown.")
    # ---------------------------------------------------------------- labels and readouts
    mode_label = param.String("GLE", doc="Short name of the error mode for titles and legends: "
                                         "'GLE', 'IE' or 'AM'.")
    alignment = param.Number(float("nan"), allow_None=False,
                             doc="Cosine similarity between the weight update GLE made over "
                                 "the last window and the exact gradient of that window's loss "
                                 "(windowed adjoint, gle_core.adjoint.exact_gradients): "
                                 "cos = ⟨ΔW_GLE, −∇W L⟩ / (‖ΔW_GLE‖ ‖∇W L‖). 1: GLE follows the "
                                 "gradient exactly; 0: orthogonal; NaN: not measured (no "
                                 "weight learning, AM mode or too little data).")
    out_of_range = param.Dict({}, doc="Controls whose true (learned) value lies outside the "
                                      "control's range: {LabState parameter: true value}. The "
                                      "control shows its end; views show the true value beside "
                                      "it.")

    def __init__(self, preset="phase_inversion", seed=None, **params):
        super().__init__(**params)
        # ``seed`` None: the preset's default seed (``ui.seed``), until the user picks one
        self._seed_chosen = seed is not None
        if seed is None:
            seed = preset_seed(preset)
        self._syncing = False
        self._lock_hold = False         # a locked change was refused: its dispatch is mute
        self._guard_depth = 0
        self._internal = 0              # >0: the state itself changes values (engine switch)
        self._source = "a control"     # who is changing values (named in lock notices)
        self._pending = self._undo = None
        watched = list(PARAM_CONTROL)
        # before the @param.depends watchers (precedence -1): remember / refuse the change
        self.param._watch(self._remember_change, list(UNDOABLE), precedence=-3)
        self.param._watch(self._enforce_locks, watched, precedence=-2)
        self.param.watch(self._release_lock_hold, watched, precedence=1000)
        # first of all: a change leaves a shared run (with a copy) before anything changes
        self.param._watch(self._leave_on_change, list(shared_runs.LEAVE_ON), precedence=-4)
        #: set by a served dashboard: this session may share its run with identical ones
        self.share_runs = False
        self._shared = None
        self._run_advances = 0           # the shared run's advances at this member's last frame
        self.sim: Optional[Simulator] = None
        self.readout = PhaseReadout()
        self.last_change = ""
        self._rebuild(preset, seed)
        # only a session's very first frame may join a shared run: after a reset, a new
        # preset or any step of its own, the user asked for a run of their own from t = 0
        self._may_join = True

    # =============================================================== building
    @property
    def net(self):
        return self.sim.network

    @property
    def cfg(self):
        return self._cfg

    def _rebuild(self, preset, seed, mode=None):
        """Build the simulation of ``preset``; ``mode`` ("gle", "ie", "am") overrides its rule."""
        cfg = get_preset(preset)
        self._leave_shared(keep_copy=False)
        self._may_join = False
        sim = build_simulator(cfg, seed=seed, record=RECORD, window=PROBE_WINDOW)
        lrn = cfg.get("learning", {})
        if mode == "am":
            lr_am = lrn.get("lr", 1e-3)
            lr_am = ({k: v * AM_LR_FACTOR for k, v in lr_am.items()} if isinstance(lr_am, dict)
                     else lr_am * AM_LR_FACTOR)
            sim.set_rule("am", window=float(self.am_window), method=AM_METHOD)
            sim.lr = lr_am
        elif mode in ("gle", "ie") and mode != sim.network.error_mode:
            sim.network.set_error_mode(mode)
        self._cfg = cfg
        self.sim = sim
        self._overrides = {}
        self._learn_layers = {k: v for k, v in (cfg.get("learning", {}).get("learn") or {}).items()
                              if v}
        ui = cfg["ui"]
        net = sim.network
        labels = neuron_labels(net.layer_sizes)
        w_labels = {}
        for layer, W in enumerate(net.W):
            pre_names = (["input"] if layer == 0 else
                         neuron_labels(net.layer_sizes)[sum(net.layer_sizes[1:layer]):
                                                        sum(net.layer_sizes[1:layer + 1])])
            if layer == 0 and net.layer_sizes[0] > 1:
                pre_names = [f"x{i}" for i in range(net.layer_sizes[0])]
            post_names = labels[sum(net.layer_sizes[1:layer + 1]):
                                sum(net.layer_sizes[1:layer + 2])]
            for post in range(W.shape[0]):
                for pre in range(W.shape[1]):
                    w_labels[f"W{layer + 1}: {pre_names[pre]} → {post_names[post]}"] = \
                        (layer, post, pre)
        learning = cfg.get("learning", {})
        lr = learning.get("lr", 1e-3)
        lr = float(lr if not isinstance(lr, dict) else max(lr.values()))
        if mode == "am":
            lr *= AM_LR_FACTOR
        stim = cfg.get("stimulus", {"type": "sine"})
        omega, amp = self._stimulus_controls(stim)
        self._syncing = True
        try:
            self.param.neuron.objects = {lab: i for i, lab in enumerate(labels)}
            self.param.weight_select.objects = w_labels
            neuron = min(int(ui.get("neuron", 0)), len(labels) - 1)
            first_w = next(iter(w_labels.values()))
            self.param.update(
                preset=preset, seed=seed, neuron=neuron, weight_select=first_w,
                waveform=stim.get("type", "sine"), omega=omega, amplitude=amp,
                learn_W=bool(self._learn_layers.get("W")), learn_b=bool(self._learn_layers.get("b")),
                learn_tau_m=bool(self._learn_layers.get("tau_m")),
                learn_tau_r=bool(self._learn_layers.get("tau_r")),
                lr=lr, beta=net.beta, gamma=net.gamma,
                error_mode="am" if mode == "am" else net.error_mode,
                speed=float(ui["speed"]), window=float(ui["window"]), failed=False)
            self._sync_controls_from_network()
        finally:
            self._syncing = False
        self.readout = PhaseReadout(error_mode=net.error_mode)
        self._restart_clock()
        shape = (preset, type(sim).__name__, tuple(net.layer_sizes), tuple(labels),
                 tuple(w_labels), sim.teacher is not None,
                 tuple(sorted(self._learn_layers)))
        if shape == getattr(self, "_shape", None):
            self.reseeded += 1          # same figures, new values: no view rebuild (~10× cheaper)
        else:
            self._shape = shape
            self.structure += 1
        self.cleared += 1
        self.tau_version += 1

    @staticmethod
    def _stimulus_controls(stim):
        kind = stim.get("type", "sine")
        if kind == "sine":
            return float(stim.get("omega", 1.0)), float(stim.get("amplitude", 1.0))
        if kind == "sum_of_sines":
            om = np.atleast_1d(stim.get("omegas", [1.0]))
            amp = np.atleast_1d(stim.get("amplitudes", 1.0))
            return float(np.min(om)), float(amp[0])
        if kind == "smoothed_square":
            return 2 * math.pi / float(stim.get("period", 4.0)), float(stim.get("amplitude", 1.0))
        if kind == "constant":
            return 1.0, float(np.atleast_1d(stim.get("value", 1.0))[0])
        return 1.0, 1.0

    def _stimulus_spec(self):
        kind, w, a = self.waveform, float(self.omega), float(self.amplitude)
        base = self._cfg.get("stimulus", {})
        if kind == "sine":
            return {"type": "sine", "omega": w, "amplitude": a}
        if kind == "sum_of_sines":
            return {"type": "sum_of_sines", "omegas": [w * r for r in SUM_OF_SINES_RATIOS],
                    "amplitudes": a}
        if kind == "smoothed_square":
            period = 2 * math.pi / w
            spec = {"type": "smoothed_square", "period": period, "amplitude": a,
                    "sigma": min(float(base.get("sigma", 0.05)), period / 8),
                    "duty": float(base.get("duty", 0.5))}
            if base.get("type") == "smoothed_square":
                spec["max_shift"] = float(base.get("max_shift", 0.0))
            return spec
        return {"type": "constant", "value": a}

    def _restart_clock(self):
        self.history = None             # the recorded history restarts with the run
        self._align = self._align_future = None
        self._align_last = -math.inf
        if not math.isnan(self.alignment):
            self.alignment = float("nan")
        self._seen = 0
        self._step_acc = 0.0
        self._t_change = 0.0
        self.frames = 0
        self.readout.history = {}

    # =============================================================== neurons
    def neuron_location(self, j=None):
        """(layer, index) of global neuron ``j`` (default: the selected one)."""
        j = self.neuron if j is None else j
        sizes = self.net.layer_sizes[1:]
        for layer, n in enumerate(sizes):
            if j < n:
                return layer, j
            j -= n
        raise IndexError(j)

    @property
    def n_neurons(self):
        return sum(self.net.layer_sizes[1:])

    @property
    def labels(self):
        return neuron_labels(self.net.layer_sizes)

    def neuron_taus(self, j=None):
        layer, i = self.neuron_location(j)
        return float(self.net.tau_m[layer][i]), float(self.net.tau_r[layer][i])

    def control_range(self, name):
        """(low, high) of the control of parameter ``name`` as the sliders show it.

        τ sliders span dt/2 … the preset's ``ui.tau_max``; the weight slider spans the weight's
        soft bounds; other numbers their parameter's bounds."""
        if name in ("tau_m", "tau_r"):
            return self.net.dt / 2, float(self._cfg["ui"]["tau_max"])
        p = self.param[name]
        lo, hi = p.get_soft_bounds() if isinstance(p, param.Number) else (None, None)
        return lo, hi

    def _sync_controls_from_network(self):
        """Show the network's current values in the τ and weight controls (no side effects).

        A learned value beyond a parameter's hard bounds is shown clamped to them (a ``param``
        Number cannot hold it); every value beyond the range its slider shows is listed in
        :attr:`out_of_range` with its true value, so views can show it beside the control."""
        old = self._syncing
        self._syncing = True
        try:
            tm, tr = self.neuron_taus()
            layer, post, pre = self.weight_select
            true = {"tau_m": tm, "tau_r": tr, "weight": float(self.net.W[layer][post, pre])}
            shown, beyond = {}, {}
            for name, v in true.items():
                lo, hi = self.param[name].bounds
                shown[name] = min(max(v, lo), hi) if math.isfinite(v) else getattr(self, name)
                clo, chi = self.control_range(name)
                tol = 1e-9 * max(1.0, abs(v)) if math.isfinite(v) else 0.0
                if not math.isfinite(v) or (clo is not None and v < clo - tol) or \
                        (chi is not None and v > chi + tol):
                    beyond[name] = v
            update = {k: v for k, v in shown.items() if v != getattr(self, k)}
            new_keys = [k for k in beyond if k not in self.out_of_range]
            if beyond != self.out_of_range:
                update["out_of_range"] = beyond
            if update:
                self.param.update(**update)
        finally:
            self._syncing = old
        if new_keys and self.sim.t > 0:
            parts = []
            for k in new_keys:
                lo, hi = self.control_range(k)
                parts.append(f"{SHORT.get(k, k)} = {_show(beyond[k])} (the control spans "
                             f"{_show(lo)} … {_show(hi)})")
            self.toast("Learning drove " + " and ".join(parts) + " out of its control's "
                       "range: the control shows its end, the true value is shown beside "
                       "it.", "warning")

    def sync_learned(self):
        """Refresh sliders of parameters that are learning (called a few times a second)."""
        if self.learn_tau_m or self.learn_tau_r or self.learn_W:
            before = (self.tau_m, self.tau_r)
            self._sync_controls_from_network()
            if before != (self.tau_m, self.tau_r):
                self.tau_version += 1

    # =============================================================== messages
    def notify(self, text, level="info"):
        self.param.update(message=text, message_level=level)

    def toast(self, text, level="info"):
        """A transient :attr:`notice` (views show it as a toast that never moves the page)."""
        self.param.update(notice=text, notice_level=level, notice_serial=self.notice_serial + 1)

    # =============================================================== teacher mode
    def _lock_names(self, names):
        out = set()
        for n in names:
            out.update(GROUPS.get(n, (n,)) if n in GROUPS else (n,))
            out.add(n)
        return out

    def is_locked(self, name):
        """Whether the teacher locked the control of ``name`` (a LabState parameter such as
        ``"tau_m"`` or ``"learn_W"``, a control such as ``"learn"``, or a group name)."""
        if not self.locked:
            return False
        locked = self._lock_names(self.locked)
        return PARAM_CONTROL.get(name, name) in locked or name in locked

    def is_hidden(self, name):
        """Whether the teacher hid the control or card ``name`` (as :meth:`is_locked`)."""
        if not self.hidden:
            return False
        hidden = self._lock_names(self.hidden)
        return PARAM_CONTROL.get(name, name) in hidden or name in hidden

    def value_locks(self):
        """The locked controls whose values a rebuild (new preset or seed) would redraw."""
        return [c for c in VALUE_CONTROLS if self.is_locked(c)]

    class _From:
        def __init__(self, state, source):
            self.state, self.source = state, source

        def __enter__(self):
            self.old, self.state._source = self.state._source, self.source
            return self.state

        def __exit__(self, *exc):
            self.state._source = self.old

    def changes_from(self, source):
        """Context manager naming who changes values (``with st.changes_from("the lesson
        step"): ...``): a refused locked change names it in the :attr:`notice`."""
        return self._From(self, source)

    def refuse_locked(self, name, value, source=None):
        """Say that ``source`` may not set locked ``name`` to ``value`` (a :attr:`notice`)."""
        source = source or self._source
        what = SHORT.get(name, name)
        if name in ("preset", "seed") and not self.is_locked(name):
            locks = ", ".join(SHORT.get(c, c) for c in self.value_locks())
            text = (f"{_cap(what)} was not changed: it would redraw {locks}, "
                    f"which the teacher locked ({source} asked for {_show(value)}).")
        else:
            text = (f"{_cap(what)} is locked by the teacher: {source} asked "
                    f"for {_show(value)}; it stays {_show(getattr(self, name))}.")
        self.toast(text, "warning")
        return text

    def _enforce_locks(self, *events):
        """Refuse a change of a locked value, whatever made it: revert it before the
        ``@param.depends`` watchers run and mute them for the rest of this dispatch."""
        if self._syncing or self._internal or not self.locked:
            return
        bad = [e for e in events if self.is_locked(e.name) or
               (e.name in ("preset", "seed") and self.value_locks())]
        if not bad:
            return
        self._syncing = self._lock_hold = True
        self._guard_depth += 1
        try:
            self.param.update(**{e.name: e.old for e in bad})
        finally:
            self._guard_depth -= 1
        for e in bad:
            self.refuse_locked(e.name, e.new)

    def _release_lock_hold(self, *events):
        if self._lock_hold and self._guard_depth == 0:
            self._lock_hold = self._syncing = False

    # =============================================================== undo
    def _remember_change(self, *events):
        """Remember the value before a user change (committed by :meth:`_apply` on success)."""
        if self._syncing or self._internal:
            return
        e = events[-1]
        ctx = ({"neuron": self.neuron} if e.name in ("tau_m", "tau_r") else
               {"weight_select": self.weight_select} if e.name == "weight" else {})
        self._pending = (e.name, e.old, ctx)

    def reset_and_undo(self):
        """Reset and undo the last change: back to t = 0 with the value the last changed
        control had before that change (e.g. the γ before the one that broke the run).

        Returns the name of the restored parameter, or ``""`` if there was nothing to undo.
        """
        undo = self._undo
        self.reset()
        if undo is None:
            self.notify("Reset to t = 0 (no change to undo).", "info")
            return ""
        name, old, ctx = undo
        with self.changes_from("Undo"):
            if ctx:
                self.param.update(**ctx)
            setattr(self, name, old)
        self._undo = self._pending = None
        self.param.update(fail_cause="", undo_value=None)
        self.notify(f"Reset to t = 0 and undid the last change: {SHORT.get(name, name)} is "
                    f"back to {_show(old)}.", "info")
        return name

    def _apply(self, what, fn):
        """Run ``fn`` (which changes the simulation); show the engine's refusal if any."""
        if self._syncing:
            return False
        try:
            fn()
        except GLEParameterError as exc:
            self.notify(f"Refused {what}: {exc}", "danger")
            self._sync_controls_from_network()
            return False
        self.last_change = what
        if self._pending is not None:
            self._undo, self._pending = self._pending, None
        self._t_change = self.sim.t
        if self.message_level == "danger" and not self.failed:
            self.notify("")
        return True

    # =============================================================== watchers
    @param.depends("preset", watch=True)
    def _on_preset(self):
        if self._syncing:
            return
        seed = self.seed if self._seed_chosen else preset_seed(self.preset)
        self._rebuild(self.preset, seed)
        self.notify(f"Rebuilt the simulation for “{self._cfg['title']}” (new network shape "
                    f"{self.net.layer_sizes}).", "info")

    @param.depends("seed", watch=True)
    def _on_seed(self):
        if self._syncing:
            return
        self._seed_chosen = True
        self._rebuild(self.preset, self.seed, mode=self.error_mode)   # a new draw, same rule
        self.notify(f"Rebuilt the simulation with seed {self.seed}.", "info")

    @param.depends("neuron", watch=True)
    def _on_neuron(self):
        if self._syncing:
            return
        self._sync_controls_from_network()
        self._t_change = self.sim.t
        self.readout.forget()
        self.tau_version += 1

    def _set_tau(self, kind, value):
        layer, i = self.neuron_location()

        def do():
            self.net.set_parameter(kind, layer, float(value), index=i)
            self._overrides[(kind, layer, i)] = float(value)
        if self._apply(f"{'τm' if kind == 'tau_m' else 'τr'} of {self.labels[self.neuron]} "
                       f"= {value:.4g}", do):
            self.readout.history = {}
            self.tau_version += 1

    @param.depends("tau_m", watch=True)
    def _on_tau_m(self):
        self._set_tau("tau_m", self.tau_m)

    @param.depends("tau_r", watch=True)
    def _on_tau_r(self):
        self._set_tau("tau_r", self.tau_r)

    @param.depends("weight_select", watch=True)
    def _on_weight_select(self):
        if not self._syncing:
            self._sync_controls_from_network()

    @param.depends("weight", watch=True)
    def _on_weight(self):
        layer, post, pre = self.weight_select

        def do():
            self.net.set_parameter("W", layer, float(self.weight), index=(post, pre))
            self._overrides[("W", layer, (post, pre))] = float(self.weight)
        self._apply(f"weight W{layer + 1}[{post},{pre}] = {self.weight:.4g}", do)

    @param.depends("waveform", "omega", "amplitude", watch=True)
    def _on_stimulus(self):
        def do():
            spec = self._stimulus_spec()
            self._set_stimulus(self.sim, build_stimulus(spec))
        if self._apply(f"input {self.waveform}, ω = {self.omega:.3g}, amplitude = "
                       f"{self.amplitude:.3g}", do):
            self.readout.history.pop(None, None)

    @staticmethod
    def _set_stimulus(sim, stim):
        """Swap a running simulator's input without a reset."""
        if hasattr(sim, "set_stimulus"):
            sim.set_stimulus(stim)
            return
        # TODO(engine): Simulator.set_stimulus; until then, reset the sampling block cache
        stim.reset(sim.network.batch_size, sim.seed)
        sim.stimulus = stim
        sim._block_x = sim._block_y = None

    @param.depends("learn_W", "learn_b", "learn_tau_m", "learn_tau_r", watch=True)
    def _on_learn(self):
        def do():
            learn = {}
            for kind in ("W", "b", "tau_m", "tau_r"):
                if getattr(self, f"learn_{kind}"):
                    learn[kind] = self._learn_layers.get(kind, True)
            self.sim.learn = learn
        self._apply("learning switches", do)

    @param.depends("lr", watch=True)
    def _on_lr(self):
        def do():
            self.sim.lr = float(self.lr)
        self._apply(f"learning rate η = {self.lr:.3g}", do)

    @param.depends("beta", "gamma", watch=True)
    def _on_beta_gamma(self):
        def do():
            for name in ("beta", "gamma"):
                v = float(getattr(self, name))
                if not np.isfinite(v):
                    raise GLEParameterError(name, v, "a finite number")
                setattr(self.net, name, v)
        self._apply(f"β = {self.beta:.3g}, γ = {self.gamma:.3g}", do)

    @property
    def am_mode(self):
        """True while the simulation is the windowed-AM trainer."""
        return self.sim.rule.name == "am"

    def _switch_engine(self, mode):
        """Switch to or from AM with ``sim.set_rule``: time, state, parameters and traces carry on.

        The rate is rescaled between per-step (GLE/IE) and per-window (AM) units; the
        optimizer's moments restart (they averaged the other rule's gradients).
        """
        lr = self.lr * (AM_LR_FACTOR if mode == "am" else 1.0 / AM_LR_FACTOR)
        if mode == "am":
            self.sim.set_rule("am", window=float(self.am_window), method=AM_METHOD)
        else:
            self.sim.set_rule(mode)
        self.readout.error_mode = self.net.error_mode
        self.readout.forget()
        self.lr = _round_lr(lr)
        self.sim.lr = float(self.lr)
        self.tau_version += 1
        if mode == "am":
            self.notify(f"AM learning from t = {self.sim.t:.4g}: exact gradients of windows "
                        f"of TW = {self.am_window:g} a.u., one optimizer step per window "
                        f"(η = {self.lr:.3g} per window).", "info")
        else:
            self.notify(f"{mode.upper()} learning from t = {self.sim.t:.4g} (local, every "
                        f"step; η = {self.lr:.3g} per step).", "info")

    @param.depends("am_window", watch=True)
    def _on_am_window(self):
        if not self.am_mode:
            return

        def do():
            self.sim.rule.set_window(float(self.am_window))
        self._apply(f"AM window TW = {self.am_window:.3g} a.u.", do)

    @param.depends("error_mode", watch=True, on_init=True)
    def _on_mode_label(self):
        """:attr:`mode_label` follows the error mode (titles and legends name it)."""
        self.mode_label = str(self.error_mode).upper()

    @param.depends("error_mode", watch=True)
    def _on_error_mode(self):
        if self._syncing:
            return
        if (self.error_mode == "am") != self.am_mode:
            self._internal += 1         # the engine switch restores the user's settings
            try:
                self._switch_engine(self.error_mode)
            finally:
                self._internal -= 1
            return

        def do():
            self.net.set_error_mode(self.error_mode)
        if self._apply(f"error mode {self.error_mode.upper()}", do):
            self.readout.error_mode = self.error_mode
            self.readout.forget()
            self.tau_version += 1

    # =============================================================== running
    def play(self):
        if self.failed:
            self.notify("The simulation diverged: press Reset first.", "danger")
            return
        self.playing = True

    def pause(self):
        self.playing = False

    def reset(self):
        """Back to t = 0 with the current control settings (learned values are discarded)."""
        self._leave_shared()
        self._may_join = False
        self.sim.reset(self.seed)
        for (kind, layer, index), value in self._overrides.items():
            try:
                self.net.set_parameter(kind, layer, value, index=index)
            except GLEParameterError:
                pass
        self._sync_controls_from_network()
        self._restart_clock()
        was_failed = self.failed
        self.param.update(failed=False, fail_cause="", undo_value=None)
        self.cleared += 1
        self.tau_version += 1
        if was_failed or self.message_level in ("danger", "warning"):
            self.notify("Reset to t = 0.", "info")

    def advance(self, wall_dt=None, n_steps=None):
        """Simulate one frame: ``speed · wall_dt`` a.u. (or exactly ``n_steps`` steps).

        Returns the number of steps run. A divergence pauses the session with a message.
        """
        if self.failed:
            return 0
        if n_steps is not None:
            self._leave_shared()            # a step of its own
        elif self._shared is None and self._may_join and self.share_runs and \
                self.sim.n_steps == 0 and self._t_change == 0 and shared_runs.enabled():
            self._join_shared()
        self._may_join = False
        if self._shared is not None:
            return self._advance_shared()
        dt = self.net.dt
        if n_steps is None:
            self._step_acc += self.speed * min(max(wall_dt or 0.0, 0.0), MAX_FRAME_GAP) / dt
            n_steps = int(self._step_acc)
            self._step_acc -= n_steps
        n = int(min(n_steps, MAX_STEPS_PER_FRAME))
        if n <= 0:
            return 0
        exc = self._simulate(n, self)
        if exc is not None:
            self.fail(exc)
            return n
        self.frames += 1
        return n

    def _simulate(self, n, box):
        """Run ``n`` steps (student and teacher), record them; the exception of a
        divergence or a refused value, else None. ``box`` keeps the alignment bookkeeping
        (this session, or the shared run)."""
        try:
            self.sim.run_steps(n)
        except (SimulationDiverged, GLEParameterError, FloatingPointError) as exc:
            return exc
        self._record_history(n)
        self._measure_alignment(n, box)
        return None

    # =============================================================== shared runs
    def _join_shared(self):
        run = shared_runs.join(self)
        self._shared = run
        self._run_advances = run.advances
        self.sim = run.sim
        self.history, self.readout = run.history, run.readout

    def _advance_shared(self):
        """A member's frame: advance the run to the wall clock unless another member did
        since this member's last frame; the new samples reach this session through
        :meth:`collect`.

        So a run advances about once per frame period however many members it has (an
        advance costs a fixed ~0.5 ms of calls and checks besides its steps), and every
        member's frame still finds new samples."""
        run = self._shared
        n = 0
        if run.failure is None and run.advances == self._run_advances:
            n = run.steps_due(time.monotonic(), self.net.dt, MAX_FRAME_GAP, MAX_STEPS_PER_FRAME)
            if n > 0:
                run.failure = self._simulate(n, run)
        if run.failure is not None:
            exc = run.failure
            self._leave_shared()
            self.fail(exc)
            return n
        self._run_advances = run.advances
        if self.sim.probes["t"].total > self._seen:
            self.frames += 1
        if run.alignment != self.alignment and not (math.isnan(run.alignment) and
                                                     math.isnan(self.alignment)):
            self.alignment = run.alignment
        return n

    def _leave_shared(self, keep_copy=True):
        """Leave the shared run, if any, with a copy of it (:meth:`Simulator.copy`: the
        same numbers from here on), so that what changes next is this session's only."""
        run = self._shared
        if run is None:
            return
        self._shared = None
        shared_runs.leave(self, run)
        if not keep_copy:
            return
        self.sim = run.sim.copy()
        self.history = copy.deepcopy(run.history)
        self.readout = copy.deepcopy(run.readout)
        # an alignment window begun by the run is not carried over: the next one begins anew
        self._align = self._align_future = None
        self._align_last = time.monotonic()
        self._step_acc = 0.0

    def _leave_on_change(self, *events):
        # always with a copy: even a new preset may be refused (a teacher's lock), and then
        # this session runs on with what it had
        if self._shared is not None and not self._syncing:
            self._leave_shared()

    def release(self):
        """Drop the simulation (the session closed): leave a shared run, free the memory."""
        self._leave_shared(keep_copy=False)
        self.sim = None

    @property
    def shared_run(self):
        """The :class:`gle_lab.shared_runs.SharedRun` this session is a member of, or None."""
        return self._shared

    # =============================================================== history and alignment
    def history_columns(self):
        """Names of the recorded history's columns (the CSV export's header)."""
        labels = self.labels
        cols = ["t", "input"]
        cols += [f"r_{lab}" for lab in labels]
        if self.sim.teacher is not None:
            cols += [f"r_{lab}_teacher" for lab in labels]
        cols += [f"e_{lab}" for lab in labels] + [f"eps_{lab}" for lab in labels] + ["loss"]
        cols += [self._weight_column(k) for k in self.param.weight_select.objects.values()]
        for kind in ("b", "tau_m", "tau_r"):
            cols += [f"{kind}_{lab}" for lab in labels]
        return cols

    def new_history(self):
        """An empty :class:`gle_lab.history.History` with this session's columns."""
        return History(self.history_columns())

    def _weight_column(self, key):
        layer, post, pre = key
        sizes = self.net.layer_sizes
        labels = self.labels
        pre_name = ((f"x{pre}" if sizes[0] > 1 else "input") if layer == 0 else
                    labels[sum(sizes[1:layer]) + pre])
        return f"W_{pre_name}_to_{labels[sum(sizes[1:layer + 1]) + post]}"

    def _record_history(self, n):
        """Append the last ``n`` steps to :attr:`history` (see :class:`gle_lab.history.History`)."""
        probes = self.sim.probes
        if "W" not in probes or n > len(probes["t"]):
            return
        if self.history is None:
            self.history = self.new_history()
        parts = [probes["t"].last(n)[:, None], probes["input"].last(n)[:, :1],
                 probes["r"].last(n)]
        if self.sim.teacher is not None:
            parts.append(probes["teacher_r"].last(n))
        parts += [probes["error"].last(n), probes["inst_error"].last(n),
                  probes["loss"].last(n)[:, None]]
        parts += [probes[k].last(n) for k in ("W", "b", "tau_m", "tau_r")]
        block = np.concatenate([np.asarray(p, dtype=float).reshape(n, -1) for p in parts],
                               axis=1)
        if block.shape[1] == len(self.history.columns):
            self.history.extend(block)

    def _measure_alignment(self, n, box=None):
        """Update :attr:`alignment` when a window of the run is complete (see its doc).

        The computation runs on :data:`gle_lab.history.ALIGN_EXECUTOR` from copies (the
        network at the window's start, the window's inputs and targets); its result is
        taken up by a later frame. ``box`` keeps the bookkeeping (default: this session; a
        shared run keeps its own)."""
        box = self if box is None else box
        if not self.learn_W or self.am_mode or "target" not in self.sim.probes:
            if box._align is not None or box._align_future is not None or \
                    not math.isnan(box.alignment):
                box._align = box._align_future = None
                box.alignment = float("nan")
            return
        fut = box._align_future
        if fut is not None:
            if not fut.done():
                return
            box._align_future = None
            box.alignment = self._alignment_result(fut)
        probes = self.sim.probes
        total = probes["t"].total
        if box._align is None:
            now = time.monotonic()
            if now - box._align_last < ALIGN_EVERY:
                return
            # the window starts after this frame: a copy of the network (parameters and
            # state) as it is now, and the probe row where the window begins
            box._align_last = now
            box._align = (self.net.copy(), total)
            return
        net0, start = box._align
        K = min(int(round(float(self.am_window) / self.net.dt)), ALIGN_MAX_STEPS)
        if total - start < K:
            return
        box._align = None
        if total - start > len(probes["t"]):
            return                      # the window's rows left the probes' ring buffer
        back = total - start
        x = probes["input"].last(back)[:K]
        y = probes["target"].last(back)[:K]
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            return
        box._align_future = ALIGN_EXECUTOR.submit(gradient_alignment, net0, net0.get_state(),
                                                   x.copy(), y.copy())

    @staticmethod
    def _alignment_result(fut):
        try:
            return float(fut.result())
        except (FloatingPointError, GLEParameterError, ValueError, ArithmeticError):
            return float("nan")

    def finish_alignment(self, timeout=None):
        """Wait for an alignment being computed and show it (tests, a paused session)."""
        box = self if self._shared is None else self._shared
        fut = box._align_future
        if fut is not None:
            wait([fut], timeout)
            if fut.done():
                box._align_future = None
                box.alignment = self._alignment_result(fut)
        if box is not self:
            self.alignment = box.alignment
        return self.alignment

    def _diagnose(self):
        """Plausible causes of a divergence, most likely first (plain sentences)."""
        net, causes = self.net, []
        learning = bool(self.sim.learn) and any(self.sim.learn.values()) and \
            self.sim.t >= self.sim.learn_from
        if learning:
            wmax = max(float(np.max(np.abs(w))) for w in net.W)
            causes.append(f"learning rate η = {self.lr:.3g} is too large (learning drove the "
                          f"largest weight to |W| = {wmax:.3g}); lower η")
        euler = physics.euler_stability(net, self.gamma, self.beta)
        if not euler.monotone:
            causes.append(f"error feedback γ·β = {euler.loop:.3g} is too strong for explicit "
                          f"Euler (needs dt·(1+γβ)/τm < 2 with dt = {net.dt:g}, τm = "
                          f"{euler.tau_m:.3g}); lower γ or β")
        wmax = max(float(np.max(np.abs(w))) for w in net.W)
        if not learning and wmax > 3:
            causes.append(f"weights are large (|W| = {wmax:.3g})")
        if not causes:
            causes.append("the dynamics became unstable")
        return causes

    def fail(self, exc):
        """Pause the session and say why, beside the controls, with the way back (Reset,
        or Reset and undo the last change).

        ``exc``: a divergence (named, with its likely causes), a value the engine refused,
        or any other error raised while a frame was computed or shown (named by its type:
        the session stops instead of raising it again at every frame)."""
        if isinstance(exc, SimulationDiverged):
            causes = self._diagnose()
            text = (f"Simulation paused — it diverged at t = {exc.t:.4g} a.u.: {exc.variable} "
                    f"in layer {exc.layer} reached {exc.value:.3g}. Likely cause: "
                    + "; or ".join(causes) + ".")
        elif isinstance(exc, (GLEParameterError, FloatingPointError)):
            text = f"Simulation paused: {exc}."
        else:
            text = f"Simulation paused: a frame failed ({type(exc).__name__}: {exc})."
        if self.last_change:
            text += f" Last change: {self.last_change}."
        text += " Press Reset to start again."
        cause, old = (self._undo[0], self._undo[1]) if self._undo else ("", None)
        if cause:
            text += (f" “Reset and undo the last change” restores {SHORT.get(cause, cause)} = "
                     f"{_show(old)}.")
        self.param.update(playing=False, failed=True, fail_cause=cause, undo_value=old)
        self.notify(text, "danger")

    # =============================================================== data for views
    @property
    def decimation(self):
        """Keep every n-th sample for display (≤ DISPLAY_POINTS per trace in the window)."""
        return max(1, int(math.ceil(self.window / self.net.dt / DISPLAY_POINTS)))

    @property
    def rollover(self):
        return int(math.ceil(self.window / (self.net.dt * self.decimation))) + 1

    def collect(self):
        """New recorded samples since the last call, decimated for display.

        Returns ``None`` or a dict of arrays: ``t`` (n,), ``input`` (n,), ``r``, ``teacher_r``,
        ``e``, ``eps`` (n, n_neurons) and ``loss`` (mean loss over the new steps, or NaN).
        """
        probes = self.sim.probes
        total = probes["t"].total
        unseen = min(total - self._seen, PROBE_WINDOW)
        if unseen <= 0:
            return None
        # rows older than the window would only scroll out at once (a session joining a
        # shared run sees a run that began before it)
        new = min(unseen, int(math.ceil(self.window / self.net.dt)) + 1)
        start = total - new
        dec = self.decimation
        first = start + (-start) % dec      # the display keeps sample numbers divisible by dec
        self._seen = total
        loss = probes["loss"].last(unseen)
        loss = loss[np.isfinite(loss)]
        out = {
            "t": probes["t"].samples(first, total, dec),
            "input": probes["input"].samples(first, total, dec)[:, 0],
            "r": probes["r"].samples(first, total, dec),
            "e": probes["error"].samples(first, total, dec),
            "eps": probes["inst_error"].samples(first, total, dec),
            "loss": float(loss.mean()) if loss.size else float("nan"),
            "n_new": unseen,
        }
        if self.sim.teacher is not None:
            out["teacher_r"] = probes["teacher_r"].samples(first, total, dec)
        return out

    def parameter_values(self):
        """Current student and teacher parameters, flattened: {kind: (values, teacher)}."""
        net, teacher = self.net, self.sim.teacher
        res = {}
        for kind in ("W", "b", "tau_m", "tau_r"):
            vals = np.concatenate([a.ravel() for a in net.parameters(kind)])
            ref = (np.concatenate([a.ravel() for a in teacher.parameters(kind)])
                   if teacher is not None and
                   [a.shape for a in teacher.parameters(kind)] ==
                   [a.shape for a in net.parameters(kind)] else None)
            res[kind] = (vals, ref)
        return res

    # =============================================================== phase readout
    def drive_frequency(self):
        """The ω the phase fits use, or None for a constant input."""
        return None if self.waveform == "constant" else float(self.omega)

    def analytic(self, kind, omega=None, j=None, discrete=True):
        """Analytic transfer function of the selected neuron at ω (Euler-exact by default)."""
        tm, tr = self.neuron_taus(j)
        omega = self.drive_frequency() if omega is None else omega
        return fourier.transfer(kind, omega, tm, tr, dt=self.net.dt if discrete else None)

    def measure(self):
        """Fit gain/phase of the selected neuron at the input frequency; updates ``readout``.

        Forward path: prospective voltage ŭ (= the rate for linear φ) against its total drive
        W r_in + b + γ e; error path: e against ε. Only samples after the last change plus a
        settling time of 3·max(τm, τr) are used, over at most ``FIT_PERIODS`` periods.
        """
        if self._shared is not None:
            # one fit serves every member of a shared run (it reads the run's probes)
            return self._shared.reuse("measure", self._measure)
        return self._measure()

    def _measure(self):
        ro = self.readout
        ro.error_mode = self.net.error_mode
        omega = self.drive_frequency()
        ro.omega = float("nan") if omega is None else omega
        ro.forward_fit = ro.error_fit = None
        ro.verdicts = {"forward": "measuring", "error": "measuring"}
        if omega is None:
            ro.forward_analytic = ro.error_analytic = complex("nan")
            ro.verdicts = {"forward": "none", "error": "none"}
            ro.status = "needs an oscillating input (constant input: no phase)"
            return ro
        err_kind = "gle_error" if self.net.error_mode == "gle" else "ie_error"
        ro.forward_analytic = complex(self.analytic("forward"))
        ro.error_analytic = complex(self.analytic(err_kind))
        tm, tr = self.neuron_taus()
        settle = min(3.0 * max(tm, tr), 60.0)
        t_from = self._t_change + settle
        probes = self.sim.probes
        n_avail = len(probes["t"])
        if n_avail < 4:
            ro.status = "waiting for data"
            return ro
        t_all = probes["t"].last()
        i0 = int(np.searchsorted(t_all, t_from - 1e-9))
        need = 2 * math.pi / omega
        have = t_all[-1] - max(t_from, t_all[0])
        if n_avail - i0 < 8 or have < need:
            ro.status = (f"measuring… (settling {settle:.3g} a.u. + one period "
                         f"{need:.3g} a.u.)")
            return ro
        t = t_all[i0:]
        layer, i = self.neuron_location()
        j = self.neuron
        net = self.net
        # only the samples from i0 (one more before them: a hidden layer's drive reads the
        # rates of the previous step), not copies of the whole window
        s0 = max(i0 - 1, 0)
        m = n_avail - s0
        err = probes["error"].last(m)[:, j]
        uh = probes["prospective_voltage"].last(m)[i0 - s0:, j]
        e = err[i0 - s0:]
        eps = probes["inst_error"].last(m)[i0 - s0:, j]
        drive = physics.drive_trace(net, layer, i, probes["input"].last(m), probes["r"].last(m),
                                    err)[i0 - s0:]
        # ŭ vs drive and e vs ε are linear maps, so the ratio of the components at ω is the
        # transfer function even for non-sinusoidal periodic inputs (harmonics are orthogonal
        # over whole periods); only a pure sine is required to fit with a small residual.
        kw = dict(max_periods=FIT_PERIODS,
                  max_residual=FIT_MAX_RESIDUAL if self.waveform == "sine" else 1.0)
        ro.forward_fit = fourier.measure_gain_phase(t, drive, uh, omega, **kw)
        ro.error_fit = fourier.measure_gain_phase(t, eps, e, omega, **kw)
        # no fit of a signal too small or not periodic at ω: its "phase" would be noise
        period = need / float(np.median(np.diff(t))) if len(t) > 1 else float("inf")
        rms = lambda x: float(np.sqrt(np.mean(np.square(x))))     # noqa: E731
        scale = max(rms(drive), rms(uh))
        span = slice(-int(round(FIT_PERIODS * period)) - int(round(period)), None)
        def irregular(fit, *signals):
            # little of the signal at ω (noise, learning jitter), or (for a periodic input)
            # a signal that is not periodic with the input's period (drift)
            if fit.residual == fit.residual and fit.residual > MAX_OFF_TONE:
                return True
            if self.waveform == "sum_of_sines":      # no period: its tones are incommensurate
                return False
            return max(periodicity_residual(x[span], period) for x in signals) > PERIODIC_TOL
        verdicts = {}
        if scale < 1e-12:
            verdicts["forward"] = "zero"
        elif irregular(ro.forward_fit, drive, uh):
            verdicts["forward"] = "not periodic"
        if max(rms(e), rms(eps)) < ERROR_ZERO * max(scale, 1e-300):
            verdicts["error"] = "zero"
        elif irregular(ro.error_fit, eps, e):
            verdicts["error"] = "not periodic"
        for key in ("forward", "error"):
            if key in verdicts:
                setattr(ro, f"{key}_fit", None)
                ro.shown[key] = float("nan")
        ok_f, ok_e = np.isfinite(ro.forward_phase), np.isfinite(ro.error_phase)
        for key, ok in (("forward", ok_f), ("error", ok_e)):
            if ok:
                verdicts[key] = "measured"
                ro.shown[key] = getattr(ro, f"{key}_phase")
            elif key not in verdicts:
                verdicts[key] = "not periodic"        # a sine that does not fit a sine
                ro.shown[key] = float("nan")
        ro.verdicts = verdicts
        if ok_f or ok_e:
            ro.history[round(omega, 6)] = (ro.forward_fit, ro.error_fit)
        if ok_f and ok_e:
            ro.status = f"measured over the last {ro.forward_fit.periods} period(s)"
        elif verdicts["error"] == "zero" and ok_f:
            ro.status = (f"measured over the last {ro.forward_fit.periods} period(s); error "
                         f"≈ 0 (below {ERROR_ZERO:g} of the signal): no error phase")
        else:
            bad = [k for k in ("forward", "error") if verdicts[k] != "measured"]
            fit = ro.forward_fit if bad[0] == "forward" else ro.error_fit
            why = {"zero": "signal ≈ 0", "not periodic": "not periodic at ω"}[verdicts[bad[0]]]
            if fit is not None and fit.reason:
                why = fit.reason
            ro.status = f"not measurable ({' and '.join(bad)}): {why}"
        return ro
