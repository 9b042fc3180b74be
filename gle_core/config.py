"""Build simulators from plain data (dicts / JSON), so presets and protocols are data.

A configuration is a dict; every key is optional except ``network``::

    {
      "dt": 0.01, "gamma": 1.0, "beta": 1.0, "loss": "mse", "error_mode": "gle",
      "tau_floor": 0.1, "batch_size": 1,
      "network": {"layer_sizes": [1, 1, 1], "activations": "softplus",
                  "tau_m": [1.0, 2.0], "tau_r": 0.1, "weights": [[[1.0]], [[2.0]]],
                  "biases": null,
                  "init": {"weights": {"uniform": [0, 1]}, "tau_m": {"uniform": [0, 1]}}},
      "teacher": {"weights": [[[1.0]], [[2.0]]], "tau_m": [1.0, 2.0]},
      "stimulus": {"type": "smoothed_square", "period": 4, "sigma": 0.05, "max_shift": 2},
      "learning": {"optimizer": "adam", "lr": 1e-4, "learn": {"W": true, "tau_m": true},
                   "learn_from": 50, "optimizer_kwargs": {},
                   "rule": "gle", "window": 3.0, "method": "exact", "loss_scale": "energy"},
      "duration": 4050
    }

``network.init`` draws the named parameters at random from the seed (uniform ranges, per
element), overriding the fixed values; drawn time constants are clamped to the τ floor.
The ``teacher`` entry inherits every network field it does not set; no ``init`` applies.
``learning.rule`` is the learning rule (:mod:`gle_core.rules`): absent, the network's
``error_mode`` learns locally; ``"am"`` is the windowed exact rule, with ``window`` (TW,
a.u.), ``method`` and ``loss_scale``.
"""
from __future__ import annotations

import copy

import numpy as np

from . import inputs
from .errors import GLEParameterError
from .network import GLENetwork
from .simulator import DEFAULT_RECORD, Simulator

__all__ = ["build_network", "build_stimulus", "build_simulator", "STIMULI"]

STIMULI = {
    "sine": inputs.Sine,
    "sum_of_sines": inputs.SumOfSines,
    "smoothed_square": inputs.SmoothedSquare,
    "constant": inputs.Constant,
}
_NET_KEYS = ("dt", "gamma", "beta", "loss", "error_mode", "tau_floor", "batch_size")


def build_stimulus(spec):
    """A :class:`~gle_core.inputs.Stimulus` from ``{"type": name, **kwargs}``."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in STIMULI:
        raise GLEParameterError("stimulus.type", kind, "one of " + ", ".join(STIMULI))
    try:
        return STIMULI[kind](**spec)
    except TypeError as exc:
        raise GLEParameterError(f"stimulus ({kind})", spec, str(exc)) from None


def build_network(cfg, which="network", seed=None, **overrides):
    """A :class:`GLENetwork` from a configuration's ``network`` (or ``teacher``) entry."""
    net_cfg = dict(cfg.get("network", {}))
    if which == "teacher":
        net_cfg.update(cfg.get("teacher") or {})
        net_cfg.pop("init", None)
    init = net_cfg.pop("init", None) or {}
    kwargs = {k: cfg[k] for k in _NET_KEYS if k in cfg}
    kwargs.update(overrides)
    unknown = set(net_cfg) - {"layer_sizes", "activations", "tau_m", "tau_r", "weights",
                              "biases"}
    if unknown:
        raise GLEParameterError(f"{which} keys", sorted(unknown),
                                "layer_sizes, activations, tau_m, tau_r, weights, biases, init")
    rng = np.random.default_rng(seed)
    sizes = net_cfg.get("layer_sizes")
    if sizes is None:
        raise GLEParameterError(f"{which}.layer_sizes", None, "a list [n_in, n_1, ..., n_L]")
    L = len(sizes) - 1
    for name, dist in init.items():
        lo, hi = dist["uniform"]
        if name == "weights":
            net_cfg["weights"] = [rng.uniform(lo, hi, (sizes[i + 1], sizes[i]))
                                  for i in range(L)]
        elif name in ("tau_m", "tau_r"):
            floor = kwargs.get("tau_floor") or kwargs.get("dt", 0.01)
            net_cfg[name] = [np.maximum(rng.uniform(lo, hi, sizes[i + 1]), floor)
                             for i in range(L)]
        elif name == "biases":
            net_cfg["biases"] = [rng.uniform(lo, hi, sizes[i + 1]) for i in range(L)]
        else:
            raise GLEParameterError(f"{which}.init", name, "weights, biases, tau_m, tau_r")
    return GLENetwork(sizes, net_cfg.get("activations", "linear"), net_cfg.get("tau_m", 1.0),
                      net_cfg.get("tau_r", 1.0), net_cfg.get("weights"), net_cfg.get("biases"),
                      seed=seed, **kwargs)


def build_simulator(cfg, seed=0, record=DEFAULT_RECORD, window=2000, record_every=1,
                    **overrides):
    """A ready :class:`Simulator` (student, teacher, stimulus, learning) from a config.

    Parameters
    ----------
    cfg : dict
        The configuration (see module docstring); not modified.
    seed : int
        Seeds the student's random initial parameters and the stimulus' per-stream shifts.
    record, window, record_every :
        Passed to :class:`Simulator`.
    **overrides :
        Top-level network settings that replace the configuration's (``error_mode="ie"``,
        ``batch_size=1``, ...).
    """
    cfg = copy.deepcopy(cfg)
    for k, v in overrides.items():
        if k not in _NET_KEYS:
            raise GLEParameterError("override", k, ", ".join(_NET_KEYS))
        cfg[k] = v
    student = build_network(cfg, "network", seed=seed)
    teacher = build_network(cfg, "teacher", seed=seed) if cfg.get("teacher") else None
    if teacher is not None:
        teacher.set_error_mode("gle")
    stim = build_stimulus(cfg.get("stimulus", {"type": "sine"}))
    learning = dict(cfg.get("learning") or {})
    rule = learning.get("rule")
    options = {k: learning[k] for k in ("window", "method", "loss_scale") if k in learning}
    if rule is None or rule in ("gle", "ie"):
        options = {}
    return Simulator(student, stim, teacher, rule=rule, rule_options=options,
                     optimizer=learning.get("optimizer", "adam"),
                     lr=learning.get("lr", 1e-3), learn=learning.get("learn"),
                     learn_from=learning.get("learn_from", 0.0),
                     optimizer_kwargs=learning.get("optimizer_kwargs"), record=record,
                     window=window, record_every=record_every, seed=seed)
