"""Recorded history of a session (for the CSV export) and the GLE / exact-gradient alignment.

Pure numpy (no Panel): :class:`LabState` feeds both from the simulator's probes.

* :class:`History`: every signal the export holds (input, rates, e, ε, teacher rates, loss,
  W, b, τm, τr) from t = 0, in a buffer of :data:`HISTORY_ROWS` rows. When it is full, every
  other row is dropped and the sampling interval doubles, so memory stays bounded
  (``HISTORY_ROWS × columns × 8`` bytes: 1.2 MB for the chain, 3 MB for the small network)
  and the whole run stays covered, ever more coarsely: after T a.u. there are between
  ``HISTORY_ROWS / 2`` and ``HISTORY_ROWS`` rows, one every ``dt · 2^k`` a.u. with
  ``2^k ≥ T / (HISTORY_ROWS · dt)`` (dt = 0.01: full resolution for the first 81.9 a.u., one
  row per 0.16 a.u. after 1000 a.u.).
* :func:`gradient_alignment`: over a window of the recorded run, the cosine similarity between
  the weight update GLE makes (Σ_k e_k r_{k}ᵀ, paper Eq. 8, before the optimizer) and the exact
  gradient of the window's loss (reverse mode through the same Euler steps,
  :func:`gle_core.adjoint.exact_gradients`), both at the window's parameters.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gle_core.adjoint import exact_gradients

#: one worker thread (per process) computes alignments off the frame callback: a window costs
#: ~40 ms of CPU (~230 ms on a loaded 2-core machine), which would stall a frame
ALIGN_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gle-alignment")

#: rows kept by :class:`History` (then it halves its resolution)
HISTORY_ROWS = 8192


class History:
    """A decimating record of named columns (all rows the same length).

    Rows are offered once per simulation step (:meth:`extend`, a block of steps at a time); a
    row is kept when its step index is a multiple of :attr:`every`. Full: every other kept row
    is dropped and :attr:`every` doubles.
    """

    def __init__(self, columns, rows=HISTORY_ROWS):
        self.columns = list(columns)
        self.capacity = int(rows)
        self.data = np.full((self.capacity, len(self.columns)), np.nan)
        self.n = 0
        self.every = 1
        self.steps = 0            # rows offered so far (= simulation steps)

    def clear(self):
        self.n, self.every, self.steps = 0, 1, 0

    def extend(self, block):
        """Offer ``block`` (shape (k, columns)): rows of consecutive steps."""
        block = np.asarray(block, dtype=float)
        k = len(block)
        if k == 0:
            return
        idx = np.arange(self.steps, self.steps + k)
        self.steps += k
        keep = block[idx % self.every == 0]
        while len(keep):
            room = self.capacity - self.n
            if room == 0:
                self._halve()
                keep = keep[::2] if self.every > 1 else keep
                continue
            take = keep[:room]
            self.data[self.n:self.n + len(take)] = take
            self.n += len(take)
            keep = keep[len(take):]

    def _halve(self):
        # rows kept at step multiples of `every`; keep those at multiples of 2·every
        # (the first kept row is step 0: the even positions)
        kept = self.data[:self.n:2].copy()
        self.n = len(kept)
        self.data[:self.n] = kept
        self.data[self.n:] = np.nan
        self.every *= 2

    def rows(self):
        """The kept rows, oldest first (a view)."""
        return self.data[:self.n]

    @property
    def nbytes(self):
        return self.data.nbytes


def _stream(state, index, batch):
    """The state of batch stream ``index`` only (a batch-1 state)."""
    def pick(v):
        if isinstance(v, list):
            return [pick(a) for a in v]
        if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == batch:
            return v[index:index + 1].copy()
        return v
    return {k: pick(v) for k, v in state.items()}


def gradient_alignment(network, state, x, y):
    """Cosine similarity of GLE's weight update and the exact window gradient.

    Parameters
    ----------
    network : GLENetwork
        Supplies the parameters (held fixed over the window); not modified.
    state : dict
        The network's state (:meth:`GLENetwork.get_state`) before the window's first step,
        of any batch size: stream 0 is used.
    x : array, shape (K, n_in)
        Inputs of stream 0 at the window's K steps.
    y : array, shape (K, n_out)
        Targets of stream 0 at those steps.

    Returns
    -------
    float
        ``cos = ⟨ΔW_GLE, -∇_W L⟩ / (‖ΔW_GLE‖ ‖∇_W L‖)`` over all weights of all layers, where
        ``ΔW_GLE = Σ_k e_k r_{ℓ-1,k}ᵀ`` (paper Eq. 8; the local rule's update direction before
        the optimizer) and ``L = Σ_k loss_k`` (its exact gradient by reverse mode through the
        same Euler steps). NaN when either vanishes.
    """
    B = state["u"][0].shape[0]
    s0 = _stream(state, 0, B)
    x = np.asarray(x, dtype=float).reshape(len(x), 1, -1)
    y = np.asarray(y, dtype=float).reshape(len(y), 1, -1)
    exact = exact_gradients(network, x, y, state=s0)
    replay = network.copy()
    replay.set_state(s0)
    local = [np.zeros_like(W) for W in network.W]
    for k in range(len(x)):
        replay.step(x[k], y[k])
        for layer in range(len(local)):
            local[layer] -= replay.local_gradients("W", layer)    # = e rᵀ (ascent of -E)
    a = np.concatenate([g.ravel() for g in local])
    b = -np.concatenate([np.asarray(g).ravel() for g in exact.grads["W"]])
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if not (na > 0 and nb > 0 and np.isfinite(na) and np.isfinite(nb)):
        return float("nan")
    return float(a @ b / (na * nb))
