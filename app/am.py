"""Settings of the dashboard's "AM (exact adjoint, windowed)" error mode.

The AM mode runs the same :class:`gle_core.Simulator` as the GLE and IE modes with the
windowed exact learning rule (:class:`gle_core.rules.WindowedRule`: truncated BPTT,
parameters fixed during a window of TW a.u., one optimizer step per window from the
window's exact gradient), switched with ``sim.set_rule("am", window=TW)``.
"""
from __future__ import annotations

#: learning rate per window = this × the GLE preset's rate per step (paper Fig. 5: GLE
#: 2e-4 per Euler step, AM 7e-2 per window of 3 a.u.)
AM_LR_FACTOR = 7e-2 / 2e-4
#: default window TW (a.u.) of the paper's AM student
AM_WINDOW = 3.0
#: gradient of the dashboard's AM mode: reverse mode through the whole Euler step (exact
#: for any γ, including the error neurons' feedback into the soma)
AM_METHOD = "exact"
