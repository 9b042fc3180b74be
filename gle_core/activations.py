"""Neuronal transfer functions φ, their derivatives φ′ and φ″ (docs/model.md, "Neurons").

Every activation is a pair ``(phi, phi_prime)`` of numpy functions acting element-wise
on the prospective voltage ŭ. They are written to be overflow-free for any finite input,
so that the engine can run under ``np.errstate(over="raise", invalid="raise")`` and treat
any floating-point exception as a genuine divergence.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .errors import GLEParameterError

__all__ = ["ACTIVATIONS", "SECOND_DERIVATIVES", "get_activation"]


def _linear(x):
    return x.copy()


def _linear_prime(x):
    return np.ones_like(x)


def _tanh_prime(x):
    t = np.tanh(x)
    return 1.0 - t * t


def _sigmoid_prime(x):
    s = expit(x)
    return s * (1.0 - s)


def _softplus(x):
    # log(1 + e^x) without overflow
    return np.logaddexp(0.0, x)


def _relu(x):
    return np.maximum(x, 0.0)


def _relu_prime(x):
    return (x > 0.0).astype(x.dtype)


def _hard_sigmoid(x):
    # PyTorch convention: relu6(x + 3) / 6
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _hard_sigmoid_prime(x):
    return ((x > -3.0) & (x < 3.0)).astype(x.dtype) / 6.0


def _hard_tanh(x):
    return np.clip(x, -1.0, 1.0)


def _hard_tanh_prime(x):
    return ((x > -1.0) & (x < 1.0)).astype(x.dtype)


#: name -> (φ, φ′). φ′ of softplus is the logistic sigmoid.
ACTIVATIONS = {
    "linear": (_linear, _linear_prime),
    "tanh": (np.tanh, _tanh_prime),
    "sigmoid": (expit, _sigmoid_prime),
    "softplus": (_softplus, expit),
    "relu": (_relu, _relu_prime),
    "hard_sigmoid": (_hard_sigmoid, _hard_sigmoid_prime),
    "hard_tanh": (_hard_tanh, _hard_tanh_prime),
}


def _zero_dd(x):
    return np.zeros_like(x)


def _tanh_dd(x):
    t = np.tanh(x)
    return -2.0 * t * (1.0 - t * t)


def _sigmoid_dd(x):
    s = expit(x)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


def _softplus_dd(x):
    s = expit(x)
    return s * (1.0 - s)


#: name -> φ″. The exact gradient through a step differentiates φ′ (for γ ≠ 0 it enters the
#: forward pass through ε = φ′(ŭ) ⊙ d). Piecewise-linear activations have φ″ = 0 almost
#: everywhere (their kinks are measure-zero events of a trajectory); :data:`ZERO_CURVATURE`
#: names them so that callers can skip the product.
SECOND_DERIVATIVES = {
    "linear": _zero_dd,
    "tanh": _tanh_dd,
    "sigmoid": _sigmoid_dd,
    "softplus": _softplus_dd,
    "relu": _zero_dd,
    "hard_sigmoid": _zero_dd,
    "hard_tanh": _zero_dd,
}
ZERO_CURVATURE = frozenset(k for k, f in SECOND_DERIVATIVES.items() if f is _zero_dd)


def get_activation(name: str):
    """Return ``(phi, phi_prime)`` for an activation name.

    Raises
    ------
    GLEParameterError
        If ``name`` is not one of :data:`ACTIVATIONS`.
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise GLEParameterError("activation", name, "one of " + ", ".join(ACTIVATIONS)) from None
