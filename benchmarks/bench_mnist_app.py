"""What the MNIST-1D preset costs and what it shows (issue #14). Prints figures; asserts nothing.

    python benchmarks/bench_mnist_app.py cost                 # server CPU per frame / sample
    python benchmarks/bench_mnist_app.py trained              # first prediction, accuracy
    python benchmarks/bench_mnist_app.py scratch --minutes 2 5 10 --mode gle
    python benchmarks/bench_mnist_app.py neighbour            # phase-inversion fps beside it

* ``cost``: one session in-process, its page attached to a Bokeh document, at full speed:
  server CPU per frame (simulation + views) and per simulated sample, for 1, 10, 100 streams.
* ``trained``: a fresh ``gle-lab`` server, once it has preloaded MNIST-1D (its log line); a
  websocket client (gle_lab.loadclient) requests
  ``?preset=mnist1d`` and times the first frame that shows a prediction (running, and of a
  completed sample). Then, in-process, the running accuracy over 200 validation samples for
  several seeds (sample orders) against the checkpoint's validation accuracy.
* ``scratch``: the frame loop in real time (one ``tick`` per 100 ms, as the periodic callback
  runs it) at full speed from scratch; running accuracy (last 200 samples of the stream shown)
  and validation accuracy after the given minutes.
* ``neighbour``: ``gle-lab --num-procs 2``; one MNIST-1D session from scratch at full speed,
  then one phase-inversion session measured for frames/s (the other presets' 30 fps loop).
"""
from __future__ import annotations

import argparse
import asyncio
import re
import resource
import sys
import time


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().strip()


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------- cost
def bench_cost(frames=40):
    from bokeh.document import Document

    from gle_lab.mnist import BUDGET_S, FRAME_MS, MnistDashboard
    print(f"frame budget: {BUDGET_S * 1000:.0f} ms of simulation per {FRAME_MS} ms frame; "
          f"loadavg {loadavg()}")
    print(f"{'start':>8} {'streams':>7} {'ms CPU/frame':>12} {'sim ms':>7} {'views ms':>8} "
          f"{'steps/frame':>11} {'samples/frame':>13} {'ms CPU/sample':>13} {'µs/step':>8}")
    for start, streams in (("trained", 1), ("scratch", 1), ("scratch", 10),
                           ("scratch", 100)):
        dash = MnistDashboard(start=start, streams=streams, full_speed=True)
        dash.layout.get_root(Document())
        for _ in range(5):
            dash.tick()                                # warm-up: kernel, chunk size
        del dash.tick_seconds[:], dash.sim_seconds[:], dash.steps_done[:]
        c0 = cpu_s()
        for _ in range(frames):
            dash.tick()
        cpu = (cpu_s() - c0) / frames
        steps = sum(dash.steps_done) / frames
        sim = sum(dash.sim_seconds) / frames
        views = sum(dash.tick_seconds) / frames - sim
        samples = steps * streams / 360
        print(f"{start:>8} {streams:>7} {cpu * 1000:>12.1f} {sim * 1000:>7.1f} "
              f"{views * 1000:>8.1f} {steps:>11.0f} {samples:>13.2f} "
              f"{cpu * 1000 / max(samples, 1e-9):>13.2f} {sim / max(steps, 1) * 1e6:>8.0f}")
        dash.destroy()
    print(f"loadavg {loadavg()}")


# ---------------------------------------------------------------------------- trained
async def _first_prediction(url):
    from gle_lab.loadclient import BokehTab
    tab = BokehTab(url + "?preset=mnist1d", frame_column="o0")
    t0 = time.monotonic()
    ok = await tab.connect(60)
    if not ok:
        return None
    t_doc = time.monotonic() - t0
    running = completed = None
    while completed is None and time.monotonic() - t0 < 60:
        msg = await tab.next_message(60)
        if msg is None:
            break
        header, content, _ = msg
        if header["msgtype"] != "PATCH-DOC":
            continue
        now = time.monotonic() - t0
        # the HTML pane's text travels escaped (&lt;b ...): a prediction, not the "–" yet
        if running is None and re.search(r"Prediction so far: (?:<|&lt;)b", content):
            running = now
        if "last sample: true" in content:
            completed = now
    tab.close()
    return t_doc, running, completed


def bench_trained(seeds=(42, 1, 2, 3, 4), n=200):
    from gle_lab.loadclient import GleLabServer
    from gle_lab.mnist import MnistLab, checkpoint_meta
    server = GleLabServer("--idle-timeout", "0")
    try:
        # a visitor choosing the preset on a running server: after its start-up warm-up
        t0 = time.monotonic()
        while not any("MNIST-1D preloaded" in line for line in server.log):
            if time.monotonic() - t0 > 120:
                break
            time.sleep(0.05)
        res = asyncio.run(_first_prediction(server.url))
    finally:
        server.stop()
    if res is None:
        print("trained start: the session was refused or failed")
    else:
        t_doc, running, completed = res
        print(f"trained start, fresh server: document {t_doc:.2f} s after the page request; "
              f"first running prediction shown {running:.2f} s; first completed sample's "
              f"prediction {completed:.2f} s (loadavg {loadavg()})")
    meta = checkpoint_meta()
    print(f"checkpoint: {meta['command']} — {meta['epochs_completed']} epochs, val_acc "
          f"{meta['val_acc']:.1f} %")
    accs = []
    for seed in seeds:
        lab = MnistLab(start="trained", seed=seed)
        t0 = time.perf_counter()
        while lab.samples < n:
            lab.advance(n_steps=2000)
        acc = 100.0 * sum(a == b for a, b in list(lab.results)[:n]) / n
        accs.append(acc)
        print(f"  seed {seed}: running accuracy over the first {n} validation samples "
              f"{acc:.1f} % (checkpoint {meta['val_acc']:.1f} %, Δ {acc - meta['val_acc']:+.1f});"
              f" {time.perf_counter() - t0:.1f} s")
    mean = sum(accs) / len(accs)
    print(f"  mean over {len(accs)} orders: {mean:.1f} % (Δ {mean - meta['val_acc']:+.1f}); "
          f"binomial std of one 200-sample estimate ≈ "
          f"{(meta['val_acc'] * (100 - meta['val_acc']) / n) ** 0.5:.1f} points")


