"""The dashboard's "AM (exact adjoint, windowed)" error mode.

:class:`LabTrainer` is a :class:`gle_core.adjoint.BPTTTrainer` (truncated BPTT: parameters fixed
during a window of TW a.u., one optimizer step per window from the window's exact gradient)
that also records the network states the views show (r, e, ε, ŭ, φ′ ...), so that the
dashboard can run it in place of the :class:`gle_core.Simulator` of the GLE and IE modes. It
exposes the few parts of the simulator's interface the app uses (``learn`` and ``lr`` as
settable attributes, ``probes`` with the same names and shapes, ``t``, ``run_steps``,
``reset``).
"""
from __future__ import annotations

import numpy as np

from gle_core.adjoint import BPTTTrainer
from gle_core.network import STATE_NAMES
from gle_core.probes import RingBuffer

#: learning rate per window = this × the GLE preset's rate per step (paper Fig. 5: GLE
#: 2e-4 per Euler step, AM 7e-2 per window of 3 a.u.)
AM_LR_FACTOR = 7e-2 / 2e-4
#: default window TW (a.u.) of the paper's AM student
AM_WINDOW = 3.0
_TRAINER_SIGNALS = ("t", "loss", "input", "output", "target", "W", "b", "tau_m", "tau_r")


class LabTrainer(BPTTTrainer):
    """A BPTT trainer that records like a :class:`~gle_core.Simulator` (``record_every`` 1).

    ``method`` is ``"exact"`` (reverse mode through the whole Euler step, exact for any γ).
    """

    def __init__(self, network, stimulus, teacher=None, *, record=(), history=8192,
                 window=AM_WINDOW, **kw):
        self._state_record = tuple(s for s in record if s in STATE_NAMES)
        super().__init__(network, stimulus, teacher, window=window, history=history,
                         record=tuple(s for s in record if s in _TRAINER_SIGNALS),
                         method="exact", **kw)

    # ``learn`` and ``lr`` are plain attributes of BPTTTrainer set by _set_learn/_set_lr;
    # as properties here, assigning them (as the app does for a Simulator) applies them.
    @property
    def learn(self):
        return self._learn_spec

    @learn.setter
    def learn(self, value):
        self._learn_spec = dict(value)
        if not getattr(self, "_applying", False):
            self._applying = True
            try:
                self._set_learn(value)
            finally:
                self._applying = False

    @property
    def lr(self):
        return self._lr_spec

    @lr.setter
    def lr(self, value):
        self._lr_spec = value
        if not getattr(self, "_applying", False):
            self._applying = True
            try:
                self._set_lr(value)
            finally:
                self._applying = False

    def set_window(self, window):
        """New TW (a.u.); a window already longer than that closes at once."""
        steps = max(1, int(round(window / self.network.dt)))
        self.window_steps = steps
        if self._tape is not None and len(self._tape) >= steps:
            self._update()

    def reset(self, seed=None):
        super().reset(seed)
        n = sum(self.network.layer_sizes[1:])
        for s in self._state_record:
            self.probes[s] = RingBuffer(self.history, (n,))

    def _record(self, t, x, out, y):
        super()._record(t, x, out, y)
        j = self.record_stream
        net = self.network
        for s in self._state_record:
            self.probes[s].append(np.concatenate([a[j] for a in getattr(net, s)]))
