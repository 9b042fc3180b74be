"""Soak: one session left running with learning on (chain preset) for a long time.

Starts its own ``gle-lab`` on 127.0.0.1 and a free port (``--preset chain``, no idle timeout),
opens one websocket-level session (:mod:`loadclient`: it loads the page and sends
``document_ready``, so the simulation runs and learns as in a browser tab) and prints, every
``--interval`` seconds, the frames/s received, the server's CPU and RSS. At the end: RSS at
start and end, the frame-rate range, and whether the session stayed up. Then it stops.

    python benchmarks/bench_soak.py                 # 60 minutes
    python benchmarks/bench_soak.py --minutes 5 --interval 30
    python benchmarks/bench_soak.py --minutes 1 --sessions 3

Bounded: ``--minutes`` of measurement plus the server start and connect timeouts.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path


from gle_lab.loadclient import GleLabServer, BokehTab, proc_sample  # noqa: E402


async def soak(url, pid, minutes, interval, sessions=1, out=print):
    tabs = [BokehTab(url, i, keep_times=False) for i in range(sessions)]
    for t in tabs:
        if not await t.connect(60):
            raise RuntimeError(f"session {t.stats.index} did not start: {t.stats.error}")
    await asyncio.gather(*(t.listen(time.monotonic() + 5.0) for t in tabs))   # warm-up
    cpu0, rss0 = proc_sample(pid)
    t_start = time.monotonic()
    end = t_start + minutes * 60
    rows = []
    out(f"{'min':>6} {'fps':>6} {'fps_min':>7} {'cores':>6} {'RSS_MB':>7} {'status':>7}")
    last_t, last_cpu = t_start, cpu0
    frames_prev = [t.stats.frames for t in tabs]
    while time.monotonic() < end - 0.5:
        until = min(end, time.monotonic() + interval)
        await asyncio.gather(*(t.listen(until) for t in tabs))
        now = time.monotonic()
        cpu, rss = proc_sample(pid)
        fps = [(t.stats.frames - f) / (now - last_t) for t, f in zip(tabs, frames_prev)]
        frames_prev = [t.stats.frames for t in tabs]
        status = "ok" if all(t.stats.status == "ready" for t in tabs) else "LOST"
        row = {"minute": (now - t_start) / 60, "fps": statistics.mean(fps), "fps_min": min(fps),
               "cores": (cpu - last_cpu) / (now - last_t), "rss_mb": rss / 2**20,
               "status": status}
        rows.append(row)
        out(f"{row['minute']:6.1f} {row['fps']:6.1f} {row['fps_min']:7.1f} {row['cores']:6.2f} "
            f"{row['rss_mb']:7.1f} {status:>7}")
        last_t, last_cpu = now, cpu
        if status != "ok":
            break
    for t in tabs:
        t.close()
    await asyncio.sleep(0.2)
    return {"rss_start_mb": rss0 / 2**20, "rows": rows,
            "errors": sum(t.stats.errors for t in tabs),
            "lost": [t.stats.error for t in tabs if t.stats.status != "ready" and
                     t.stats.status != "new"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="measured minutes (default 60)")
    p.add_argument("--interval", type=float, default=None,
                   help="seconds per report row (default: 60, or minutes×6 s if shorter)")
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--preset", default="chain")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    args = p.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60 or not 1 <= args.sessions <= 50:
        sys.exit("bench_soak: 0 < minutes <= 1440, 1..50 sessions")
    interval = args.interval or min(60.0, args.minutes * 6)
    server = GleLabServer("--preset", args.preset, "--idle-timeout", "0", "--max-sessions", "0")
    print(f"# soak: {args.sessions} session(s), preset {args.preset} (learning), "
          f"{args.minutes:g} min, {server.url}")
    try:
        res = asyncio.run(soak(server.url, server.pid, args.minutes, interval, args.sessions))
    finally:
        server.stop()
    rows = res["rows"]
    fps = [r["fps"] for r in rows]
    rss_end = rows[-1]["rss_mb"] if rows else float("nan")
    print(f"# RSS start {res['rss_start_mb']:.1f} MB, end {rss_end:.1f} MB "
          f"(max {max(r['rss_mb'] for r in rows):.1f}); frames/s min {min(fps):.1f}, "
          f"median {statistics.median(fps):.1f}, max {max(fps):.1f}; server errors "
          f"{res['errors']}; session {'lost: ' + str(res['lost']) if res['lost'] else 'up'}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0 if not res["lost"] and res["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
