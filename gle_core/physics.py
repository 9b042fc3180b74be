"""Physics of a setting that views and diagnostics need: what a neuron is driven by, and
whether explicit Euler is stable for it (docs/model.md, "The discrete scheme").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import GLEParameterError
from .network import GLENetwork

__all__ = ["EulerStability", "euler_stability", "drive_trace"]


@dataclass(frozen=True)
class EulerStability:
    """How far explicit Euler is from instability for a network's soma dynamics.

    Attributes
    ----------
    ratio : float
        ``dt (1 + γβ) / min τm``: the Euler step times the fastest decay rate of a soma,
        whose leak the output error's feedback γ e ≈ γβ (y - r) strengthens (paper Eq. 6).
    tau_m : float
        The smallest τm (a.u.).
    loop : float
        γβ, the gain of the output error fed back into the soma.
    stable : bool
        ``ratio < 2``: explicit Euler of τ u̇ = -u (1 + γβ) + ... does not blow up.
    monotone : bool
        ``ratio < 1``: it does not oscillate either (the engine's recommended regime).
    """

    ratio: float
    tau_m: float
    loop: float
    stable: bool
    monotone: bool


def euler_stability(network, gamma=None, beta=None):
    """The :class:`EulerStability` of ``network`` (optionally with other γ, β).

    Notes
    -----
    Explicit Euler of τ ẏ = -a y + x multiplies y by (1 - a dt/τ) per step: stable for
    a dt/τ < 2, free of oscillation for a dt/τ ≤ 1 (docs/model.md, "Closed-form checks").
    For the soma with error feedback a ≈ 1 + γβ.
    """
    if not isinstance(network, GLENetwork):
        raise GLEParameterError("network", type(network).__name__, "a GLENetwork")
    g = network.gamma if gamma is None else float(gamma)
    b = network.beta if beta is None else float(beta)
    loop = g * b
    tau_min = min(float(np.min(t)) for t in network.tau_m)
    ratio = network.dt * (1.0 + loop) / tau_min
    return EulerStability(ratio=ratio, tau_m=tau_min, loop=loop, stable=ratio < 2.0,
                          monotone=ratio < 1.0)


def drive_trace(network, layer, neuron, inputs, rates, error):
    """The total drive ``W r_in + b + γ e`` one neuron received at each recorded step.

    Parameters
    ----------
    network : GLENetwork
        Supplies W, b, γ (their current values).
    layer, neuron : int
        0-based layer and the neuron's index in it.
    inputs : array, shape (K, n_in)
        The recorded input x_k (what a Simulator records as ``"input"``, every step).
    rates : array, shape (K, n_neurons)
        The recorded rates ``r`` after every step k (concatenated over layers).
    error : array, shape (K,)
        The neuron's recorded error e_k.

    Returns
    -------
    ndarray, shape (K,)
        The drive of step k. Layer ℓ > 0 reads layer ℓ-1's rate of the *previous* step
        (Jacobi order: all layers read start-of-step values), so sample k uses the rates
        recorded at k - 1; the first sample repeats the first recorded rates.
    """
    W, b = network.W[layer][neuron], network.b[layer][neuron]
    if layer == 0:
        r_in = np.asarray(inputs)
    else:
        lo = sum(network.layer_sizes[1:layer])
        r = np.asarray(rates)[:, lo:lo + network.layer_sizes[layer]]
        r_in = np.vstack([r[:1], r[:-1]])
    return r_in @ W + b + network.gamma * np.asarray(error)
