"""Timing of gle_core.fourier (not a test).

Run:  python benchmarks/bench_fourier.py

Prints µs per call of ``measure_gain_phase`` for 1000 / 3000 / 10000 samples (the
dashboard calls it every frame on a sliding window), next to a plain ``np.linalg.lstsq`` fit of
the same model for comparison, and the cost of evaluating transfer functions on an ω grid.
"""
from __future__ import annotations

import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from gle_core.fourier import measure_gain_phase, transfer  # noqa: E402


def _best_us(fn, number):
    """Best of 5 repeats, in µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def _lstsq_fit(t, x, y, omega):
    """Reference: the same fit with np.linalg.lstsq over the whole window (no period selection)."""
    phi = (t - t[-1]) * omega
    A = np.column_stack((np.cos(phi), np.sin(phi), np.ones_like(t)))
    coef, *_ = np.linalg.lstsq(A, np.column_stack((x, y)), rcond=None)
    X = coef[0, 0] - 1j * coef[1, 0]
    Y = coef[0, 1] - 1j * coef[1, 1]
    return abs(Y / X), np.angle(Y / X)


def main():
    dt, omega = 0.01, 1.0
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}; dt = {dt} a.u., ω = {omega} rad/a.u. (period {2*np.pi/omega:.3f} a.u.)")
    print(f"{'samples':>8} {'measure_gain_phase':>20} {'lstsq reference':>17}")
    for n in (1000, 3000, 10000):
        t = 123.4 + dt * np.arange(n)
        x = 0.3 + np.cos(omega * t) + 1e-3 * rng.standard_normal(n)
        y = -1.0 + 0.7 * np.cos(omega * t - 0.69) + 1e-3 * rng.standard_normal(n)
        number = 2000 if n <= 3000 else 500
        us = _best_us(lambda: measure_gain_phase(t, x, y, omega), number)
        us_ref = _best_us(lambda: _lstsq_fit(t, x, y, omega), number // 4)
        print(f"{n:>8} {us:>17.1f} µs {us_ref:>14.1f} µs")

    w = np.logspace(-2, 2, 1000)
    for kind in ("forward", "gle_error", "am_adjoint"):
        us_c = _best_us(lambda: transfer(kind, w, 1.0, 0.1), 2000)
        us_d = _best_us(lambda: transfer(kind, w, 1.0, 0.1, dt=0.01), 2000)
        print(f"transfer({kind!r}) on 1000 ω: continuous {us_c:.1f} µs, discrete {us_d:.1f} µs")


if __name__ == "__main__":
    main()
