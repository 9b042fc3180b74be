"""Exact gradients of the discrete GLE scheme: reverse mode, truncated BPTT, the adjoint method.

GLE (paper Eq. 10) is an *online approximation* of the adjoint method (AM, paper Eq. 9) /
backpropagation through time (BPTT). This module computes the quantity GLE approximates, so the
two can be compared on the same run (docs/model.md "Exact gradients", check 10; paper Eqs. 9-13).

Window cost
-----------
For a window of ``K`` Euler steps ``k = 0..K-1`` (inputs ``x_k``, targets ``y_k``, parameters θ
fixed during the window, the network's state at the window start taken as given) the window
loss is

    L = Σ_{k=0}^{K-1} loss_k,

where ``loss_k`` is the engine's per-step loss (:meth:`GLENetwork.loss_value`) of the output
*returned by* step ``k`` (the output layer's start-of-step rate):

* MSE: ``loss_k = mean over batch and outputs of (y_k - r_k)²``, i.e.
  ``(1/(B n_out)) Σ_b Σ_i (y - r)²`` -- no factor ½, no β;
* cross-entropy: ``loss_k = (1/B) Σ_b -Σ_i y_i log softmax(r)_i``.

:func:`exact_gradients` returns ``dL/dθ`` for θ = W, b, τm, τr of every layer (units: loss per
unit of θ; L is dimensionless, W and b in rate units, τ in a.u.). Training (:class:`BPTTTrainer`)
descends a *scaled* cost ``J = κ L``; the default ``κ = β dt n_out/2`` (MSE) or ``κ = β dt``
(cross-entropy) makes ``J ≈ β ∫ C dt`` with ``C`` the cost whose negative gradient is the output
nudging ``g`` that drives GLE (docs/model.md "The network": ``g = β (y - r)`` is
``-β ∂/∂r ½‖y - r‖²``), so that the adjoint ``λ`` below and the GLE error ``e`` are in the same
units and learning rates are comparable (:func:`energy_loss_scale`).

Exact reverse mode (docs/model.md "Exact gradients")
----------------------------------------------
:func:`record_window` advances the network with the engine's own :meth:`GLENetwork.step` (the
forward pass is therefore bit-for-bit the engine's, docs/model.md "The discrete scheme") and keeps
references to the arrays every step creates (memory ∝ window, never ∝ run). :func:`backward_exact`
then runs hand-written reverse-mode differentiation through every step, *including the error
neurons*: for γ ≠ 0 the error e feeds back into the soma (``u̇ = (s + γ e - u)/τm``), so ``dL/dθ``
also flows through ``ε = φ′(ŭ_old) ⊙ d_old``, the error neuron ``v``, the feedback
``W_{ℓ+1}ᵀ e_{ℓ+1}`` (W appears twice), ``φ′`` (needs φ″) and the output nudging ``g(r, y)``. This
is exact for any γ, error mode (GLE or IE), activation (φ″ = 0 almost everywhere for the
piecewise-linear ones), loss and batch size. For γ = 0 the error path cannot influence the rates,
its adjoint is exactly zero and it is skipped (not an approximation).

Continuous-time adjoint, paper Eq. 9 (docs/model.md "Exact gradients", the continuous adjoint)
------------------------------------------------------------------------
For γ = 0 the adjoint of the soma dynamics ``τm u̇ = -u + s``, ``ŭ = u + τr u̇`` is, per layer,

    λ_ℓ = I⁺_τm{ D⁻_τr{ α_ℓ } },    α_L = φ′(ŭ_L) ⊙ β (y - r_L),  α_ℓ = φ′(ŭ_ℓ) ⊙ W_{ℓ+1}ᵀ λ_{ℓ+1}

(paper Eq. 9; ``I⁺_τm D⁻_τr = (1 - iωτr)/(1 - iωτm)``, Eq. 11), integrated *backward* in time
from ``λ = 0`` at the window's end, and ``-dJ/dW_ℓ = Σ_k ⟨λ_k ⊗ r_{ℓ-1,k}⟩ dt`` (⟨·⟩: batch
mean). :func:`backward_adjoint` and :func:`adjoint_traces` integrate it with the *discrete*
adjoint of the Euler step (the transpose of the forward recursion, docs/model.md "Exact
gradients"): with ``a = dt/τm``, ``ρ = τr/τm`` and ``P`` the adjoint of the soma potential,

    λ_k = ρ α_k + a P_{k+1},    P_k = (1 - a) P_{k+1} + (1 - ρ) α_k,    P_K = 0,

and the one-dt Jacobi latency of the forward pass (docs/model.md "The discrete scheme") becomes a
one-dt *advance* going down: ``α_{ℓ,k} = φ′(ŭ_{ℓ,k}) ⊙ W_{ℓ+1}ᵀ λ_{ℓ+1,k+1}``,
``α_{L,k} = φ′(ŭ_{L,k}) ⊙ β(y_{k+1} - r_{L,k+1})``. For γ = 0 this equals the exact reverse mode to
rounding (tested); for γ ≠ 0 it is the paper's AM, which ignores the error's feedback into the
soma. Layer by layer (top down), each is one anti-causal filter over the whole window
(scipy.signal.lfilter on reversed time when the layer's neurons share τm and τr, a vectorised
backward loop otherwise).

Time axis of λ (for overlays with the GLE error e)
--------------------------------------------------
``λ_k`` is ``-(B/dt) κ ∂L/∂s_k`` with ``s_k = W r_{in,k} + b`` the drive of step ``k``: it is the
factor that multiplies ``r_{in,k}`` in the weight gradient, exactly as the GLE error ``e_k`` of
step ``k`` multiplies the same ``r_{in,k}`` in ``ΔW = η e r_inᵀ`` (docs/model.md "The discrete
scheme" step 5). ``λ_k`` is therefore placed at the time ``t_k`` at which
:class:`gle_core.simulator.Simulator` records ``e_k``. In the LE limit (τm = τr) at the output,
``λ_k = α_k``; GLE's ``ε`` lags it by one dt (the output error is formed from the start-of-step
rate), and each layer adds one dt of GLE latency and one dt of adjoint advance, so ``e`` of layer ℓ
lags ``λ`` by about ``2(L-ℓ)+1`` steps in addition to the operator phases (which are equal, paper
Eq. 13).

Training modes
--------------
:class:`BPTTTrainer` -- truncated BPTT / windowed AM: parameters fixed during a window of ``TW``
a.u., one optimizer step (reusing :mod:`gle_core.optimizers`) per window, state carried over,
gradient cut at the window ends. ``method="exact"`` (reverse mode, any γ) or ``"adjoint"``
(Eq. 9 form).

:data:`LAGNET_AM` / :func:`run_lagnet_am` -- the AM student of paper Fig. 5 (docs/model.md
"Published protocols").

This module imports only numpy and scipy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from scipy.special import softmax

from .activations import SECOND_DERIVATIVES, ZERO_CURVATURE
from .errors import GLEParameterError
from .network import STATE_ATTRIBUTES, GLENetwork

__all__ = [
    "SECOND_DERIVATIVES", "STATE_ATTRIBUTES", "get_state", "set_state", "energy_loss_scale",
    "WindowTape", "WindowGradients", "record_window", "backward_exact", "backward_adjoint",
    "exact_gradients", "adjoint_gradients", "adjoint_traces", "METHODS",
]

METHODS = ("exact", "adjoint")

# ----------------------------------------------------------------------------- state

def get_state(network):
    """A copy of the network's dynamic state (:meth:`GLENetwork.get_state`)."""
    return network.get_state()


