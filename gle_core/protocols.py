"""The published teacher/student protocols (docs/model.md "Published protocols") as data, and a
runner.

* :data:`LAGLINE` -- the chain input → n1 → n2 of paper Fig. 4.
* :data:`LAGNET`  -- the small network 1 → 2 → 2 → 1 of paper Fig. 5 (GLE student).
* :data:`LAGNET_AM` -- the same, adjoint-method student (windowed exact rule).

Both are plain configuration dicts for :func:`gle_core.config.build_simulator`; the
dashboard's presets use the same format.
"""
from __future__ import annotations

import copy

import numpy as np

from .config import build_simulator

__all__ = ["LAGLINE", "LAGNET", "LAGNET_AM", "PROTOCOLS", "run_protocol", "run_lagnet_am",
           "summarize", "student_config", "make_protocol"]

#: Paper Fig. 4 (docs/model.md "Published protocols"): teacher w = (1, 2), τm = (1, 2), τr = 0.1;
#: student w, τm ~ U(0, 1)
LAGLINE = {
    "name": "lagline",
    "title": "Chain teacher/student (paper Fig. 4)",
    "dt": 0.01, "gamma": 1.0, "beta": 0.01, "loss": "mse", "error_mode": "gle",
    "tau_floor": 0.1, "batch_size": 100,
    "network": {
        "layer_sizes": [1, 1, 1], "activations": "softplus",
        "tau_m": [1.0, 1.0], "tau_r": 0.1, "weights": [[[0.5]], [[0.5]]],
        "init": {"weights": {"uniform": [0.0, 1.0]}, "tau_m": {"uniform": [0.0, 1.0]}},
    },
    "teacher": {"weights": [[[1.0]], [[2.0]]], "tau_m": [1.0, 2.0], "tau_r": 0.1},
    "stimulus": {"type": "smoothed_square", "period": 4.0, "duty": 0.5, "sigma": 0.05,
                 "amplitude": 1.0, "max_shift": 2.0},
    # Adam lr = 1e-6 / β
    "learning": {"optimizer": "adam", "lr": 1e-4, "learn": {"W": True, "tau_m": True},
                 "learn_from": 50.0},
    "duration": 4050.0,
}

#: Paper Fig. 5 (docs/model.md "Published protocols"), GLE side: only W1 learns; W2, W3 are the
#: teacher's.
LAGNET = {
    "name": "lagnet",
    "title": "Small network teacher/student (paper Fig. 5)",
    "dt": 0.01, "gamma": 1e-3, "beta": 1.0, "loss": "mse", "error_mode": "gle",
    "batch_size": 1,
    "network": {
        "layer_sizes": [1, 2, 2, 1], "activations": ["tanh", "tanh", "linear"],
        # neuron 0 of each hidden layer "instantaneous", neuron 1 "retrospective"
        "tau_m": [[1.0, 1.0], [1.0, 1.0], [1.0]],
        "tau_r": [[1.0, 0.1], [1.0, 0.1], [1.0]],
        "weights": [[[-0.5], [1.0]], [[0.5, 0.0], [0.0, 1.0]], [[0.5, 1.0]]],
        "init": {},
    },
    "teacher": {"weights": [[[-0.5], [1.0]], [[0.5, 0.0], [0.0, 1.0]], [[0.5, 1.0]]]},
    "stimulus": {"type": "sum_of_sines", "omegas": [0.49, 1.07, 1.98]},
    "learning": {"optimizer": "momentum", "lr": 2e-4, "optimizer_kwargs": {"momentum": 0.9},
                 "learn": {"W": [0]}, "learn_from": 80.0},
    "duration": 1001.0,
    # the student's W1 is drawn in U(-1, 1) (not published; the rest equals the teacher)
    "student_w1_init": [-1.0, 1.0],
}



