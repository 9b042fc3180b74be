"""Input streams r_0(t) (and targets) for GLE networks.

Every stimulus maps an array of times ``t`` (a.u.) to an array of shape
``(len(t), batch, n_channels)``, so a simulator can sample a whole block of steps with a
few vectorised calls. Random parts (per-stream shifts) are drawn in :meth:`reset` from a
seed, so a run is reproducible.
"""
from __future__ import annotations

import numbers

import numpy as np
from scipy.special import ndtr

from .errors import GLEParameterError

__all__ = ["Stimulus", "Sine", "SumOfSines", "SmoothedSquare", "Constant", "ArrayInput",
           "CallableInput", "as_stimulus"]


def _num(name, value, low=-np.inf, high=np.inf, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise GLEParameterError(name, value, f"a finite number in [{low}, {high}]")
    if (value <= low if low_open else value < low) or value > high:
        lb = "(" if low_open else "["
        raise GLEParameterError(name, value, f"{lb}{low}, {high}]")
    return float(value)


class Stimulus:
    """Base class: a deterministic function of time, the same for every stream."""

    n_channels = 1

    def reset(self, batch_size=1, seed=None):
        """Prepare ``batch_size`` streams; draw random per-stream parts from ``seed``."""
        self.batch_size = int(batch_size)

    def values(self, t):
        """Values at times ``t`` (1-D) for one stream: shape (len(t), n_channels)."""
        raise NotImplementedError

    def sample(self, t):
        """Values at times ``t`` for every stream: shape (len(t), batch, n_channels)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        v = self.values(t)
        return np.broadcast_to(v[:, None, :], (len(t), getattr(self, "batch_size", 1),
                                               self.n_channels))

    def __call__(self, t):
        return self.sample(t)

    #: a table of one period is built only if it has at most this many values
    MAX_TABLE = 1 << 22

    def repeat_period(self):
        """The period (a.u.) if the stimulus is periodic in time for every stream, else None."""
        return None

    def step_table(self, dt):
        """One period sampled at the steps ``t_k = k dt``, if it is a whole number of steps.

        Returns ``None`` or an array ``table`` of shape ``(n, batch, n_channels)`` such that
        the stimulus at step ``k`` is ``table[k % n]`` (built once, so that a periodic
        stimulus costs a lookup per step instead of an evaluation). Row ``k < n`` is
        :meth:`sample` at ``k dt`` exactly; later periods repeat it (they differ from a
        direct evaluation at ``k dt`` only by the rounding of ``k dt``).
        """
        P = self.repeat_period()
        if P is None:
            return None
        n = int(round(P / dt))
        B = getattr(self, "batch_size", 1)
        if n < 1 or abs(n * dt - P) > 1e-9 * P or n * B * self.n_channels > self.MAX_TABLE:
            return None
        return np.ascontiguousarray(self.sample(np.arange(n) * dt), dtype=float)


class Sine(Stimulus):
    """x(t) = offset + amplitude · sin(ω t + phase).

    Parameters
    ----------
    omega : float
        Angular frequency (rad/a.u.), > 0.
    amplitude : float
    phase : float
        Phase (rad).
    offset : float
    """

    def __init__(self, omega=1.0, amplitude=1.0, phase=0.0, offset=0.0):
        self.omega = _num("omega", omega, 0, np.inf, low_open=True)
        self.amplitude = _num("amplitude", amplitude)
        self.phase = _num("phase", phase)
        self.offset = _num("offset", offset)

    def values(self, t):
        return (self.offset + self.amplitude * np.sin(self.omega * t + self.phase))[:, None]

    def repeat_period(self):
        return 2 * np.pi / self.omega


class SumOfSines(Stimulus):
    """x(t) = Σ_i a_i sin(ω_i t + φ_i) (paper Fig. 5: ω = 0.49, 1.07, 1.98)."""

    def __init__(self, omegas, amplitudes=1.0, phases=0.0):
        om = np.atleast_1d(np.asarray(omegas, dtype=float))
        if om.ndim != 1 or len(om) == 0 or not np.all(np.isfinite(om)) or np.any(om <= 0):
            raise GLEParameterError("omegas", omegas, "a non-empty list of finite numbers > 0")
        self.omegas = om
        self.amplitudes = np.broadcast_to(np.asarray(amplitudes, float), om.shape).copy()
        self.phases = np.broadcast_to(np.asarray(phases, float), om.shape).copy()

    def values(self, t):
        return (np.sin(np.outer(t, self.omegas) + self.phases) @ self.amplitudes)[:, None]


class SmoothedSquare(Stimulus):
    """A ±amplitude square wave smoothed by a Gaussian of width σ (paper Fig. 4 input).

    Parameters
    ----------
    period : float
        Period (a.u.).
    duty : float
        Fraction of the period at +amplitude, in (0, 1).
    sigma : float
        Standard deviation (a.u.) of the Gaussian smoothing kernel; 0 < σ ≤ period/4.
    amplitude : float
    max_shift : float
        Each stream is circularly shifted by an independent U(0, max_shift) delay (a.u.).

    Notes
    -----
    The convolution of the square wave with the Gaussian is exact: each rising edge at a
    contributes Φ((t - a)/σ), each falling edge at b contributes -Φ((t - b)/σ), with Φ the
    normal CDF; edges more than two periods away contribute < 1e-15 for σ ≤ period/4
    (edge pairs whose contribution is exactly 0 in double precision are skipped).
    """

    def __init__(self, period=4.0, duty=0.5, sigma=0.05, amplitude=1.0, max_shift=0.0):
        self.period = _num("period", period, 0, np.inf, low_open=True)
        self.duty = _num("duty", duty, 0, 1, low_open=True)
        if self.duty >= 1:
            raise GLEParameterError("duty", duty, "(0, 1)")
        self.sigma = _num("sigma", sigma, 0, self.period / 4, low_open=True)
        self.amplitude = _num("amplitude", amplitude)
        self.max_shift = _num("max_shift", max_shift, 0, np.inf)
        self.shifts = np.zeros(1)

    def reset(self, batch_size=1, seed=None):
        super().reset(batch_size, seed)
        rng = np.random.default_rng(seed)
        self.shifts = rng.uniform(0.0, self.max_shift, batch_size) if self.max_shift > 0 \
            else np.zeros(batch_size)

    def _wave(self, tau):
        P, D, s = self.period, self.duty * self.period, self.sigma
        k0 = np.floor(tau / P)
        acc = np.zeros_like(tau)
        phase = tau - k0 * P
        lo, hi = float(phase.min(initial=0.0)), float(phase.max(initial=0.0))
        for dk in (-2, -1, 0, 1, 2):
            # skip edge pairs that contribute exactly 0 here (ndtr(±40) is exactly 1 / 0)
            if lo - dk * P - D >= 40 * s or hi - dk * P <= -40 * s:
                continue
            a = (k0 + dk) * P
            acc += ndtr((tau - a) / s) - ndtr((tau - a - D) / s)
        return self.amplitude * (2.0 * acc - 1.0)

    def values(self, t):
        return self._wave(np.asarray(t, float))[:, None]

    def repeat_period(self):
        return self.period

    def sample(self, t):
        t = np.atleast_1d(np.asarray(t, dtype=float))
        shifts = self.shifts if len(self.shifts) == getattr(self, "batch_size", 1) \
            else np.zeros(getattr(self, "batch_size", 1))
        return self._wave(t[:, None] - shifts[None, :])[:, :, None]


class Constant(Stimulus):
    """x(t) = value (one number, or one per channel)."""

    def __init__(self, value=1.0):
        v = np.atleast_1d(np.asarray(value, dtype=float))
        if v.ndim != 1 or not np.all(np.isfinite(v)):
            raise GLEParameterError("value", value, "finite number(s)")
        self.value = v
        self.n_channels = len(v)

    def values(self, t):
        return np.broadcast_to(self.value, (len(t), self.n_channels))

    def step_table(self, dt):
        return np.ascontiguousarray(self.sample(np.zeros(1)), dtype=float)


class ArrayInput(Stimulus):
    """Samples from a user array, one row per Euler step, repeated periodically.

    Parameters
    ----------
    data : array
        Shape (n_steps,), (n_steps, n_channels) or (n_steps, batch, n_channels).
    dt : float
        Time between rows (a.u.): the simulator's dt.
    """

    def __init__(self, data, dt):
        arr = np.asarray(data, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim == 2:
            arr = arr[:, None, :]
        if arr.ndim != 3 or len(arr) == 0:
            raise GLEParameterError("data", f"shape {np.shape(data)}",
                                    "(n_steps,), (n_steps, n) or (n_steps, batch, n)")
        if not np.all(np.isfinite(arr)):
            raise GLEParameterError("data", "non-finite values", "finite numbers")
        self.data = arr
        self.dt = _num("dt", dt, 0, np.inf, low_open=True)
        self.n_channels = arr.shape[2]

    def step_table(self, dt):
        # rows are read at k = rint(t / self.dt); at the simulator's own dt that is row k
        if dt != self.dt or len(self.data) * getattr(self, "batch_size", 1) * \
                self.n_channels > self.MAX_TABLE:
            return None
        return np.ascontiguousarray(self.sample(np.arange(len(self.data)) * dt), dtype=float)

    def sample(self, t):
        t = np.atleast_1d(np.asarray(t, dtype=float))
        k = np.rint(t / self.dt).astype(np.int64) % len(self.data)
        B = getattr(self, "batch_size", 1)
        out = self.data[k]
        if out.shape[1] not in (1, B):
            raise GLEParameterError("data", f"batch dimension {out.shape[1]}", f"1 or {B}")
        return np.broadcast_to(out, (len(t), B, self.n_channels))


class CallableInput(Stimulus):
    """Wraps a user function ``f(t) -> value``; vectorised over t if it can be."""

    def __init__(self, func, n_channels=1):
        if not callable(func):
            raise GLEParameterError("func", func, "a callable f(t)")
        self.func = func
        self.n_channels = int(n_channels)

    def sample(self, t):
        t = np.atleast_1d(np.asarray(t, dtype=float))
        B = getattr(self, "batch_size", 1)
        try:
            v = np.asarray(self.func(t), dtype=float)
            if v.shape[:1] != t.shape:
                raise ValueError
        except Exception:
            v = np.array([np.asarray(self.func(ti), dtype=float) for ti in t])
        v = v.reshape(len(t), -1, self.n_channels) if v.ndim > 1 else v[:, None, None]
        if not np.all(np.isfinite(v)):
            bad = int(np.argmin(np.isfinite(v).reshape(len(t), -1).all(axis=1)))
            raise GLEParameterError("input", f"non-finite value at t = {t[bad]:.4g}",
                                    "finite numbers")
        return np.broadcast_to(v, (len(t), B, self.n_channels))


def as_stimulus(obj, dt=None):
    """A Stimulus from a Stimulus, a number, an array (needs ``dt``) or a callable."""
    if isinstance(obj, Stimulus):
        return obj
    if isinstance(obj, numbers.Real):
        return Constant(obj)
    if callable(obj):
        return CallableInput(obj)
    if dt is None:
        raise GLEParameterError("dt", dt, "the step of the array's rows")
    return ArrayInput(obj, dt)