def set_state(network, state):
    """Restore a state from :func:`get_state` (:meth:`GLENetwork.set_state`)."""
    network.set_state(state)


def energy_loss_scale(network):
    """κ such that ``J = κ Σ_k loss_k ≈ β ∫ C dt`` matches the GLE output nudging (a.u.).

    ``C = ½ Σ_i (y_i - r_i)²`` (batch mean) for MSE, whose ``-β ∂C/∂r = β (y - r)`` is the
    engine's ``g``; since ``loss_value`` averages over the ``n_out`` outputs and has no ½,
    ``κ = β dt n_out / 2``. Cross-entropy: ``κ = β dt``.
    """
    if network.loss == "mse":
        return network.beta * network.dt * network.layer_sizes[-1] / 2.0
    return network.beta * network.dt


def _lambda_factor(network, batch):
    """λ = -factor · ∂L/∂s  (factor = B κ / dt; see the module docstring)."""
    return batch * energy_loss_scale(network) / network.dt


# ----------------------------------------------------------------------------- tape


class WindowTape:
    """The forward record of one window: references to the arrays each engine step creates.

    :meth:`GLENetwork.step` builds new arrays for every state at every step (it never writes
    into the previous ones), so the tape keeps *references*: recording costs no copies and the
    memory held is that of the ``K`` steps' states (∝ window length, :attr:`nbytes`).

    Parameters
    ----------
    network : GLENetwork
        The network to advance; its current state is the window's initial state.
    error_path : bool, optional
        Also keep the error-neuron quantities (needed for the exact gradient when γ ≠ 0).
        Default: ``network.gamma != 0``.

    Attributes
    ----------
    steps : list of tuple
        Per step ``k``: ``(x_k, y_k, snapshot after step k)``.
    initial : tuple
        Snapshot of the state before step 0.
    losses : list of float
        ``loss_k`` (nan where the target is ``None``).
    t0 : float
        Time (a.u.) of step 0 (``network.steps * dt`` at the start).
    """

    _FWD = ("u_dot", "prospective_voltage", "r", "r_prime")
    _ERR = ("error", "inst_error", "error_state", "feedback", "output_drive")

    def __init__(self, network, error_path=None, initial=None):
        if not isinstance(network, GLENetwork):
            raise GLEParameterError("network", type(network).__name__, "a GLENetwork")
        self.network = network
        self.error_path = bool(network.gamma != 0.0) if error_path is None else bool(error_path)
        self._names = self._FWD + (self._ERR if self.error_path else ())
        self.initial = self._snapshot() if initial is None else tuple(initial)
        self.steps = []
        self.losses = []
        self.t0 = network.steps * network.dt
        self.error_mode = network.error_mode
        self.gamma = network.gamma

    def _snapshot(self):
        net = self.network
        return tuple(getattr(net, n) for n in self._names)

    def __len__(self):
        return len(self.steps)

    def step(self, x, y=None):
        """One engine step (:meth:`GLENetwork.step`) recorded; returns the step's output."""
        net = self.network
        if net.error_mode != self.error_mode or net.gamma != self.gamma:
            raise GLEParameterError("error_mode/gamma", (net.error_mode, net.gamma),
                                    "unchanged within a window")
        x = net.check_input(x)
        before = net.r[-1]
        out = net.step(x, y)
        if net.r[-1] is before:  # guard: the engine must not update states in place
            raise RuntimeError("GLENetwork.step updated its state in place; the tape needs "
                               "fresh arrays per step")
        self.losses.append(np.nan if y is None else net.loss_value(out, y))
        self.steps.append((x, y, self._snapshot()))
        return out

    @property
    def names(self):
        """The state attributes a snapshot holds, in order (``initial`` and every step's)."""
        return self._names

    def append(self, x, y, snapshot, loss):
        """Add a step taken elsewhere (the compiled kernel): its input, target (or None),
        the state after it (one value per :attr:`names`) and its loss."""
        self.steps.append((x, y, tuple(snapshot)))
        self.losses.append(loss)

    def t(self):
        """Times t_k = t0 + k dt (a.u.) of the recorded steps, shape (K,)."""
        return self.t0 + self.network.dt * np.arange(len(self.steps))

    @property
    def loss(self):
        """L = Σ_k loss_k over the window (steps without target count 0)."""
        return float(np.nansum(self.losses)) if self.losses else 0.0

    def _field(self, name):
        return self._names.index(name)

    def stacked(self, name, include_initial=False):
        """Per layer, the array ``name`` after every step stacked to shape (K, B, n_ℓ).

        With ``include_initial`` the initial value is prepended: shape (K+1, B, n_ℓ).
        """
        i = self._field(name)
        seq = ([self.initial[i]] if include_initial else []) + [s[2][i] for s in self.steps]
        return [np.stack([v[l] for v in seq]) for l in range(len(seq[0]))]

    @property
    def nbytes(self):
        """Bytes of the arrays the tape keeps alive (inputs, targets and states)."""
        seen, total = set(), 0

        def add(a):
            nonlocal total
            if isinstance(a, np.ndarray):
                while isinstance(a.base, np.ndarray):   # count the memory a view keeps alive
                    a = a.base
                if id(a) not in seen:
                    seen.add(id(a))
                    total += a.nbytes
            elif isinstance(a, (list, tuple)):
                for b in a:
                    add(b)

        for x, y, snap in self.steps:
            add(x)
            add(y)
            add(snap)
        return total


