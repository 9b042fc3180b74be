"""MNIST-1D speed and scale figures (issue #13 targets; prints, asserts nothing).

    python benchmarks/bench_mnist1d.py [--steps 2880] [--repeats 5] [--real-epochs 5]
                                       [--skip-dask] [--dask-epochs 5]

1. Seconds per epoch of the 15k and 42k networks (4000 samples = 14 400 training steps at
   batch 100, plus the 1000-sample validation at batch 1000), split into training and
   validation, for the numpy and numba backends. The training part is measured on
   ``--steps`` steps (360-step calls, as a run makes them) and scaled to 14 400; numba on
   one thread, on two (a step's layers split between them) and with the default (the
   faster of the two at the time), interleaved ``--repeats`` times, medians. Validation
   (median of 3, numpy: 1 run) by the numpy reference, the compiled pass on one thread
   and on every CPU this process may use (``taskset -c 1`` for single-core figures).
2. ``--real-epochs N``: N real epochs (``mnist1d.train``, checkpoints included) per network
   and thread setting, interleaved; the median of their wall time and of its training
   part.
3. Dask: 4 seeds of a shortened run (``--dask-epochs`` epochs of 400 samples) on a
   LocalCluster of 2 worker processes vs the same 4 runs one after another in this process
   (one thread per run, and the default: a step split between two threads); the ratio
   to the first (target ≤ 0.6 on 2 cores) and the resident memory of every worker.

The machine's load (``/proc/loadavg``) is printed with the figures: on a shared machine
they scale with it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time


from gle_core import Simulator
from gle_core._kernel import HAVE_NUMBA
from gle_core.datasets import LabelledSequences, _cpus, evaluate
from gle_core.mnist1d import DT, N_CLASSES, RunConfig, load_data, make_network, train

STEPS_PER_EPOCH = 14400


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return ["?"] * 3


def _training_sim(data, net_name, backend, threads):
    src = LabelledSequences(data["x_train"], data["y_train"], N_CLASSES, DT, 100, seed=0)
    net = make_network(net_name, "gle", 0, 100)
    sim = Simulator(net, src.inputs, target=src.targets, optimizer="adam", lr=1e-3,
                    learn={"W": True, "b": True}, record=("output", "loss"), record_every=1,
                    backend=backend, window=360)
    if backend == "numba" and threads != "default":
        sim.kernel_plan().threads = threads
    sim.run_steps(360)                                   # compile / warm up
    return sim


def train_seconds_per_step(data, net_name, backend, steps, threads="default", sim=None):
    """Wall seconds per training step over ``steps`` steps in 360-step calls (``threads``:
    1, 2 or "default"; ``sim``: continue that simulator)."""
    sim = sim if sim is not None else _training_sim(data, net_name, backend, threads)
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        sim.run_steps(360)
        done += 360
    return (time.perf_counter() - t0) / done


def validation_seconds(data, net_name, backend, threads=None, repeats=3):
    """Median wall seconds of one validation pass (the compiled pass warmed up first)."""
    val = LabelledSequences(data["x_val"], data["y_val"], N_CLASSES, DT, 1000, shuffle=False)
    net = make_network(net_name, "gle", 0, 100)
    if backend == "numba":
        evaluate(net, LabelledSequences(data["x_val"][:10], data["y_val"][:10], N_CLASSES,
                                        DT, 10, shuffle=False), backend=backend)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate(net, val, backend=backend, threads=threads)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _median(xs):
    return statistics.median(xs)


def bench_epochs(data, steps, repeats):
    print(f"== seconds per epoch (training {STEPS_PER_EPOCH} steps at batch 100 scaled from "
          f"{steps}, medians of {repeats} interleaved runs; validation 1000 samples at "
          f"batch 1000)   loadavg {' '.join(loadavg())}")
    cpus = _cpus()
    for net_name in ("15k", "42k"):
        vals = {"numpy": validation_seconds(data, net_name, "numpy", repeats=1)}
        if HAVE_NUMBA:
            vals["numba"] = validation_seconds(data, net_name, "numba", threads=1)
            if cpus > 1:
                vals[f"numba {cpus} threads"] = validation_seconds(data, net_name, "numba")
        print(f"{net_name:>4} validation: " + ", ".join(f"{k} {v:5.2f} s"
                                                        for k, v in vals.items()), flush=True)
        t_val = vals["numba" if cpus == 1 or not HAVE_NUMBA else f"numba {cpus} threads"] \
            if HAVE_NUMBA else vals["numpy"]
        if HAVE_NUMBA:
            modes = [1, 2, "default"] if cpus > 1 else [1, "default"]
            sims = {m: _training_sim(data, net_name, "numba", m) for m in modes}
            got = {m: [] for m in modes}
            for _ in range(repeats):
                for m in modes:
                    got[m].append(train_seconds_per_step(data, net_name, "numba", steps,
                                                         sim=sims[m]))
            for m in modes:
                s = _median(got[m])
                label = f"numba {m} thr" if m != "default" else "numba default"
                print(f"{net_name:>4} {label:>15}: {s * 1e3:6.3f} ms/step (runs "
                      f"{', '.join(f'{x * 1e3:.3f}' for x in got[m])}) -> training "
                      f"{s * STEPS_PER_EPOCH:6.1f} s + validation {t_val:5.2f} s = "
                      f"{s * STEPS_PER_EPOCH + t_val:6.1f} s/epoch", flush=True)
        s = train_seconds_per_step(data, net_name, "numpy", max(360, steps // 4))
        print(f"{net_name:>4} {'numpy':>15}: {s * 1e3:6.3f} ms/step -> training "
              f"{s * STEPS_PER_EPOCH:6.1f} s + validation {vals['numpy']:5.2f} s = "
              f"{s * STEPS_PER_EPOCH + vals['numpy']:6.1f} s/epoch", flush=True)
    print(f"loadavg {' '.join(loadavg())}")


def bench_real_epochs(data, n):
    """``n`` real one-epoch runs (``mnist1d.train``, full protocol) per network and thread
    setting (1 and the default), interleaved; wall seconds of epoch 1 and its training
    part."""
    print(f"== real epochs (mnist1d.train, 4000 + 1000 samples, checkpoints), {n} per "
          f"setting, interleaved   loadavg {' '.join(loadavg())}")
    tmp = tempfile.mkdtemp(prefix="bench-mnist1d-epochs-")
    settings = [1, None] if _cpus() > 1 else [None]
    try:
        train(RunConfig(seed=1, epochs=1, train_samples=100, val_samples=10, hidden=4,
                        batch_size=10), os.path.join(tmp, "warm"), data=data)
        for net_name in ("15k", "42k"):
            got = {t: [] for t in settings}
            for r in range(n):
                for t in settings:
                    out = os.path.join(tmp, f"{net_name}-{t}-{r}")
                    row = train(RunConfig(net=net_name, seed=42, epochs=1, threads=t), out,
                                data=data)[-1]
                    got[t].append((row["wall_s"], row["train_s"]))
                    shutil.rmtree(out, ignore_errors=True)
            for t in settings:
                wall = _median([w for w, _ in got[t]])
                tr = _median([x for _, x in got[t]])
                name = "1 thread" if t == 1 else "default"
                print(f"{net_name:>4} {name:>9}: {wall:5.2f} s/epoch = training {tr:5.2f} s "
                      f"+ validation {wall - tr:4.2f} s   (epochs "
                      f"{', '.join(f'{w:.2f}' for w, _ in got[t])})", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"loadavg {' '.join(loadavg())}")


def bench_dask(data, epochs):
    from distributed import Client, LocalCluster

    from gle_core.distributed import run_seeds
    cfgs = [RunConfig(seed=s, epochs=epochs, train_samples=400, val_samples=200)
            for s in (12, 32, 34, 42)]
    print(f"== Dask: 4 seeds x {epochs} epochs of 400 samples (15k)   loadavg "
          f"{' '.join(loadavg())}")
    tmp = tempfile.mkdtemp(prefix="bench-mnist1d-")
    try:
        # both sides start warm: the kernel compiled/loaded, the data in memory
        train(RunConfig(seed=1, epochs=1, train_samples=100, val_samples=10, hidden=4,
                        batch_size=10), os.path.join(tmp, "warm"), data=data)
        t0 = time.perf_counter()
        for c in cfgs:
            train(RunConfig(**dict(c.as_dict(), threads=1)), os.path.join(tmp, "seq1"),
                  data=data)
        t_seq = time.perf_counter() - t0
        print(f"sequential (this process, 1 thread per run): {t_seq:6.1f} s", flush=True)
        t0 = time.perf_counter()
        for c in cfgs:
            train(c, os.path.join(tmp, "seq"), data=data)
        t_seq2 = time.perf_counter() - t0
        print(f"sequential (this process, default threads):  {t_seq2:6.1f} s", flush=True)
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        try:
            def warm():
                train(RunConfig(seed=1, epochs=1, train_samples=100, val_samples=10,
                                hidden=4, batch_size=10),
                      tempfile.mkdtemp(prefix="bench-mnist1d-warm-"))
            client.run(warm)
            t0 = time.perf_counter()
            run_seeds(cfgs, os.path.join(tmp, "dask"), client=client, echo=False,
                      plots=False)
            t_dask = time.perf_counter() - t0
            import psutil
            rss = client.run(lambda: psutil.Process().memory_info().rss)
        finally:
            client.close()
            cluster.close()
        print(f"2 Dask workers (1 thread per task):          {t_dask:6.1f} s   ratio "
              f"{t_dask / t_seq:.2f} to one thread (target <= 0.6), {t_dask / t_seq2:.2f} to "
              f"the default")
        for addr, b in rss.items():
            print(f"  worker {addr}: {b / 2**20:6.0f} MiB resident")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2880)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--real-epochs", type=int, default=0)
    p.add_argument("--skip-dask", action="store_true")
    p.add_argument("--skip-epochs", action="store_true")
    p.add_argument("--dask-epochs", type=int, default=5)
    args = p.parse_args(argv)
    data = load_data()
    if not args.skip_epochs:
        bench_epochs(data, args.steps, args.repeats)
    if args.real_epochs:
        bench_real_epochs(data, args.real_epochs)
    if not args.skip_dask:
        bench_dask(data, args.dask_epochs)
    print(f"loadavg at the end {' '.join(loadavg())}")


if __name__ == "__main__":
    main()
