"""Speed of the simulation engine, numpy reference vs compiled (numba) backend (not a test).

Run:  python benchmarks/bench_engine.py [--quick]

Prints µs per simulated step of ``Simulator.run_steps`` (median of ≥ 5 runs, compile time
excluded) for

* the chain "LagLine" protocol (paper Fig. 4) at batch 1 and 100: teacher + student, Adam,
* the small network "LagNet" (paper Fig. 5), batch 1, momentum SGD,
* a 7-layer, 53-wide network at batch 100 (1 → 53 → 5 × (53 → 53, tanh) → 10, the MNIST-1D
  shape), cross-entropy, Adam on W and b: by default (a step split between two threads
  when that is faster) and with the kernel on one thread (its CPU µs then count both),

for both backends and their ratio, next to what sampling the stimulus alone costs per step
(0 for periodic inputs, which the simulator reads from a table of one period built once).

Then the full chain protocol (``gle_core.protocols.run_protocol("lagline")``, 405 000 steps,
batch 100): the wall and CPU time of a whole fresh process (interpreter start-up, imports,
loading the cached kernel, the run); the run alone in a subprocess with the peak of Python
allocations (tracemalloc) and the peak resident memory (VmHWM); and the one-off numba compile
time (measured with an empty cache directory; ``cache=True`` keeps the compiled kernel on disk
afterwards).

The machine is shared: the 1-minute load average is printed with the results.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

# GLE_BENCH_ROOT: measure another checkout (e.g. the engine before a change) with this script
ROOT = os.environ.get("GLE_BENCH_ROOT") or \
    os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

from gle_core import GLENetwork, Simulator, inputs  # noqa: E402
from gle_core import _kernel  # noqa: E402
from gle_core.protocols import make_protocol  # noqa: E402


def mnist1d_shape(backend, batch=100, seed=0):
    """1 → 53 (linear) → 5 × (53 → 53, tanh) → 10 (linear) with the published τ mix (docs/model.md)."""
    rng = np.random.default_rng(seed)
    sizes = [1] + [53] * 6 + [10]
    acts = ["linear"] + ["tanh"] * 5 + ["linear"]
    tau_m = np.r_[np.full(18, 0.6), np.full(18, 1.2), np.full(17, 1.2)]
    tau_r = np.r_[np.full(18, 0.2), np.full(18, 0.2), np.full(17, 1.2)]
    net = GLENetwork(sizes, acts, [tau_m] * 6 + [1.2], [tau_r] * 6 + [1.2], dt=0.2,
                     gamma=0.0, beta=1.0, loss="cross_entropy", batch_size=batch, seed=seed)
    x = rng.standard_normal((360, batch, 1))
    y = np.eye(10)[rng.integers(0, 10, (360, batch))]
    return Simulator(net, inputs.ArrayInput(x, 0.2), target=inputs.ArrayInput(y, 0.2),
                     optimizer="adam", lr=1e-3, learn={"W": True, "b": True},
                     record=("t", "loss", "output", "r"), window=1000, backend=backend)


def mnist1d_shape_one_thread(backend):
    """:func:`mnist1d_shape` with the kernel kept on one thread (by default a call this
    large splits its steps between two threads when that is faster; see _kernel.run)."""
    sim = mnist1d_shape(backend)
    if backend == "numba":
        plan = sim.kernel_plan()
        if hasattr(plan, "threads"):          # engines before the split have one thread
            plan.threads = 1
    return sim


CASES = {
    # name: (factory(backend), steps per run numpy, steps per run numba)
    "chain (LagLine), batch 1": (
        lambda bk: make_protocol("lagline", batch_size=1), 3000, 20000),
    "chain (LagLine), batch 100": (
        lambda bk: make_protocol("lagline"), 2000, 20000),
    "small net (LagNet), batch 1": (
        lambda bk: make_protocol("lagnet"), 3000, 20000),
    "7 x 53 (MNIST-1D shape), batch 100": (mnist1d_shape, 150, 1500),
    "  the same, kernel on one thread": (mnist1d_shape_one_thread, 150, 1500),
}


def per_step_us(sim, n, repeats):
    """Median wall and CPU µs per step (CPU: of every thread of this process; on a shared
    machine the CPU figure is the one that compares across load)."""
    sim.run_steps(n // 4)                 # warm up: learning on, caches filled
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        sim.run_steps(n)
        wall.append((time.perf_counter() - t0) / n * 1e6)
        cpu.append((time.process_time() - c0) / n * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def sampling_us(sim, repeats=5):
    """µs per step that sampling the stimulus (and target) costs, in blocks of sim.chunk;
    0 when the simulator reads a table of one period built once (periodic inputs)."""
    dt = sim.network.dt
    table = getattr(sim.stimulus, "step_table", None)   # absent in older engines
    if table is not None and table(dt) is not None and \
            (sim.target is None or sim.target.step_table(dt) is not None):
        return 0.0
    t = np.arange(sim.chunk) * sim.network.dt + 123.0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim.stimulus.sample(t)
        if sim.target is not None:
            sim.target.sample(t)
        times.append((time.perf_counter() - t0) / sim.chunk * 1e6)
    return statistics.median(times)


# peak resident memory of the current process image (VmHWM; unlike ru_maxrss it is not
# inherited from the parent across fork/exec)
_HWM_SRC = textwrap.dedent("""
    def vm_hwm_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")