def record_window(network, x, y=None, error_path=None):
    """Advance ``network`` over a window with its own ``step``, recording a :class:`WindowTape`.

    Parameters
    ----------
    network : GLENetwork
        Advanced in place by ``K`` steps (its state at the call is the window's initial state).
    x : array, shape (K, batch, n_in)
        Inputs x_k (anything :meth:`GLENetwork.step` accepts per step).
    y : array or sequence, optional
        Targets y_k, shape (K, batch, n_out) for MSE or (K, batch) integer labels for
        cross-entropy; entries may be ``None``. ``None``: no targets.
    error_path : bool, optional
        See :class:`WindowTape`.
    """
    tape = WindowTape(network, error_path)
    for k in range(len(x)):
        tape.step(x[k], None if y is None else y[k])
    return tape


# ----------------------------------------------------------------------------- results


@dataclass
class WindowGradients:
    """Gradients of one window.

    Attributes
    ----------
    loss : float
        L = Σ_k loss_k (engine normalisation, see module docstring).
    grads : dict
        ``{kind: [dL/dθ per layer]}`` for kind in W, b, tau_m, tau_r; same shapes as the
        parameters. Units: per unit of θ (W, b: per rate unit; τ: per a.u.).
    t : ndarray, shape (K,)
        Times (a.u.) of the window's steps.
    adjoint : list of ndarray or None
        Per layer ``λ`` of shape (K, batch, n_ℓ) in error units (the GLE error's units:
        ``λ = -(B κ/dt) ∂L/∂s`` with κ = :func:`energy_loss_scale`), when requested.
    alpha : list of ndarray or None
        Per layer the instantaneous adjoint error ``α`` (same units; the AM analogue of ε).
    method : str
    """

    loss: float
    grads: dict
    t: np.ndarray
    adjoint: Optional[List[np.ndarray]] = None
    alpha: Optional[List[np.ndarray]] = None
    method: str = "exact"

    def scaled(self, factor):
        """The gradients times ``factor`` (e.g. κ), as a new ``{kind: [arrays]}`` dict."""
        return {k: [factor * g for g in v] for k, v in self.grads.items()}


