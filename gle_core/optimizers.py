"""Optimizers applied once per Euler step (docs/model.md "The discrete scheme" step 8).

Each optimizer descends a gradient ``grad`` (∂E/∂θ, as returned by
:meth:`gle_core.network.GLENetwork.local_gradients`) and updates the parameter array in
place. State (momentum, Adam moments) is kept per parameter key, e.g. ``("W", 0)``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .errors import GLEParameterError

__all__ = ["SGD", "Momentum", "Adam", "make_optimizer", "OPTIMIZERS"]


def _check_lr(lr):
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not np.isfinite(lr) \
            or lr < 0:
        raise GLEParameterError("lr", lr, "a finite number ≥ 0")
    return float(lr)


class SGD:
    """Plain gradient descent θ ← θ - lr·g (the paper's Eq. 5 with η = lr/dt·dt)."""

    name = "sgd"

    def __init__(self, lr=1e-3):
        self.lr = _check_lr(lr)
        self.state = {}

    def reset(self):
        """Forget all internal state (moments)."""
        self.state.clear()

    def update(self, key, param, grad):
        param -= self.lr * grad


class Momentum(SGD):
    """SGD with (heavy-ball) momentum: m ← μ m + g, θ ← θ - lr·m (PyTorch convention)."""

    name = "momentum"

    def __init__(self, lr=1e-3, momentum=0.9):
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise GLEParameterError("momentum", momentum, "[0, 1)")
        self.momentum = float(momentum)

    def update(self, key, param, grad):
        m = self.state.get(key)
        if m is None:
            m = self.state[key] = grad.copy()
        else:
            m *= self.momentum
            m += grad
        param -= self.lr * m


class Adam(SGD):
    """Adam with bias correction, betas (0.9, 0.999), ε = 1e-8 (docs/model.md "The discrete scheme"
    step 8)."""

    name = "adam"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(lr)
        self.b1, self.b2 = (float(b) for b in betas)
        if not (0 <= self.b1 < 1 and 0 <= self.b2 < 1):
            raise GLEParameterError("betas", betas, "two numbers in [0, 1)")
        self.eps = float(eps)

    def update(self, key, param, grad):
        st = self.state.get(key)
        if st is None:
            st = self.state[key] = [np.zeros_like(grad), np.zeros_like(grad), 0]
        m, v, _ = st
        st[2] += 1
        k = st[2]
        m *= self.b1
        m += (1 - self.b1) * grad
        v *= self.b2
        v += (1 - self.b2) * grad * grad
        step = self.lr / (1 - self.b1 ** k)
        param -= step * m / (np.sqrt(v / (1 - self.b2 ** k)) + self.eps)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name, lr, **kwargs):
    """Build an optimizer by name: ``"sgd"``, ``"momentum"`` or ``"adam"``."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise GLEParameterError("optimizer", name, "one of " + ", ".join(OPTIMIZERS))
    return OPTIMIZERS[name](lr, **kwargs)
