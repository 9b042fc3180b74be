"""One visitor storms a control; how does a neighbour in the same process fare?

Starts ``gle-lab`` on 127.0.0.1 (one process), connects two websocket clients (A and B, see
:mod:`loadclient`), lets B stream for 2 s, then has A change a control ``--rate`` times a
second for ``--seconds`` while B listens, and prints B's frames/s and longest gap between
frames, and A's. Storms: ``seed`` (a new random draw each time), ``preset`` (alternating
between two presets: a new network shape, so every figure is rebuilt), ``sliders`` (τr and
ω, 100 changes/s, some out of range).

    python benchmarks/bench_storm.py                   # all three storms, 4 changes/s, 3 s
    python benchmarks/bench_storm.py --storm seed --rate 10
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time


from gle_lab.loadclient import GleLabServer, BokehTab  # noqa: E402


def _model(tab, kind, title_part):
    return next(m["id"] for m in tab.find_models(kind)
                if title_part in str(m["attributes"].get("title")))


def _gap(times):
    return max((b - a for a, b in zip(times, times[1:])), default=float("nan"))


async def storm(url, kind, rate, seconds):
    a, b = BokehTab(url, 0), BokehTab(url, 1)
    assert await a.connect(60) and await b.connect(60)
    assert await a.wait_complete(60)          # every control is on the page
    await asyncio.gather(a.listen(time.monotonic() + 2.0), b.listen(time.monotonic() + 2.0))
    if kind == "seed":
        target = _model(a, "Spinner", "Seed")
        values = [{"attr": "value", "new": i + 1} for i in range(10_000)]
    elif kind == "preset":
        select = next(m for m in a.find_models("panel.models.widgets.CustomSelect")
                      if "Preset" in str(m["attributes"].get("title")))
        target = select["id"]
        first = select["attributes"]["value"]        # the options are the presets' titles
        options = [o[0] if isinstance(o, list) else o for o in select["attributes"]["options"]]
        other = next(o for o in options if o != first)
        values = [{"attr": "value", "new": (other, first)[i % 2]} for i in range(10_000)]
    else:
        target = _model(a, "Slider", "τr")
        rate = 100.0
        values = [{"attr": "value", "new": (-1.0 + 0.002 * i) if i % 10 else 9.0}
                  for i in range(10_000)]
    fa, fb = a.stats.frames, b.stats.frames
    na, nb = len(a.stats.frame_times), len(b.stats.frame_times)
    t0 = time.monotonic()
    end = t0 + seconds

    async def drive():
        i = 0
        while time.monotonic() < end:
            await a.send_patch([{"kind": "ModelChanged", "model": {"id": target}, **values[i]}])
            i += 1
            await asyncio.sleep(1.0 / rate)
        return i
    sent, *_ = await asyncio.gather(drive(), a.listen(end + 0.5), b.listen(end + 0.5))
    dt = time.monotonic() - t0
    res = {"changes": sent, "rate": sent / seconds,
           "b_fps": (b.stats.frames - fb) / dt, "b_gap": _gap(b.stats.frame_times[nb:]),
           "a_fps": (a.stats.frames - fa) / dt, "a_gap": _gap(a.stats.frame_times[na:]),
           "errors": a.stats.errors + b.stats.errors,
           "ok": a.stats.status == "ready" and b.stats.status == "ready"}
    a.close()
    b.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--storm", choices=["seed", "preset", "sliders", "all"], default="all")
    ap.add_argument("--rate", type=float, default=4.0, help="changes per second (seed, preset)")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'storm':8s} {'changes/s':>9s} {'B frames/s':>10s} {'B max gap s':>11s} "
          f"{'A frames/s':>10s} {'A max gap s':>11s} {'errors':>6s}")
    srv = GleLabServer("--max-sessions", "0", "--idle-timeout", "0")
    try:
        kinds = ["seed", "preset", "sliders"] if args.storm == "all" else [args.storm]
        for kind in kinds:
            r = asyncio.run(storm(srv.url, kind, args.rate, args.seconds))
            print(f"{kind:8s} {r['rate']:9.1f} {r['b_fps']:10.1f} {r['b_gap']:11.2f} "
                  f"{r['a_fps']:10.1f} {r['a_gap']:11.2f} {r['errors']:6d}"
                  + ("" if r["ok"] else "  (a client lost its session)"))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