def _check_dd(network):
    for a in network.activations:
        if a not in SECOND_DERIVATIVES:
            raise GLEParameterError("activation", a, "one with a known φ″: "
                                    + ", ".join(SECOND_DERIVATIVES),
                                    "the exact gradient for γ ≠ 0 differentiates φ′")


def _loss_grad(net, out, y):
    """∂loss_k/∂r_out for the engine's per-step loss (see :meth:`GLENetwork.loss_value`);
    ``out`` (B, n) or stacked steps (K, B, n) with ``y`` of the same leading shape."""
    B, n = out.shape[-2:]
    if net.loss == "mse":
        return (2.0 / (B * n)) * (out - y)
    yy = net.one_hot(y)
    p = softmax(out, axis=-1)
    return (p * yy.sum(axis=-1, keepdims=True) - yy) / B


def _drive_vjp(net, out, a_g):
    """Vector-Jacobian product of g(r) = output_error_drive(r, y) with a_g."""
    if net.loss == "mse":
        return -net.beta * a_g
    p = softmax(out, axis=-1)
    return -net.beta * p * (a_g - np.sum(a_g * p, axis=-1, keepdims=True))


# ----------------------------------------------------------------------------- exact reverse


def backward_exact(tape, return_adjoint=False):
    """Exact reverse-mode gradient of L = Σ_k loss_k through every recorded engine step.

    Differentiates the whole discrete step of docs/model.md "The discrete scheme" (soma,
    prospective voltage, rates, φ′, error neurons in GLE or IE mode, feedback ``W_{ℓ+1}ᵀ e_{ℓ+1}``
    and output nudging g), with the parameters as they are *now* (they must not have changed since
    recording).

    Parameters
    ----------
    tape : WindowTape
    return_adjoint : bool
        Also return ``λ_k = -(Bκ/dt) ∂L/∂s_k`` per layer, shape (K, batch, n_ℓ), on the time
        axis ``tape.t()`` (see the module docstring), and the corresponding ``α``.

    Returns
    -------
    WindowGradients
    """
    net = tape.network
    L, dt, gamma = net.n_layers, net.dt, tape.gamma
    gle = tape.error_mode == "gle"
    err = tape.error_path
    if gamma != 0.0 and not err:
        raise GLEParameterError("tape.error_path", False, "True when γ ≠ 0")
    if err:
        _check_dd(net)
    K = len(tape.steps)
    W, tms, trs = net.W, net.tau_m, net.tau_r
    dds = [None if a in ZERO_CURVATURE else SECOND_DERIVATIVES[a] for a in net.activations]
    iUD, iUH, iR, iRP = (tape._field(n) for n in ("u_dot", "prospective_voltage", "r",
                                                  "r_prime"))
    if err:
        iE, iEPS, iV, iFB, iG = (tape._field(n) for n in ("error", "inst_error", "error_state",
                                                          "feedback", "output_drive"))
    gW = [np.zeros_like(w) for w in W]
    gb = [np.zeros_like(b) for b in net.b]
    gtm = [np.zeros_like(t) for t in tms]
    gtr = [np.zeros_like(t) for t in trs]
    B = tape.initial[0][0].shape[0]
    zeros = [np.zeros((B, n)) for n in net.layer_sizes[1:]]
    # adjoints of the state after step k (initially: after the last step -> no loss depends)
    a_u = list(zeros)
    a_r = list(zeros)
    a_rp = list(zeros)
    a_v = list(zeros)
    a_fb = list(zeros[:-1])
    lam = [np.empty((K, B, n)) for n in net.layer_sizes[1:]] if return_adjoint else None
    alpha = [np.empty((K, B, n)) for n in net.layer_sizes[1:]] if return_adjoint else None
    for k in range(K - 1, -1, -1):
        x, y, snap = tape.steps[k]
        old = tape.initial if k == 0 else tape.steps[k - 1][2]
        n_u, n_r, n_rp, n_v, n_fb = [None] * L, [None] * L, [None] * L, [None] * L, \
            [None] * (L - 1)
        a_g = None
        for l in range(L - 1, -1, -1):
            tm, tr = tms[l], trs[l]
            udot = snap[iUD][l]
            a_uh = a_r[l] * snap[iRP][l]                 # r_new = φ(ŭ), φ′(ŭ) stored
            if err and dds[l] is not None:
                a_uh = a_uh + a_rp[l] * dds[l](snap[iUH][l])
            if return_adjoint:
                alpha[l][k] = a_uh
            au = a_u[l] + a_uh                           # u_new = u + dt u̇; ŭ = u + τr u̇
            a_udot = dt * a_u[l] + tr * a_uh
            gtr[l] += np.einsum("bi,bi->i", a_uh, udot)
            a_s = a_udot / tm                            # u̇ = (s + γe - u)/τm
            au = au - a_s
            gtm[l] -= np.einsum("bi,bi->i", a_s, udot)
            n_u[l] = au
            if return_adjoint:
                lam[l][k] = a_s
            if err:
                a_e = gamma * a_s
                if l > 0:                                # fb_new = e W_ℓ
                    a_e = a_e + a_fb[l - 1] @ W[l].T
                    gW[l] += snap[iE][l].T @ a_fb[l - 1]
                if gle:                                  # v̇ = (ε - v)/τr, v+ = v + dt v̇,
                    vdot = (snap[iEPS][l] - old[iV][l]) / tr   # e = v + τm v̇
                    a_vdot = dt * a_v[l] + tm * a_e
                    n_v[l] = a_v[l] + a_e - a_vdot / tr
                    a_eps = a_vdot / tr
                    gtm[l] += np.einsum("bi,bi->i", a_e, vdot)
                    gtr[l] -= np.einsum("bi,bi->i", a_vdot, vdot) / tr
                else:                                    # IE: v+ = e = ε
                    a_eps = a_v[l] + a_e
                    n_v[l] = zeros[l]
                d = snap[iG] if l == L - 1 else old[iFB][l]   # ε = φ′_old ⊙ d_old
                n_rp[l] = a_eps * d
                a_d = a_eps * old[iRP][l]
                if l == L - 1:
                    a_g = a_d
                else:
                    n_fb[l] = a_d
            r_in = x if l == 0 else old[iR][l - 1]       # s = r_in Wᵀ + b
            gW[l] += a_s.T @ r_in
            gb[l] += a_s.sum(axis=0)
            if l > 0:
                n_r[l - 1] = a_s @ W[l]
        out = old[iR][L - 1]
        a_out = zeros[L - 1]
        if y is not None:
            a_out = _loss_grad(net, out, y)
            if err:
                a_out = a_out + _drive_vjp(net, out, a_g)
        n_r[L - 1] = a_out
        a_u, a_r = n_u, n_r
        if err:
            a_rp, a_v, a_fb = n_rp, n_v, n_fb
    grads = {"W": gW, "b": gb, "tau_m": gtm, "tau_r": gtr}
    res = WindowGradients(tape.loss, grads, tape.t(), method="exact")
    if return_adjoint:
        f = _lambda_factor(net, B)
        res.adjoint = [-f * a for a in lam]
        res.alpha = [-f * a for a in alpha]
    return res


