"""Layered networks of GLE neurons, integrated with the discrete scheme of docs/model.md.

Notation (docs/model.md "The network", paper Eqs. 6-8). For layer ℓ = 1..L with presynaptic rates
r_{ℓ-1} (r_0 = x, the input):

* soma (membrane) potential ``u``:        τm u̇ = -u + W r_{ℓ-1} + b + γ e          (Eq. 6)
* prospective voltage ``prospective_voltage`` ŭ = u + τr u̇  (= D⁺_τr{u}),  rate r = φ(ŭ)
* instantaneous error ``inst_error`` ε = φ′(ŭ) ⊙ W_{ℓ+1}ᵀ e_{ℓ+1}  (output: φ′(ŭ) ⊙ β ∂C)
* error neuron state ``error_state``  τr v̇ = -v + ε  (this v is *not* the paper's dendritic
  v_i = Σ W r of Eq. 8, which we call the ``dendritic_potential``)
* GLE error ``error`` e = v + τm v̇ = D⁺_τm I⁻_τr {ε}                                (Eq. 7)
* plasticity ΔW = η e r_{ℓ-1}ᵀ, Δb = η e, Δτm = -η e ⊙ u̇, Δτr = +η ε ⊙ u̇          (Eq. 5, 8)

Time is in arbitrary units (a.u.); every state array has shape ``(batch, n_ℓ)``.
"""
from __future__ import annotations

import numbers

import numpy as np
from scipy.special import softmax

from .activations import ACTIVATIONS, get_activation
from .errors import GLEParameterError, SimulationDiverged

__all__ = ["GLENetwork", "ERROR_MODES", "LOSSES", "PARAMETER_KINDS", "STATE_NAMES",
           "STATE_ATTRIBUTES"]

ERROR_MODES = ("gle", "ie")
LOSSES = ("mse", "cross_entropy")
#: learnable parameter kinds, in the order the optimizer sees them
PARAMETER_KINDS = ("W", "b", "tau_m", "tau_r")
#: names of the per-layer state arrays, as recorded by the simulator
STATE_NAMES = ("u", "u_dot", "prospective_voltage", "r", "r_prime",
               "inst_error", "error_state", "error")
#: every attribute that :meth:`GLENetwork.step` changes (the network's dynamic state):
#: the recorded states, the error sent down from the layer above (``feedback``), the
#: presynaptic rates of the last step, the output nudging and the step count
STATE_ATTRIBUTES = STATE_NAMES + ("feedback", "presynaptic", "output_drive", "steps")