def _lagnet_am_config():
    cfg = copy.deepcopy(LAGNET)
    cfg.update({
        "name": "lagnet_am",
        "title": "Small network teacher/student, adjoint-method student (paper Fig. 5)",
        "gamma": 0.0,
        "learning": {"optimizer": "momentum", "lr": 7e-2,
                     "optimizer_kwargs": {"momentum": 0.9}, "learn": {"W": [0]},
                     "learn_from": 80.0, "rule": "am", "window": 3.0, "method": "adjoint",
                     "loss_scale": "energy"},
    })
    return cfg


#: Paper Fig. 5, AM side: γ = 0, adjoint windows of 3 a.u., SGD momentum 0.9, lr 7e-2 per
#: window, only W1 learns, from t = 80 a.u.; everything else is :data:`LAGNET` (same
#: teacher, stimulus, student W1 draw).
LAGNET_AM = _lagnet_am_config()

PROTOCOLS = {"lagline": LAGLINE, "lagnet": LAGNET, "lagnet_am": LAGNET_AM}


def student_config(cfg, seed):
    """A copy of ``cfg`` with the protocol's random student parts drawn from ``seed``."""
    cfg = copy.deepcopy(cfg)
    if "student_w1_init" in cfg:
        lo, hi = cfg.pop("student_w1_init")
        rng = np.random.default_rng(seed)
        cfg["network"]["weights"][0] = rng.uniform(lo, hi, (2, 1)).tolist()
    return cfg


def make_protocol(name, seed=0, **overrides):
    """A Simulator for protocol ``name`` recording parameters and loss every 1 a.u."""
    cfg = student_config(PROTOCOLS[name], seed)
    every = int(round(1.0 / cfg["dt"]))
    return build_simulator(cfg, seed=seed, record=("t", "loss", "W", "tau_m"),
                           window=int(cfg["duration"]) + 10, record_every=every, **overrides)


def summarize(sim, cfg, final_window=8.0):
    """Learned vs teacher parameters and the loss averaged over the last ``final_window`` a.u."""
    net, teacher = sim.network, sim.teacher
    n_last = max(1, int(round(final_window / (net.dt * sim.record_every))))
    loss = sim.trace("loss")
    return {
        "protocol": cfg["name"], "error_mode": net.error_mode, "t": sim.t,
        "W": [w.tolist() for w in net.W], "teacher_W": [w.tolist() for w in teacher.W],
        "tau_m": [t.tolist() for t in net.tau_m],
        "teacher_tau_m": [t.tolist() for t in teacher.tau_m],
        "final_loss": float(np.mean(loss[-n_last:])) if len(loss) else float("nan"),
        "max_abs_W_error": max(float(np.max(np.abs(a - b))) for a, b in zip(net.W, teacher.W)),
        "max_abs_tau_m_error": max(float(np.max(np.abs(a - b)))
                                   for a, b in zip(net.tau_m, teacher.tau_m)),
    }


def run_protocol(name, error_mode="gle", seed=0, duration=None, progress=None, **overrides):
    """Run a published protocol headless and return :func:`summarize`'s dict."""
    cfg = PROTOCOLS[name]
    sim = make_protocol(name, seed=seed, error_mode=error_mode, **overrides)
    sim.run(cfg["duration"] if duration is None else duration, progress=progress)
    return summarize(sim, cfg)


def run_lagnet_am(seed=0, duration=None, progress=None):
    """Run the LagNet AM student (:data:`LAGNET_AM`) headless.

    Returns :func:`summarize`'s dict plus ``W1`` (the learned first-layer weights),
    ``n_updates`` (windows closed) and ``simulator``.
    """
    cfg = LAGNET_AM
    sim = make_protocol("lagnet_am", seed=seed)
    sim.run(cfg["duration"] if duration is None else duration, progress=progress)
    out = summarize(sim, cfg)
    out.update(W1=sim.network.W[0].ravel().tolist(), n_updates=sim.rule.n_updates,
               simulator=sim)
    return out