# ----------------------------------------------------------------------------- Eq. 9 form


def _anticausal(alpha, tau_m, tau_r, dt):
    """Discrete ``I⁺_τm D⁻_τr`` along axis 0 (time), zero at the end of the window.

    ``λ_k = ρ α_k + a P_{k+1}``, ``P_k = (1 - a) P_{k+1} + (1 - ρ) α_k``, ``P_K = 0`` with
    ``a = dt/τm``, ``ρ = τr/τm``: the transpose of the Euler forward map s ↦ ŭ. When all
    neurons of the layer share (τm, τr) it runs as one causal IIR filter
    ``[ρ, a - ρ] / [1, -(1 - a)]`` on reversed time (scipy.signal.lfilter), once per
    distinct (τm, τr) pair among the layer's neurons.

    Parameters
    ----------
    alpha : array, shape (K, B, n)
    tau_m, tau_r : array, shape (n,)
        a.u.
    """
    from scipy.signal import lfilter   # scipy.signal costs ~1 s to import: only when used
    K = alpha.shape[0]
    if K == 0:
        return np.empty_like(alpha)
    a, rho = dt / tau_m, tau_r / tau_m
    out = np.empty_like(alpha)
    rev = alpha[::-1]
    # one IIR filter per distinct (τm, τr) pair of the layer, over its neurons at once
    pairs = np.stack([np.asarray(tau_m, float), np.asarray(tau_r, float)], axis=1)
    _, group = np.unique(pairs, axis=0, return_inverse=True)
    for g in np.unique(group):
        idx = np.flatnonzero(group.ravel() == g)
        a0, r0 = float(a[idx[0]]), float(rho[idx[0]])
        out[..., idx] = lfilter([r0, a0 - r0], [1.0, -(1.0 - a0)], rev[..., idx],
                                axis=0)[::-1]
    return out