""")


_PROTOCOL_SCRIPT = _HWM_SRC + textwrap.dedent("""
    import json, resource, sys, time, tracemalloc
    sys.path.insert(0, {root!r})
    from gle_core import _kernel
    t0 = time.perf_counter()
    compile_s = _kernel.warm_up()
    from gle_core.protocols import run_protocol
    trace = {trace}
    if trace:
        tracemalloc.start()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    s = run_protocol("lagline", {mode!r}, seed=0)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    print(json.dumps(dict(wall=wall, cpu=(r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
                          peak_rss_mb=vm_hwm_mb(), tracemalloc_peak_mb=(peak or 0) / 2**20,
                          warm_up_s=compile_s, summary=s)))
""")


def run_protocol_subprocess(mode="gle", trace=False, env=None):
    import json
    code = _PROTOCOL_SCRIPT.format(root=ROOT, mode=mode, trace=trace)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def total_wall(mode="gle"):
    """Wall and CPU seconds of a fresh process that runs the full chain protocol: interpreter
    start, imports, loading the cached kernel and the 405 000 steps."""
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); "
            "from gle_core.protocols import run_protocol; "
            f"s = run_protocol('lagline', {mode!r}, seed=0); print(s['final_loss'])")
    t0 = time.perf_counter()
    r0 = os.times()
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r1 = os.times()
    return time.perf_counter() - t0, (r1.children_user - r0.children_user) + \
        (r1.children_system - r0.children_system)


def compile_time():
    """Seconds to compile the kernel with an empty cache, then to load it from the cache."""
    code = (f"import sys, time; sys.path.insert(0, {ROOT!r}); t0 = time.perf_counter(); "
            "from gle_core import _kernel; s = _kernel.warm_up(); "
            "print(time.perf_counter() - t0)")
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d)
        first = float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, env=env, check=True).stdout.split()[-1])
        second = float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, env=env, check=True).stdout.split()[-1])
    return first, second


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer steps, skip the protocol run")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    import numba
    print(f"engine {ROOT}")
    print(f"numpy {np.__version__}, numba {numba.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: times vary with it)")
    t0 = time.perf_counter()
    _kernel.warm_up()
    print(f"kernel ready in {time.perf_counter() - t0:.2f} s (loaded from the on-disk cache "
          "unless this is the first run)\n")

    scale = 0.2 if args.quick else 1.0
    head = (f"{'case':36s} {'numpy µs/step':>14s} {'numba µs/step':>14s} {'ratio':>7s} "
            f"{'stimulus µs/step':>17s} {'CPU numpy':>10s} {'CPU numba':>10s}")
    print(head)
    print("-" * len(head))
    for name, (factory, n_np, n_nb) in CASES.items():
        res, cpu = {}, {}
        for backend, n in (("numpy", n_np), ("numba", n_nb)):
            sim = factory(backend)
            sim.backend = backend
            res[backend], cpu[backend] = per_step_us(sim, max(50, int(n * scale)),
                                                     args.repeats)
        samp = sampling_us(factory("numpy"))
        print(f"{name:36s} {res['numpy']:14.1f} {res['numba']:14.2f} "
              f"{res['numpy'] / res['numba']:6.1f}x {samp:17.2f} {cpu['numpy']:10.1f} "
              f"{cpu['numba']:10.2f}", flush=True)
    print("(median of", args.repeats, "runs; every step includes reading the stimulus; "
          "wall and CPU µs/step)")

    if args.quick:
        return
    first, second = compile_time()
    print(f"\nnumba compile time (empty cache): {first:.1f} s; later processes load it from "
          f"the cache in {second:.2f} s")
    print("\nfull chain protocol (405 000 steps, batch 100), whole process (start-up, imports, "
          "cached kernel, run):")
    for mode in ("gle", "ie"):
        w, c = total_wall(mode)
        print(f"  {mode.upper():3s}: wall {w:.2f} s, CPU {c:.2f} s")
    print("\nfull chain protocol (405 000 steps, batch 100), numba backend, fresh process:")
    for mode in ("gle", "ie"):
        r = run_protocol_subprocess(mode)
        s = r["summary"]
        print(f"  {mode.upper():3s}: wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB | final loss {s['final_loss']:.2e}, "
              f"max |ΔW| {s['max_abs_W_error']:.1e}, max |Δτm| {s['max_abs_tau_m_error']:.1e}")
    r = run_protocol_subprocess("gle", trace=True)
    print(f"  GLE under tracemalloc: peak Python allocations {r['tracemalloc_peak_mb']:.1f} MB "
          f"(wall {r['wall']:.1f} s)")
    base = {}
    for label, imports in (("numpy + scipy.special", "import numpy, scipy.special"),
                           ("+ numba", "import numpy, scipy.special, numba"),
                           ("+ load the cached kernel",
                            "import gle_core._kernel as k; k.warm_up()")):
        code = (f"import sys; sys.path.insert(0, {ROOT!r}); {imports}\n"
                + _HWM_SRC + "print(vm_hwm_mb())")
        base[label] = float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                           text=True, check=True, cwd=ROOT).stdout.split()[-1])
    print("  peak RSS of a process that only does the imports: " +
          ", ".join(f"{k} {v:.0f} MB" for k, v in base.items()))
    print(f"  load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
