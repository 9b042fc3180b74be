"""Server capacity: frames/s per session for 1, 5, 10, 20, 40 concurrent sessions.

Starts its own ``gle-lab`` server on 127.0.0.1 and a free port (no session cap, no idle
timeout, fast reaping), runs :mod:`loadclient` at each level for ``--duration`` seconds and
prints one row per level: sessions, ready/refused/failed, median and minimum frames/s per
session, PATCH-DOC messages/s, received Mbit/s, server CPU (cores) and RSS. Then it stops the
server. Target: 20 sessions at >= 15 frames/s each, no errors.

    python benchmarks/bench_load.py                      # 1,5,10,20,40 × 20 s
    python benchmarks/bench_load.py --levels 1,20 -d 10 --num-procs 2
    python benchmarks/bench_load.py --echo-ranges        # clients echo the x range like BokehJS
    python benchmarks/bench_load.py --url http://127.0.0.1:8080/gle-lab --server-pid PID

Bounded: each level takes at most connect (60 s) + warmup + duration + 3 s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from gle_lab.loadclient import HEADER, GleLabServer, run_arrival, run_load

TARGET_SESSIONS, TARGET_FPS = 20, 15.0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,5,10,20,40", help="session counts (comma-separated)")
    p.add_argument("-d", "--duration", type=float, default=None,
                   help="measured s per level (default 20), or after the arrival (default 60: "
                        "the issue's minute)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--num-procs", type=int, default=1)
    p.add_argument("--preset", default=None)
    p.add_argument("--echo-ranges", action="store_true",
                   help="clients send the x range back after every frame (as BokehJS does)")
    p.add_argument("--url", default=None, help="measure a running server instead")
    p.add_argument("--server-pid", type=int, default=None, help="its pid (for CPU/RSS)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--arrival", default=None, metavar="N/T",
                   help="instead of levels: N visitors arriving evenly over T s (a class "
                        "opening the link), e.g. 40/10; the server caps sessions at "
                        "--max-sessions (default N)")
    p.add_argument("--max-sessions", type=int, default=None)
    p.add_argument("--server-args", nargs="*", default=[], metavar="ARG",
                   help="more gle-lab options for --arrival, e.g. --unused-session-lifetime "
                        "1000 (the server's defaults otherwise)")
    p.add_argument("--reuse-sessions", action="store_true",
                   help="serve with gle-lab --reuse-sessions (pages from a cached session)")
    args = p.parse_args(argv)
    if args.arrival:
        args.duration = 60.0 if args.duration is None else args.duration
        return arrival(args)
    args.duration = 20.0 if args.duration is None else args.duration
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if not levels or min(levels) < 1 or max(levels) > 200 or not 0 < args.duration <= 600:
        sys.exit("bench_load: levels 1..200, duration 0..600 s")

    server = None
    if args.url:
        url, pid = args.url, args.server_pid
    else:
        extra = ["--max-sessions", "0", "--idle-timeout", "0", "--num-procs",
                 str(args.num_procs), "--unused-session-lifetime", "1000",
                 "--check-unused-sessions", "1000"]
        if args.preset:
            extra += ["--preset", args.preset]
        server = GleLabServer(*extra)
        url, pid = server.url, server.pid
    print(f"# {url}  num_procs={args.num_procs}  {args.duration:g} s per level"
          f"{'  (clients echo ranges)' if args.echo_ranges else ''}; cpu_count={os.cpu_count()}")
    print(HEADER + "  client_cpu")
    rows = []
    try:
        for n in levels:
            c0 = time.process_time()
            w0 = time.monotonic()
            res = asyncio.run(run_load(url, n, args.duration, warmup=args.warmup,
                                       server_pid=pid, echo_ranges=args.echo_ranges))
            client = (time.process_time() - c0) / (time.monotonic() - w0)
            print(res.row() + f"  {client:9.2f}", flush=True)
            for m in res.messages:
                print("   !", m)
            d = {k: v for k, v in res.__dict__.items()}
            d.update(fps_median=res.fps_median, fps_min=res.fps_min, client_cpu=client)
            rows.append(d)
            time.sleep(3.0)          # closed sessions are reaped (lifetime 1 s)
    finally:
        if server is not None:
            server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    target = [r for r in rows if r["sessions"] == TARGET_SESSIONS]
    if target:
        r = target[0]
        ok = r["fps_min"] >= TARGET_FPS and r["errors"] == 0 and r["failed"] == 0 and \
            r["closed"] == 0 and r["ready"] == TARGET_SESSIONS
        print(f"# target {TARGET_SESSIONS} sessions ≥ {TARGET_FPS:g} frames/s each, no errors: "
              f"{'MET' if ok else 'MISSED'} (min {r['fps_min']:.1f}, median "
              f"{r['fps_median']:.1f} frames/s)")
    return 0


def arrival(args):
    """Targets (issue 11): every visitor gets a first frame, p95 ≤ 8 s, no timeouts or errors,
    then ≥ 15 frames/s each; visitors beyond --max-sessions get the "full" page at once."""
    n, over = (float(x) for x in args.arrival.split("/"))
    n = int(n)
    cap = args.max_sessions if args.max_sessions is not None else n
    # the server's own --unused-session-lifetime (what a deployment runs): a much shorter one
    # drops a session whose page was served while its websocket waits for a busy process,
    # which then builds it again (a class's arrival turned into a cascade of rebuilds)
    server = GleLabServer("--max-sessions", str(cap), "--idle-timeout", "0",
                          *args.server_args, "--num-procs",
                          str(args.num_procs), *(["--preset", args.preset] if args.preset
                                                 else []),
                          *(["--reuse-sessions"] if args.reuse_sessions else []))
    try:
        # the class arrives at a server that has been up for a while: its processes have
        # imported, loaded the compiled kernel from the cache and preloaded MNIST-1D
        deadline = time.monotonic() + 180
        while sum("MNIST-1D preloaded" in line or "not preloaded" in line
                  for line in server.log) < args.num_procs and time.monotonic() < deadline:
            time.sleep(0.2)
        asyncio.run(run_arrival(server.url, 2 * args.num_procs, 1.0, 1.0, warmup=0.5))
        time.sleep(2.0)
        res = asyncio.run(run_arrival(server.url, n, over, args.duration, warmup=args.warmup,
                                      server_pid=server.pid))
    finally:
        server.stop()
    print(f"# arrival: gle-lab --num-procs {args.num_procs} --max-sessions {cap}"
          f"{' --reuse-sessions' if args.reuse_sessions else ''}; "
          f"cpu_count={os.cpu_count()}")
    print(res.report())
    for m in res.messages:
        print("   !", m)
    if args.json:
        Path(args.json).write_text(json.dumps(res.__dict__, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