def _adjoint_core(net, r_new, rp_new, y):
    """δ (= ∂L/∂ŭ) and s̄ (= ∂L/∂s) of the γ = 0 adjoint, per layer, shape (K, B, n_ℓ).

    ``r_new[l][k]``/``rp_new[l][k]`` are the rate and φ′ *after* step k; ``y[k]`` the target
    of step k. loss_0 depends on no step of the window and is ignored.
    """
    L, dt = net.n_layers, net.dt
    K = rp_new[0].shape[0]
    out = r_new[L - 1]
    a_r = np.zeros_like(out)
    # r after step k is the output of step k+1: a_r[k] = ∂loss_{k+1}/∂r_out, for all k at
    # once (the same arithmetic per step as _loss_grad, without a Python loop over K steps)
    if isinstance(y, np.ndarray) and y.dtype != object:
        # one array of targets (adjoint_traces, the live λ overlay): no per-step checks
        if K > 1:
            ys = y[1:K]
            if ys.ndim == 2 and np.issubdtype(ys.dtype, np.integer):
                ys = np.eye(net.layer_sizes[-1])[ys]
            a_r[:K - 1] = _loss_grad(net, out[:K - 1], ys)
        ks = []
    else:
        ks = [k for k in range(K - 1) if y is not None and y[k + 1] is not None]
    if ks:
        ys = [np.asarray(y[k + 1]) for k in ks]
        if all(v.shape == ys[0].shape and v.dtype == ys[0].dtype for v in ys):
            ys = np.stack(ys)
            if ys.ndim == 2 and np.issubdtype(ys.dtype, np.integer):
                ys = np.eye(net.layer_sizes[-1])[ys]
            a_r[ks] = _loss_grad(net, out[ks], ys)
        else:
            for k, yk in zip(ks, ys):
                a_r[k] = _loss_grad(net, out[k], yk)
    a_s = [None] * L
    delta = [None] * L
    for l in range(L - 1, -1, -1):
        if l < L - 1:                   # r of layer l after step k is read at step k+1
            a_r = np.zeros_like(rp_new[l])
            a_r[:-1] = a_s[l + 1][1:] @ net.W[l + 1]
        delta[l] = a_r * rp_new[l]
        a_s[l] = _anticausal(delta[l], net.tau_m[l], net.tau_r[l], dt)
    return delta, a_s