# ---------------------------------------------------------------------------- scratch
def bench_scratch(minutes, mode, streams=100, seed=42):
    from gle_lab.mnist import FRAME_MS, MnistDashboard
    dash = MnistDashboard(start="scratch", mode=mode, streams=streams, seed=seed,
                          full_speed=True)
    lab = dash.state
    marks = sorted(minutes)
    t0 = time.monotonic()
    c0 = cpu_s()
    period = FRAME_MS / 1000
    nxt = t0
    print(f"from scratch, {mode.upper()}, {streams} streams, full speed, real time "
          f"(one frame per {FRAME_MS} ms); loadavg {loadavg()}", flush=True)
    while marks:
        now = time.monotonic()
        if now < nxt:
            time.sleep(nxt - now)
        nxt += period
        if nxt < time.monotonic() - period:        # late: skip frames, as Tornado does
            nxt = time.monotonic()
        dash.tick()
        el = time.monotonic() - t0
        if el >= marks[0] * 60:
            m = marks.pop(0)
            vals = lab.validations[-1:] or [(None, float("nan"))]
            print(f"  {m:>4.1f} min: running accuracy (last 200 samples shown) "
                  f"{lab.running_accuracy():5.1f} %; samples presented "
                  f"{lab.sim.n_steps * streams // 360}; epochs {lab.epoch}; last validation "
                  f"{vals[-1][1]:.1f} % (epoch {vals[-1][0]}); CPU {cpu_s() - c0:.0f} s "
                  f"(incl. validation threads); loadavg {loadavg()}", flush=True)
    dash.destroy()


# ---------------------------------------------------------------------------- neighbour
def _worker_cpu(server):
    """CPU seconds of every server process (the parent and its --num-procs workers)."""
    from gle_lab.loadclient import proc_sample, process_tree
    return {p: proc_sample(p, tree=False)[0] for p in process_tree(server.pid)}


async def _neighbour(server, warmup, duration):
    from gle_lab.loadclient import BokehTab, run_load
    url = server.url
    alone = await run_load(url, 1, duration, warmup=2.0)
    heavy = BokehTab(url + "?preset=mnist1d&start=scratch", frame_column="o0")
    ok = await heavy.connect(60)
    t0 = time.monotonic()
    frames = [0]

    async def drain():
        # every MNIST-1D frame that simulated streams rows (errors, outputs): count those
        while True:
            msg = await heavy.next_message(None)
            if msg is None:
                return
            if msg[0]["msgtype"] == "PATCH-DOC" and "ColumnsStreamed" in str(msg[1]):
                frames[0] += 1
    listener = asyncio.ensure_future(drain()) if ok else None
    await asyncio.sleep(warmup)
    cpu0 = _worker_cpu(server)
    res = await run_load(url, 1, duration, warmup=2.0)
    cpu1 = _worker_cpu(server)
    mnist_fps = frames[0] / max(time.monotonic() - t0, 1e-9)
    if listener is not None:
        listener.cancel()
    heavy.close()
    span = duration + 2.0
    per_proc = {p: (cpu1.get(p, 0.0) - c) / span for p, c in cpu0.items()}
    return ok, alone, res, mnist_fps, per_proc


def bench_neighbour(num_procs=2, duration=20.0):
    from gle_lab.loadclient import GleLabServer
    server = GleLabServer("--idle-timeout", "0", "--num-procs", str(num_procs))
    try:
        ok, alone, res, mnist_fps, per_proc = asyncio.run(_neighbour(server, 8.0, duration))
    finally:
        server.stop()
    print(f"--num-procs {num_procs}: phase-inversion alone {alone.fps_median:.1f} frames/s; "
          f"with one MNIST-1D session from scratch at full speed "
          f"({'ready' if ok else 'FAILED'}, {mnist_fps:.1f} streaming patches/s): "
          f"{res.fps_median:.1f} frames/s over {duration:.0f} s; server processes' cores "
          f"busy: {', '.join(f'{c:.2f}' for c in per_proc.values())}; loadavg {loadavg()}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["cost", "trained", "scratch", "neighbour"])
    p.add_argument("--minutes", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    p.add_argument("--mode", default="gle", choices=["gle", "ie"])
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--num-procs", type=int, default=2)
    p.add_argument("--duration", type=float, default=20.0)
    a = p.parse_args(argv)
    if a.what == "cost":
        bench_cost()
    elif a.what == "trained":
        bench_trained()
    elif a.what == "scratch":
        bench_scratch(a.minutes, a.mode, a.streams)
    else:
        bench_neighbour(a.num_procs, a.duration)


if __name__ == "__main__":
    sys.exit(main())
