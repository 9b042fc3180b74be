"""Stored outputs of the engine for tests/core/test_regression.py (the before/after check).

Run from the repository root::

    .venv/bin/python tests/core/make_regression_data.py

It runs short versions of the published protocols and a few frames of a dashboard session of
every preset in every error mode, and writes parameters, losses and recorded traces to
``tests/core/data/regression.npz``. The file committed with the tests was generated from the
engine *before* issue #12 (one simulation loop, learning rules as parts, the kernel on a plan)
so that the test proves the rewrite computes the same numbers. Regenerate it only when the
numbers are meant to change, and say why in the commit.

Each case is a function returning ``{name: array}``; the test imports :data:`CASES` and
compares what the current code returns with the stored arrays.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "regression.npz")

#: signals stored from every simulator
TRACES = ("t", "loss", "output", "r", "error", "inst_error", "prospective_voltage", "W",
          "tau_m")


def _params(net, prefix=""):
    out = {}
    for kind in ("W", "b", "tau_m", "tau_r"):
        out[prefix + kind] = np.concatenate([a.ravel() for a in net.parameters(kind)])
    return out


def _traces(sim, names=TRACES, prefix="", last=None):
    out = {}
    for name in names:
        if name in sim.probes:
            data = sim.probes[name].last(last)
            out[prefix + name] = np.array(data, dtype=float)
    return out


# ----------------------------------------------------------------------------- protocols

def _protocol(name, error_mode, backend, steps, learn_from):
    from gle_core.protocols import make_protocol
    sim = make_protocol(name, seed=0, error_mode=error_mode)
    sim.backend = backend
    sim.learn_from = learn_from
    sim.run_steps(steps)
    out = _params(sim.network)
    out.update(_traces(sim, ("t", "loss", "W", "tau_m")))
    out["last_loss"] = np.array(sim.last_loss)
    out["u"] = np.concatenate([a.ravel() for a in sim.network.u])
    out["error"] = np.concatenate([a.ravel() for a in sim.network.error])
    return out


def lagline(error_mode, backend):
    """Chain (paper Fig. 4), batch 100, Adam: 3000 steps, learning from t = 5 a.u."""
    return lambda: _protocol("lagline", error_mode, backend, 3000, 5.0)


def lagnet(backend):
    """Small network (paper Fig. 5), GLE student: 3000 steps, learning from t = 5 a.u."""
    return lambda: _protocol("lagnet", "gle", backend, 3000, 5.0)


def _am_simulator(cfg, seed):
    # before issue #12: gle_core.adjoint.build_bptt_trainer(cfg, seed=seed, record=..,
    # history=500, record_every=10), a BPTTTrainer; now a Simulator with the windowed rule
    from gle_core.config import build_simulator
    from gle_core.protocols import student_config
    sim = build_simulator(student_config(cfg, seed), seed=seed, record=("t", "loss", "W"),
                          window=500, record_every=10)
    sim.backend = "numpy"       # the reference (the trainer had no compiled path)
    return sim


def lagnet_am():
    """Small network, AM student (windows of 3 a.u., Eq. 9 adjoint): 40 a.u., from 5 a.u."""
    from gle_core.protocols import LAGNET_AM
    tr = _am_simulator(LAGNET_AM, 0)
    tr.learn_from = 5.0
    tr.run(40.0)
    out = _params(tr.network)
    out.update(_traces(tr, ("t", "loss", "W")))
    out["last_loss"] = np.array(tr.last_loss)
    out["u"] = np.concatenate([a.ravel() for a in tr.network.u])
    return out


def lagnet_am_exact():
    """As :func:`lagnet_am` with the exact reverse mode and γ = 0.5 (the error path)."""
    import copy
    from gle_core.protocols import LAGNET_AM
    cfg = copy.deepcopy(LAGNET_AM)
    cfg["gamma"] = 0.5
    cfg["learning"]["method"] = "exact"
    tr = _am_simulator(cfg, 1)
    tr.learn_from = 2.0
    tr.run(20.0)
    out = _params(tr.network)
    out.update(_traces(tr, ("t", "loss", "W")))
    out["last_loss"] = np.array(tr.last_loss)
    return out


# ----------------------------------------------------------------------------- dashboard

def dashboard(preset, mode):
    """A dashboard session: learning of W on from t = 1 a.u., 12 frames of 50 steps."""
    def run():
        # the dashboard's session state (what gle_lab.main.Dashboard.tick advances; the
        # stored file was made through Dashboard.tick, whose views only read the state)
        from gle_lab.state import LabState
        st = LabState(preset=preset, seed=0)
        if mode != "gle":
            st.error_mode = mode
        st.learn_W = True
        st.sim.learn_from = 1.0
        for _ in range(12):
            st.advance(n_steps=50)
        assert not st.failed, st.message
        out = _params(st.net)
        out.update(_traces(st.sim, TRACES, last=150))
        if st.sim.teacher is not None:
            # stored from the dashboard's batch-1 mirror of the teacher, now the simulator's
            # own record of its teacher's rates (stream 0)
            out["teacher_r"] = st.sim.probes["teacher_r"].last(150)
        out["t_now"] = np.array(st.sim.t)
        return out
    return run


CASES = {}
for _mode in ("gle", "ie"):
    for _bk in ("numpy", "numba"):
        CASES[f"lagline_{_mode}_{_bk}"] = lagline(_mode, _bk)
for _bk in ("numpy", "numba"):
    CASES[f"lagnet_gle_{_bk}"] = lagnet(_bk)
CASES["lagnet_am"] = lagnet_am
CASES["lagnet_am_exact_gamma"] = lagnet_am_exact
for _preset in ("phase_inversion", "le_limit", "leaky_integrator", "chain", "small_network"):
    for _mode in ("gle", "ie", "am"):
        CASES[f"dash_{_preset}_{_mode}"] = dashboard(_preset, _mode)


def main():
    out = {}
    for case, fn in CASES.items():
        print(case, flush=True)
        for key, value in fn().items():
            out[f"{case}/{key}"] = np.asarray(value)
    rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                         cwd=HERE).stdout.strip()
    out["__commit__"] = np.array(rev)
    os.makedirs(os.path.dirname(DATA), exist_ok=True)
    np.savez_compressed(DATA, **out)
    print(f"wrote {DATA} ({os.path.getsize(DATA) / 1024:.0f} KB) from commit {rev}")


if __name__ == "__main__":
    sys.exit(main())