def backward_adjoint(tape, return_adjoint=True):
    """Windowed adjoint method, paper Eq. 9 / docs/model.md "Exact gradients": λ = I⁺_τm{D⁻_τr{α}}
    backward in time.

    Exact for γ = 0 (equals :func:`backward_exact` to rounding); for γ ≠ 0 it is the
    paper's AM, which leaves out the error's feedback into the soma.

    Returns
    -------
    WindowGradients
        ``grads`` are dL/dθ (engine normalisation): ``dL/dW_ℓ = Σ_k s̄_kᵀ r_{in,k}``, i.e.
        ``-κ dL/dW = Σ_k ⟨λ_k ⊗ r_{in,k}⟩ dt``; ``dL/dτm = -Σ s̄ ⊙ u̇``,
        ``dL/dτr = Σ δ ⊙ u̇``. ``adjoint``/``alpha``: λ and α per layer (K, B, n_ℓ).
    """
    net = tape.network
    L = net.n_layers
    K = len(tape.steps)
    r_all = tape.stacked("r", include_initial=True)      # (K+1, B, n): before step 0, ...
    r_new = [r[1:] for r in r_all]                        # after step k
    rp_new = tape.stacked("r_prime")
    udot = tape.stacked("u_dot")
    ys = [s[1] for s in tape.steps]
    delta, a_s = _adjoint_core(net, r_new, rp_new, ys)
    x = np.stack([s[0] for s in tape.steps])
    gW, gb, gtm, gtr = [], [], [], []
    for l in range(L):
        r_in = x if l == 0 else r_all[l - 1][:-1]        # start-of-step rates of layer ℓ-1
        n_post, n_pre = net.W[l].shape
        a2 = a_s[l].reshape(-1, n_post)
        gW.append(a2.T @ r_in.reshape(-1, n_pre))
        gb.append(a2.sum(axis=0))
        ud = udot[l].reshape(-1, n_post)
        gtm.append(-np.sum(a2 * ud, axis=0))
        gtr.append(np.sum(delta[l].reshape(-1, n_post) * ud, axis=0))
    res = WindowGradients(tape.loss, {"W": gW, "b": gb, "tau_m": gtm, "tau_r": gtr},
                          tape.t(), method="adjoint")
    if return_adjoint:
        B = x.shape[1] if K else net.batch_size
        f = _lambda_factor(net, B)
        res.adjoint = [-f * a for a in a_s]
        res.alpha = [-f * d for d in delta]
    return res


def _split_layers(net, arr, name):
    """(K, N) / (K, B, N) concatenated over layers, or a per-layer list -> list of (K, B, n)."""
    sizes = net.layer_sizes[1:]
    if isinstance(arr, (list, tuple)):
        if len(arr) != len(sizes):
            raise GLEParameterError(name, f"{len(arr)} arrays", f"{len(sizes)} (one per layer)")
        out = [np.asarray(a, float) for a in arr]
        return [a[:, None, :] if a.ndim == 2 else a for a in out]
    a = np.asarray(arr, float)
    if a.ndim == 2:
        a = a[:, None, :]
    if a.ndim != 3 or a.shape[2] != sum(sizes):
        raise GLEParameterError(name, f"shape {np.shape(arr)}",
                                f"(K, {sum(sizes)}) or (K, batch, {sum(sizes)})")
    edges = np.cumsum([0] + sizes)
    return [a[:, :, edges[i]:edges[i + 1]] for i in range(len(sizes))]


