"""Without numba (and llvmlite) the engine and the dashboard still work, on numpy.

numba is the default fast path but optional: a child interpreter is started with both
imports blocked (as ``GLE_LAB_WITHOUT_NUMBA=1`` does for the whole suite in ``make test``),
runs the chain protocol with ``backend="auto"`` and a dashboard frame, and must give the
numpy reference's numbers.
"""
import json
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, sys
sys.modules["numba"] = None
sys.modules["llvmlite"] = None
from gle_core import _kernel
from gle_core.protocols import make_protocol, run_protocol
sim = make_protocol("lagline", seed=3, batch_size=4)
out = {"have_numba": _kernel.HAVE_NUMBA, "backend": sim.backend,
       "summary": run_protocol("lagline", seed=3, duration=60.0, batch_size=4)}
from gle_lab.main import Dashboard
d = Dashboard("chain")
d.tick(n_steps=200)
out["dashboard_t"] = d.state.sim.t
out["failed"] = d.state.failed
print(json.dumps(out, default=float))
"""


def test_engine_and_dashboard_run_without_numba():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["have_numba"] is False
    assert out["failed"] is False and out["dashboard_t"] > 1.0
    want = _numpy_reference()
    for key in ("W", "tau_m", "final_loss"):
        np.testing.assert_allclose(out["summary"][key], want[key], rtol=1e-12, atol=0)


def _numpy_reference():
    """The same run in this process, on the numpy reference backend."""
    from gle_core.protocols import PROTOCOLS, make_protocol, summarize
    sim = make_protocol("lagline", seed=3, batch_size=4)
    sim.backend = "numpy"
    sim.run(60.0)
    return json.loads(json.dumps(summarize(sim, PROTOCOLS["lagline"]), default=float))


def test_the_environment_switch_reaches_child_processes():
    """``GLE_LAB_WITHOUT_NUMBA`` makes the engine take its numpy path in a process the suite
    starts (a CLI run, a Dask worker) as well, where the test's import block does not reach."""
    import os
    code = "from gle_core import _kernel; print(_kernel.HAVE_NUMBA)"
    env = dict(os.environ, GLE_LAB_WITHOUT_NUMBA="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
    env["GLE_LAB_WITHOUT_NUMBA"] = "0"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.stdout.strip() == "True", out.stderr