def _copied(value):
    """Arrays (and lists of arrays) copied; anything else as is."""
    if isinstance(value, list):
        return [a.copy() if isinstance(a, np.ndarray) else a for a in value]
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _check_finite_number(name, value, low=-np.inf, high=np.inf, low_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise GLEParameterError(name, value, f"a real number in [{low}, {high}]")
    value = float(value)
    bad_low = value <= low if low_open else value < low
    if not np.isfinite(value) or bad_low or value > high:
        lb = "(" if low_open else "["
        raise GLEParameterError(name, value, f"a finite number in {lb}{low}, {high}]")
    return value


class GLENetwork:
    """A layered network of GLE neurons with a batch of independent input streams.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_in, n_1, ..., n_L]``: input size then the size of every layer.
    activations : str or sequence of str
        φ of every layer (one name for all, or one per layer); see
        :data:`gle_core.activations.ACTIVATIONS`.
    tau_m, tau_r : float or sequence
        Membrane and rate time constants (a.u.): one number for all neurons, or one entry
        per layer, each a number or an array of that layer's size (per-neuron τ).
    weights : sequence of arrays, optional
        ``W_ℓ`` of shape ``(n_ℓ, n_{ℓ-1})``. Default: uniform in ±1/√n_{ℓ-1} from ``seed``.
    biases : sequence of arrays, optional
        ``b_ℓ`` of shape ``(n_ℓ,)``. Default: zeros.
    dt : float
        Euler step (a.u.), > 0.
    gamma : float
        γ, coupling of the error into the soma (γ = 1 is energy-consistent, Eq. 6).
    beta : float
        β, the nudging strength of the output cost (Eq. 3).
    loss : {"mse", "cross_entropy"}
        Output cost. Cross-entropy needs a linear output layer (softmax is applied in the
        cost).
    error_mode : {"gle", "ie"}
        ``"gle"``: prospective errors e = D⁺_τm I⁻_τr{ε} (Eq. 7). ``"ie"``: instantaneous
        errors e = ε, the plain-backprop baseline of paper Fig. 4.
    tau_floor : float, optional
        Lower bound of τm and τr: every τ given or set must be ≥ it, and learning
        clamps to it after every update; default ``dt``. Must be ≥ ``dt``.
    batch_size : int
        Number of independent input streams simulated in parallel.
    seed : int, optional
        Seed for the default weight initialisation.

    Notes
    -----
    Explicit Euler of τ ẏ = -y + x is stable for dt < 2τ and free of oscillation for
    dt ≤ τ (docs/model.md "Closed-form checks" 9); every τ must therefore be ≥ ``dt``.
    """

    def __init__(self, layer_sizes, activations, tau_m, tau_r, weights=None, biases=None, *,
                 dt=0.01, gamma=1.0, beta=1.0, loss="mse", error_mode="gle",
                 tau_floor=None, batch_size=1, seed=None):
        sizes = list(layer_sizes)
        if len(sizes) < 2 or not all(isinstance(n, numbers.Integral) and n >= 1 for n in sizes):
            raise GLEParameterError("layer_sizes", layer_sizes,
                                    "a list of ≥ 2 positive integers [n_in, n_1, ..., n_L]")
        self.layer_sizes = [int(n) for n in sizes]
        L = self.n_layers = len(sizes) - 1
        self.dt = _check_finite_number("dt", dt, 0.0, np.inf, low_open=True)
        self.gamma = _check_finite_number("gamma", gamma)
        self.beta = _check_finite_number("beta", beta)
        if loss not in LOSSES:
            raise GLEParameterError("loss", loss, "one of " + ", ".join(LOSSES))
        self.loss = loss
        self.error_mode = self._check_error_mode(error_mode)
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise GLEParameterError("batch_size", batch_size, "an integer ≥ 1")
        self.batch_size = int(batch_size)
        floor = self.dt if tau_floor is None else tau_floor
        self.tau_floor = _check_finite_number("tau_floor", floor, self.dt, np.inf)

        if isinstance(activations, str):
            activations = [activations] * L
        activations = list(activations)
        if len(activations) != L:
            raise GLEParameterError("activations", activations,
                                    f"one name or a list of {L} names (one per layer)")
        for a in activations:
            get_activation(a)
        if loss == "cross_entropy" and activations[-1] != "linear":
            raise GLEParameterError("activations[-1]", activations[-1], "'linear'",
                                    "cross-entropy applies the softmax in the cost")
        self.activations = activations
        self._phi = [ACTIVATIONS[a] for a in activations]

        self.tau_m = self._per_neuron("tau_m", tau_m)
        self.tau_r = self._per_neuron("tau_r", tau_r)
        for kind in ("tau_m", "tau_r"):
            for layer in range(L):
                self._check_tau(kind, layer, getattr(self, kind)[layer])

        rng = np.random.default_rng(seed)
        if weights is None:
            weights = [rng.uniform(-1, 1, (sizes[i + 1], sizes[i])) / np.sqrt(sizes[i])
                       for i in range(L)]
        self.W = self._per_layer_arrays("weights", weights, lambda i: (sizes[i + 1], sizes[i]))
        if biases is None:
            biases = [np.zeros(sizes[i + 1]) for i in range(L)]
        self.b = self._per_layer_arrays("biases", biases, lambda i: (sizes[i + 1],))
        self.reset_state()

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_error_mode(mode):
        if mode not in ERROR_MODES:
            raise GLEParameterError("error_mode", mode, "one of " + ", ".join(ERROR_MODES))
        return mode

    def _per_neuron(self, name, value):
        L = self.n_layers
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = [value] * L
        value = list(value)
        if len(value) != L:
            raise GLEParameterError(name, value, f"one number or {L} entries (one per layer)")
        out = []
        for i, v in enumerate(value):
            arr = np.array(v, dtype=float)
            n = self.layer_sizes[i + 1]
            if arr.ndim == 0:
                arr = np.full(n, float(arr))
            if arr.shape != (n,):
                raise GLEParameterError(f"{name}[layer {i + 1}]", v,
                                        f"a number or an array of shape ({n},)")
            out.append(arr)
        return out

    def _per_layer_arrays(self, name, arrays, shape_of):
        arrays = list(arrays)
        if len(arrays) != self.n_layers:
            raise GLEParameterError(name, f"{len(arrays)} arrays",
                                    f"{self.n_layers} arrays (one per layer)")
        out = []
        for i, a in enumerate(arrays):
            arr = np.array(a, dtype=float)
            if arr.shape != shape_of(i):
                raise GLEParameterError(f"{name}[layer {i + 1}]", f"shape {arr.shape}",
                                        f"shape {shape_of(i)}")
            if not np.all(np.isfinite(arr)):
                raise GLEParameterError(f"{name}[layer {i + 1}]", "non-finite values",
                                        "finite numbers")
            out.append(arr)
        return out

    def _check_tau(self, kind, layer, arr):
        """τ must be ≥ the τ floor (itself ≥ dt): explicit Euler stability, docs/model.md
        "Closed-form checks" 9."""
        arr = np.asarray(arr, dtype=float)
        floor = self.tau_floor
        allowed = f"[{floor:g}, inf) a.u." + (f" (the tau floor; dt = {self.dt:g})"
                                              if floor > self.dt * (1 + 1e-12)
                                              else f" (dt = {self.dt:g})")
        if not np.all(np.isfinite(arr)):
            raise GLEParameterError(f"{kind}[layer {layer + 1}]", arr.tolist(),
                                    "finite values in " + allowed)
        low = float(arr.min())
        if low < floor * (1 - 1e-12):
            idx = int(arr.argmin())
            if low <= 0:
                hint = "time constants must be positive"
            elif low < self.dt:
                hint = (f"explicit Euler with dt = {self.dt:g} is unstable for tau < dt/2 and "
                        "oscillates for tau < dt; raise tau or lower dt")
            else:
                hint = "learning clamps every time constant to this floor"
            raise GLEParameterError(f"{kind}[layer {layer + 1}, neuron {idx}]", low, allowed,
                                    hint)

    # ------------------------------------------------------------------ parameters
    def set_parameter(self, kind, layer, value, index=None):
        """Change a parameter between steps, with validation (used by sliders).

        Parameters
        ----------
        kind : {"W", "b", "tau_m", "tau_r"}
        layer : int
            0-based layer index (layer ℓ = ``layer + 1`` in the paper's numbering).
        value : float or array
            New value for the whole array, or for ``index`` if given.
        index : int or tuple, optional
            Element to change (neuron index, or ``(post, pre)`` for W).
        """
        if kind not in PARAMETER_KINDS:
            raise GLEParameterError("kind", kind, "one of " + ", ".join(PARAMETER_KINDS))
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral) \
                or not 0 <= layer < self.n_layers:
            raise GLEParameterError("layer", layer, f"an integer in [0, {self.n_layers - 1}]")
        target = getattr(self, kind)[layer]
        new = target.copy()
        try:
            if index is None:
                new[...] = value
            else:
                new[index] = value
        except (ValueError, IndexError, TypeError) as exc:
            raise GLEParameterError(f"{kind}[layer {layer + 1}]" +
                                    ("" if index is None else f"[{index}]"), value,
                                    f"an array broadcastable to shape {target.shape}"
                                    ) from exc
        if kind in ("tau_m", "tau_r"):
            self._check_tau(kind, layer, new)
        elif not np.all(np.isfinite(new)):
            raise GLEParameterError(f"{kind}[layer {layer + 1}]", value, "finite numbers")
        target[...] = new

    def set_error_mode(self, mode):
        """Switch between GLE and instantaneous errors between steps."""
        self.error_mode = self._check_error_mode(mode)

    def parameters(self, kind):
        """The list (one array per layer) of parameter ``kind``; arrays are live views."""
        if kind not in PARAMETER_KINDS:
            raise GLEParameterError("kind", kind, "one of " + ", ".join(PARAMETER_KINDS))
        return getattr(self, kind)

    def clamp_time_constants(self):
        """Apply the τ floor (docs/model.md "The network" 'Clamps') in place."""
        for arrs in (self.tau_m, self.tau_r):
            for a in arrs:
                np.maximum(a, self.tau_floor, out=a)

    # ------------------------------------------------------------------ state
    def reset_state(self, batch_size=None):
        """Set every state to zero (docs/model.md "The discrete scheme": 'All states start at
        zero')."""
        if batch_size is not None:
            self.batch_size = int(batch_size)
        B = self.batch_size
        self._input_shape = (B, self.layer_sizes[0])
        z = lambda n: np.zeros((B, n))  # noqa: E731
        sizes = self.layer_sizes[1:]
        self.u = [z(n) for n in sizes]
        self.u_dot = [z(n) for n in sizes]
        self.prospective_voltage = [z(n) for n in sizes]
        self.r = [z(n) for n in sizes]
        self.r_prime = [z(n) for n in sizes]   # φ′(ŭ) of the previous step: 0 at start
        self.inst_error = [z(n) for n in sizes]
        self.error_state = [z(n) for n in sizes]
        self.error = [z(n) for n in sizes]
        # error sent down to layer ℓ by layer ℓ+1 last step: W_{ℓ+1}ᵀ e_{ℓ+1}
        self.feedback = [z(n) for n in sizes[:-1]]
        self.presynaptic = [np.zeros((B, n)) for n in self.layer_sizes[:-1]]
        self.output_drive = z(sizes[-1])  # g = β ∂(-C)/∂r at the output
        self.steps = 0

    @property
    def output(self):
        """The network's output: the output layer's rate (what the next step returns)."""
        return self.r[-1]

    def dendritic_potential(self, layer):
        """The paper's dendritic v_i = Σ_j W_ij r_j + b_i (Eq. 8) of the last step."""
        return self.presynaptic[layer] @ self.W[layer].T + self.b[layer]

    # ------------------------------------------------------------------ cost
    def output_error_drive(self, output, target):
        """g = β (y - r) for MSE, β (onehot(y) - softmax(r)) for cross-entropy (docs/model.md "The
        network")."""
        if self.loss == "mse":
            return self.beta * (target - output)
        return self.beta * (self.one_hot(target) - softmax(output, axis=-1))

    def one_hot(self, target):
        """Integer labels of shape (batch,) -> one-hot; probability arrays pass through."""
        target = np.asarray(target)
        if target.ndim == 1 and np.issubdtype(target.dtype, np.integer):
            return np.eye(self.layer_sizes[-1])[target]
        return target

    def loss_value(self, output, target):
        """Per-step cost, averaged over the batch.

        MSE: mean over batch and outputs of (y - r)². Cross-entropy: mean over the batch of
        -Σ y log softmax(r).
        """
        if self.loss == "mse":
            return float(np.mean((target - output) ** 2))
        logp = output - output.max(axis=-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=-1, keepdims=True))
        return float(-np.mean(np.sum(self.one_hot(target) * logp, axis=-1)))

    # ------------------------------------------------------------------ dynamics
    def check_input(self, x):
        """The input of one step as a (batch, n_in) array (one row is broadcast)."""
        x = np.asarray(x, dtype=float)
        B, n_in = self.batch_size, self.layer_sizes[0]
        if x.shape != (B, n_in):
            if x.shape == (n_in,) or x.shape == (1, n_in):
                x = np.broadcast_to(x.reshape(1, n_in), (B, n_in))
            else:
                raise GLEParameterError("input", f"shape {x.shape}", f"shape ({B}, {n_in})")
        return x

    def step(self, x, target=None):
        """Advance all layers by one Euler step ``dt`` (docs/model.md "The discrete scheme", steps
        1-7).

        Parameters
        ----------
        x : array, shape (batch, n_in)
            Input r_0 at this step.
        target : array, optional
            Target y_k for the output: shape (batch, n_out) for MSE, integer labels of shape
            (batch,) or probabilities for cross-entropy. ``None``: no output error (β C = 0).

        Returns
        -------
        output : array, shape (batch, n_out)
            The output layer's rate at the start of the step (its 'old' rate): the network's
            output at this step, against which ``target`` is compared.

        Notes
        -----
        All layers read their neighbours' start-of-step values and commit together (Jacobi
        order), so signals take one ``dt`` per layer in each direction. φ′ is the previous
        step's. The optimizer (step 8) is applied by :class:`gle_core.simulator.Simulator`.
        """
        dt, gamma, L = self.dt, self.gamma, self.n_layers
        if getattr(x, "shape", None) != self._input_shape:
            x = self.check_input(x)
        gle = self.error_mode == "gle"
        out_old = self.r[-1]
        if target is None:
            g = np.zeros_like(out_old)
        else:
            g = self.output_error_drive(out_old, target)
        new_u, new_ud, new_uh, new_r, new_rp = [], [], [], [], []
        new_eps, new_v, new_e, new_fb, pre = [], [], [], [None] * (L - 1), []
        for l in range(L):
            r_in = x if l == 0 else self.r[l - 1]
            d = g if l == L - 1 else self.feedback[l]
            tm, tr = self.tau_m[l], self.tau_r[l]
            eps = self.r_prime[l] * d                          # step 1
            s = r_in @ self.W[l].T + self.b[l]                 # step 2
            v = self.error_state[l]
            if gle:                                            # step 3
                v_dot = (eps - v) / tr
                v_new = v + dt * v_dot
                e = v + tm * v_dot
            else:
                v_new = e = eps
            u = self.u[l]
            u_dot = (s + gamma * e - u) / tm                   # step 4
            u_hat = u + tr * u_dot
            if l > 0:
                new_fb[l - 1] = e @ self.W[l]                  # step 6: W_ℓᵀ e_ℓ
            phi, dphi = self._phi[l]
            new_u.append(u + dt * u_dot)
            new_ud.append(u_dot)
            new_uh.append(u_hat)
            new_r.append(phi(u_hat))                           # step 7
            new_rp.append(dphi(u_hat))
            new_eps.append(eps)
            new_v.append(v_new)
            new_e.append(e)
            pre.append(r_in)
        # commit all layers at once
        self.u, self.u_dot, self.prospective_voltage = new_u, new_ud, new_uh
        self.r, self.r_prime = new_r, new_rp
        self.inst_error, self.error_state, self.error = new_eps, new_v, new_e
        self.feedback = new_fb
        self.presynaptic = pre
        self.output_drive = g
        self.steps += 1
        return out_old

    def local_gradients(self, kind, layer):
        """Energy gradient ∂E/∂θ estimated from the last step (docs/model.md "The discrete scheme"
        step 5).

        Batch means of the local plasticity signals, with the sign of a gradient (the
        optimizer *descends*): ∂E/∂W = -⟨e r_{ℓ-1}ᵀ⟩, ∂E/∂b = -⟨e⟩, ∂E/∂τm = ⟨e ⊙ u̇⟩ and the
        experimental ∂E/∂τr = -⟨ε ⊙ u̇⟩ (paper Eqs. 5, 8).
        """
        e = self.error[layer]
        B = e.shape[0]
        if kind == "W":
            return -(e.T @ self.presynaptic[layer]) / B
        if kind == "b":
            return -e.mean(axis=0)
        if kind == "tau_m":
            return (e * self.u_dot[layer]).mean(axis=0)
        if kind == "tau_r":
            return -(self.inst_error[layer] * self.u_dot[layer]).mean(axis=0)
        raise GLEParameterError("kind", kind, "one of " + ", ".join(PARAMETER_KINDS))

    # ------------------------------------------------------------------ divergence
    def find_divergence(self, t, detail=""):
        """Name the state or parameter that blew up; returns a SimulationDiverged."""
        worst = ("u", 1, 0.0)
        for name in STATE_NAMES + PARAMETER_KINDS:
            for layer, arr in enumerate(getattr(self, name)):
                if not np.all(np.isfinite(arr)):
                    bad = arr[~np.isfinite(arr)].flat[0]
                    return SimulationDiverged(name, layer + 1, t, float(bad), detail)
                m = float(np.max(np.abs(arr))) if arr.size else 0.0
                if m > worst[2]:
                    worst = (name, layer + 1, m)
        return SimulationDiverged(worst[0], worst[1], t, worst[2], detail)

    def get_state(self):
        """A copy of the dynamic state: ``{attribute: value}`` for :data:`STATE_ATTRIBUTES`."""
        return {name: _copied(getattr(self, name)) for name in STATE_ATTRIBUTES}

    def set_state(self, state):
        """Restore a state from :meth:`get_state` (copied, so ``state`` stays reusable)."""
        for name in STATE_ATTRIBUTES:
            setattr(self, name, _copied(state[name]))
        self.batch_size = state["u"][0].shape[0]
        self._input_shape = (self.batch_size, self.layer_sizes[0])

    def copy(self):
        """A deep copy (parameters and state)."""
        new = object.__new__(GLENetwork)
        for k, v in self.__dict__.items():
            new.__dict__[k] = _copied(v)
        return new

    def __repr__(self):
        return (f"GLENetwork(layer_sizes={self.layer_sizes}, activations={self.activations}, "
                f"dt={self.dt}, gamma={self.gamma}, beta={self.beta}, loss={self.loss!r}, "
                f"error_mode={self.error_mode!r}, batch_size={self.batch_size})")