def adjoint_traces(network, r, r_prime, target, t=None):
    """Adjoint traces λ(t) (paper Eq. 9) of every neuron from a recorded forward trajectory.

    Meant for overlays with the GLE error ``e(t)`` of the same run: give the rates and φ′ a
    :class:`~gle_core.simulator.Simulator` recorded (``record=("t", "r", "r_prime",
    "target", "error", ...)``, ``record_every=1``) and get λ on the same time axis.

    Parameters
    ----------
    network : GLENetwork
        Supplies W, τm, τr, dt, β and the loss (the current values are used for the whole
        window; with learning on they drift slightly within it).
    r, r_prime : array or list
        Rates ``r`` and ``φ′(ŭ)`` *after* each step k (what the Simulator records at
        ``t_k``): shape (K, N) or (K, batch, N) concatenated over layers (N = Σ n_ℓ), or a
        list of per-layer arrays.
    target : array
        ``y_k``: (K, n_out) or (K, batch, n_out); for cross-entropy also integer labels
        (K,) or (K, batch).
    t : array, optional
        Times (a.u.) of the samples; default ``dt · arange(K)``.

    Returns
    -------
    t : ndarray, shape (K,)
    lam : list of ndarray
        Per layer λ, shape (K, batch, n_ℓ) (batch = 1 for 2-D input), in the GLE error's
        units (``λ = α`` at an LE output; see module docstring). λ at the last samples of
        the window is truncated (λ = 0 after its end): trust it up to a few τm before the
        end.
    alpha : list of ndarray
        Per layer α (the instantaneous adjoint error).
    """
    net = network
    r_l = _split_layers(net, r, "r")
    rp_l = _split_layers(net, r_prime, "r_prime")
    K, B = rp_l[0].shape[:2]
    y = np.asarray(target)
    if net.loss == "cross_entropy" and np.issubdtype(y.dtype, np.integer):
        if y.ndim == 1:
            y = y[:, None]
    else:
        y = np.asarray(target, float)
        if y.ndim == 2:
            y = y[:, None, :]
    if len(y) != K:
        raise GLEParameterError("target", f"{len(y)} samples", f"{K} (as r)")
    delta, a_s = _adjoint_core(net, r_l, rp_l, y)
    f = _lambda_factor(net, B)
    tt = net.dt * np.arange(K) if t is None else np.asarray(t, float)
    return tt, [-f * a for a in a_s], [-f * d for d in delta]


# ----------------------------------------------------------------------------- one-call API


def _windowed(network, x, y, state, advance, method, return_adjoint):
    """Record a window from ``state`` (default: the network's own) and differentiate it; the
    network itself advances only with ``advance``."""
    net = network if advance else network.copy()
    if state is not None:
        net.set_state(state)
    x = np.asarray(x, dtype=float)
    if method == "exact":
        tape = record_window(net, x, y)
        return backward_exact(tape, return_adjoint)
    tape = record_window(net, x, y, error_path=False)
    return backward_adjoint(tape, return_adjoint)


def exact_gradients(network, x, y, *, state=None, advance=False, return_adjoint=False):
    """dL/dθ, L = Σ_k loss_k over a window, by exact reverse mode through the engine's steps.

    Parameters
    ----------
    network : GLENetwork
        Parameters θ and (unless ``state`` is given) the initial state. Any layers,
        activations, γ, batch size, loss and error mode.
    x : array, shape (K, batch, n_in)
        Inputs x_0..x_{K-1}.
    y : array, shape (K, batch, n_out) (MSE) or (K, batch) labels (cross-entropy)
        Targets y_0..y_{K-1}.
    state : dict, optional
        Initial state from :func:`get_state`; default the network's current state.
    advance : bool
        If True the network itself is advanced over the window (as a simulation would);
        otherwise a copy is used and ``network`` is unchanged.
    return_adjoint : bool
        Also return λ and α per layer (see :func:`backward_exact`).

    Returns
    -------
    WindowGradients
        ``loss`` = L, ``grads[kind][layer]`` = dL/dθ.
    """
    return _windowed(network, x, y, state, advance, "exact", return_adjoint)


def adjoint_gradients(network, x, y, *, state=None, advance=False, return_adjoint=True):
    """Like :func:`exact_gradients` with the Eq. 9 adjoint (:func:`backward_adjoint`)."""
    return _windowed(network, x, y, state, advance, "adjoint", return_adjoint)
