"""Learning-rate schedules applied between epochs (a hook for any trainer).

A schedule holds the current learning rate; the trainer calls :meth:`ReduceOnPlateau.step`
with the epoch's validation loss and sets the returned rate on its simulator
(``sim.lr = schedule.step(val_loss)``). Its whole state is :meth:`state_dict`, so it is
checkpointed with the run.
"""
from __future__ import annotations

import math
import numbers

from .errors import GLEParameterError

__all__ = ["ReduceOnPlateau", "Constant", "SCHEDULES", "make_schedule"]


def _positive(name, value, high=math.inf, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0 or value > high \
            or (high_open and value >= high):
        raise GLEParameterError(name, value, f"a finite number in (0, {high}"
                                + (")" if high_open else "]"))
    return float(value)


class Constant:
    """A fixed learning rate."""

    name = "constant"

    def __init__(self, lr=1e-3):
        self.lr = _positive("lr", lr)

    def step(self, val_loss):
        return self.lr

    def state_dict(self):
        return {"name": self.name, "lr": self.lr}

    def load_state_dict(self, state):
        self.lr = float(state["lr"])


class ReduceOnPlateau(Constant):
    """Multiply the rate by ``factor`` once the validation loss has stopped improving.

    The paper's MNIST-1D protocol halves the rate "when the validation loss has not improved
    for 2 epochs". This follows the semantics of the scheduler such protocols are commonly
    run with (PyTorch's ``ReduceLROnPlateau(factor=0.5, patience=2)``, mode "min",
    relative threshold 1e-4, no cooldown): an epoch improves when its loss is below
    ``best · (1 - threshold)``; ``patience`` epochs without improvement are tolerated and
    the rate is reduced at the next one, after which the count starts again.

    Parameters
    ----------
    lr : float
        Initial learning rate.
    factor : float
        In (0, 1): the rate is multiplied by it at a plateau.
    patience : int
        Number of consecutive epochs without improvement that are tolerated; the rate is
        reduced at the end of the ``patience + 1``-th.
    threshold : float
        Relative improvement that counts, in [0, 1).
    min_lr : float
        The rate never goes below this.

    Notes
    -----
    A stricter reading (halve at the end of the 2nd epoch without a strictly better loss)
    was tried on the 15k network: the noisy validation loss halved the rate 5 times in 18
    epochs (3e-5 at epoch 18, accuracy stalled near 50 %), far faster than the published
    curves allow (docs/mnist1d.md).
    """

    name = "plateau"

    def __init__(self, lr=1e-3, factor=0.5, patience=2, threshold=1e-4, min_lr=0.0):
        super().__init__(lr)
        self.factor = _positive("factor", factor, 1.0, high_open=True)
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) \
                or patience < 1:
            raise GLEParameterError("patience", patience, "an integer ≥ 1")
        self.patience = int(patience)
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
                or not 0 <= threshold < 1:
            raise GLEParameterError("threshold", threshold, "a number in [0, 1)")
        self.threshold = float(threshold)
        if isinstance(min_lr, bool) or not isinstance(min_lr, numbers.Real) or min_lr < 0:
            raise GLEParameterError("min_lr", min_lr, "a number ≥ 0")
        self.min_lr = float(min_lr)
        self.best = math.inf
        self.bad_epochs = 0

    def step(self, val_loss):
        """Record one epoch's validation loss; returns the rate for the next epoch."""
        val_loss = float(val_loss)
        if val_loss < self.best * (1.0 - self.threshold):
            self.best = val_loss
            self.bad_epochs = 0
        else:
            # a NaN loss counts as no improvement
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.lr = max(self.lr * self.factor, self.min_lr)
                self.bad_epochs = 0
        return self.lr

    def state_dict(self):
        return {"name": self.name, "lr": self.lr, "best": self.best,
                "bad_epochs": self.bad_epochs, "factor": self.factor,
                "patience": self.patience, "threshold": self.threshold,
                "min_lr": self.min_lr}

    def load_state_dict(self, state):
        self.lr = float(state["lr"])
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


SCHEDULES = {"plateau": ReduceOnPlateau, "constant": Constant}


def make_schedule(name, lr, **kwargs):
    """A schedule by name: ``"plateau"`` or ``"constant"``."""
    try:
        cls = SCHEDULES[name]
    except (KeyError, TypeError):
        raise GLEParameterError("schedule", name, "one of " + ", ".join(SCHEDULES)) from None
    return cls(lr, **kwargs)
