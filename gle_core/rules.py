"""Learning rules: the part of a :class:`~gle_core.simulator.Simulator` that turns a run into
parameter updates.

The simulator owns time, the network, the input and target, recording and divergence
checks; a rule decides how each Euler step is taken and when the optimizer steps, from which
gradient. Two kinds exist (docs/model.md, "Learning rules"):

* :class:`LocalRule` -- per-step local learning (paper Eqs. 5, 8 and 10): every step, the
  optimizer descends the local energy gradient ``-e r_{ℓ-1}ᵀ`` (and ``-e``, ``e ⊙ u̇``,
  ``-ε ⊙ u̇``) of that step. With prospective errors (``"gle"``, Eq. 7) this is GLE; with
  instantaneous errors (``"ie"``, e = ε) the plain-backprop baseline of paper Fig. 4.
* :class:`WindowedRule` -- the exact rule (``"am"``: truncated BPTT / the adjoint method of
  paper Eq. 9): parameters are fixed over a window of TW a.u., the network runs forward
  with the engine's own step, and at the window's end one optimizer step descends the
  window's exact gradient (:func:`gle_core.adjoint.backward_exact`, or the Eq. 9 adjoint
  :func:`gle_core.adjoint.backward_adjoint`). The state carries over; the gradient is cut
  at window ends.

A rule is switched on a running simulator with :meth:`Simulator.set_rule`.
"""
from __future__ import annotations

import numbers

import numpy as np

from .adjoint import (METHODS, WindowTape, backward_adjoint, backward_exact,
                      energy_loss_scale)
from .errors import GLEParameterError
from .network import ERROR_MODES

__all__ = ["LearningRule", "LocalRule", "WindowedRule", "RULES", "METHODS", "make_rule"]

#: rule names accepted by :func:`make_rule` (``"gle"``, ``"ie"``: local; ``"am"``: windowed)
RULES = ERROR_MODES + ("am",)


class LearningRule:
    """Base class. A rule is bound to one simulator at a time (:meth:`bind`).

    The simulator's loop calls, for every step, ``out = rule.step(net, x, y, learning)``
    (one Euler step of the student; ``learning`` tells whether learning is on at this step)
    and then ``rule.after_step(learning)`` (optimizer steps, if any).
    """

    #: ``True`` for rules whose updates come once per window
    windowed = False

    def __init__(self):
        self.sim = None

    def bind(self, sim):
        """Attach to ``sim`` (called by :meth:`Simulator.set_rule`)."""
        self.sim = sim

    def reset(self):
        """Forget everything gathered since the last update (called on reset and switch)."""

    def step(self, net, x, y, learning):
        """One Euler step of the student; returns its output (paper Eq. 6, 7)."""
        return net.step(x, y)

    def after_step(self, learning):
        """Apply the optimizer after a step, if this rule updates now."""

    @property
    def name(self):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


class LocalRule(LearningRule):
    """Per-step local learning from the last step's energy gradient (paper Eqs. 5, 8).

    Parameters
    ----------
    error_mode : {"gle", "ie"}, optional
        Set on the network when bound: prospective errors e = D⁺_τm I⁻_τr{ε} (``"gle"``,
        paper Eq. 7) or instantaneous errors e = ε (``"ie"``). ``None``: keep the network's.
    """

    def __init__(self, error_mode=None):
        super().__init__()
        if error_mode is not None and error_mode not in ERROR_MODES:
            raise GLEParameterError("error_mode", error_mode, "one of " + ", ".join(ERROR_MODES))
        self.error_mode = error_mode

    def bind(self, sim):
        super().bind(sim)
        if self.error_mode is not None:
            sim.network.set_error_mode(self.error_mode)

    @property
    def name(self):
        """``"gle"`` or ``"ie"``: the network's error mode (it may be switched directly)."""
        return self.sim.network.error_mode if self.sim is not None else (self.error_mode or
                                                                          "gle")

    def after_step(self, learning):
        if learning:
            self.sim.apply_gradients(self.sim.network.local_gradients)


class WindowedRule(LearningRule):
    """Truncated BPTT / windowed adjoint method: one optimizer step per window of TW a.u.

    Parameters
    ----------
    window : float
        TW (a.u.), rounded to whole steps (at least one).
    method : {"exact", "adjoint"}
        ``"exact"``: reverse mode through the whole Euler step including the error neurons
        (exact for any γ). ``"adjoint"``: the paper's Eq. 9 (exact for γ = 0; it leaves out
        the error's feedback into the soma otherwise).
    loss_scale : "energy" or float
        κ of the descended cost ``J = κ Σ_k loss_k``; ``"energy"`` is
        :func:`gle_core.adjoint.energy_loss_scale` (β dt n_out / 2 for MSE), which puts the
        adjoint in the GLE error's units so that learning rates compare.
    keep_adjoint : bool
        Keep λ and α of the last window in :attr:`last_window` (for display).

    Attributes
    ----------
    window_steps : int
    n_updates : int
        Windows closed since the last reset.
    last_gradients : dict or None
        ``{kind: [κ dL/dθ per layer]}`` of the last window.
    last_window_loss : float
        L of the last window.
    last_window : WindowGradients or None
        With ``keep_adjoint``.
    peak_tape_bytes : int
        Memory of one window's record (constant in run length).
    """

    windowed = True
    name = "am"

    def __init__(self, window=3.0, method="exact", loss_scale="energy", keep_adjoint=False):
        super().__init__()
        if isinstance(window, bool) or not isinstance(window, numbers.Real) \
                or not np.isfinite(window) or window <= 0:
            raise GLEParameterError("window", window, "a duration > 0 a.u.")
        self.window = float(window)
        if method not in METHODS:
            raise GLEParameterError("method", method, "one of " + ", ".join(METHODS))
        self.method = method
        if not (loss_scale == "energy" or (isinstance(loss_scale, numbers.Real)
                                           and not isinstance(loss_scale, bool)
                                           and np.isfinite(loss_scale))):
            raise GLEParameterError("loss_scale", loss_scale, "'energy' or a finite number")
        self._loss_scale = loss_scale
        self.keep_adjoint = bool(keep_adjoint)
        self.window_steps = 1
        self.reset()

    def bind(self, sim):
        super().bind(sim)
        dt = sim.network.dt
        steps = int(round(self.window / dt))
        if steps < 1:
            raise GLEParameterError("window", self.window, f"a duration ≥ dt = {dt} a.u.")
        self.window_steps = steps
        self.reset()

    @property
    def loss_scale(self):
        """κ (the energy scale of the bound network unless a number was given)."""
        if self._loss_scale == "energy":
            return energy_loss_scale(self.sim.network) if self.sim is not None else np.nan
        return float(self._loss_scale)

    def reset(self):
        self.tape = None
        self.kernel_tape = None        # where the compiled path records the open window
        self.n_updates = 0
        self.last_gradients = None
        self.last_window = None
        self.last_window_loss = np.nan
        self.peak_tape_bytes = 0

    def set_window(self, window):
        """New TW (a.u.); a window already at least that long closes at once."""
        if isinstance(window, bool) or not isinstance(window, numbers.Real) \
                or not np.isfinite(window) or window <= 0:
            raise GLEParameterError("window", window, "a duration > 0 a.u.")
        self.window = float(window)
        self.window_steps = max(1, int(round(window / self.sim.network.dt)))
        if self.tape is not None and len(self.tape) >= self.window_steps:
            self.update()

    def step(self, net, x, y, learning):
        if self.tape is None and learning:
            # the error path's adjoint is exactly zero for γ = 0 (and Eq. 9 ignores it)
            self.tape = WindowTape(net, error_path=self.method == "exact" and net.gamma != 0.0)
        if self.tape is not None:
            return self.tape.step(x, y)
        return net.step(x, y)

    def after_step(self, learning):
        if self.tape is not None and len(self.tape) >= self.window_steps:
            self.update()

    def gradients(self, tape=None):
        """dL/dθ (unscaled) of a recorded window (default: the current one)."""
        tape = self.tape if tape is None else tape
        if self.method == "exact":
            return backward_exact(tape, return_adjoint=self.keep_adjoint)
        return backward_adjoint(tape, return_adjoint=self.keep_adjoint)

    def update(self):
        """Close the current window: one optimizer step from its gradient."""
        tape = self.tape
        if self.peak_tape_bytes == 0:   # every window holds the same arrays: measure once
            self.peak_tape_bytes = tape.nbytes
        res = self.gradients(tape)
        scaled = res.scaled(self.loss_scale)
        self.sim.apply_gradients(lambda kind, layer: scaled[kind][layer])
        self.n_updates += 1
        self.last_gradients = scaled
        self.last_window_loss = res.loss
        self.last_window = res if self.keep_adjoint else None
        self.tape = self.kernel_tape = None

    def __repr__(self):
        return (f"WindowedRule(window={self.window!r}, method={self.method!r}, "
                f"loss_scale={self._loss_scale!r})")


def make_rule(rule, **kwargs):
    """A rule from a name (``"gle"``, ``"ie"``, ``"am"``) or a :class:`LearningRule`.

    ``kwargs`` go to :class:`WindowedRule` for ``"am"`` (``window``, ``method``,
    ``loss_scale``, ``keep_adjoint``).
    """
    if isinstance(rule, LearningRule):
        if kwargs:
            raise GLEParameterError("rule options", sorted(kwargs), "none with a rule object")
        return rule
    if rule in ERROR_MODES:
        if kwargs:
            raise GLEParameterError("rule options", sorted(kwargs), f"none for rule {rule!r}")
        return LocalRule(rule)
    if rule == "am":
        return WindowedRule(**kwargs)
    raise GLEParameterError("rule", rule, "one of " + ", ".join(RULES) + " or a LearningRule")
