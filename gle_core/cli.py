"""Headless runner: ``gle-run lagline --mode gle`` (or ``python -m gle_core``)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .protocols import PROTOCOLS, run_protocol


def main(argv=None):
    p = argparse.ArgumentParser(prog="gle-run", description="Run a published GLE protocol "
                                "headless and print learned vs teacher parameters.")
    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("--mode", choices=("gle", "ie"), default="gle",
                   help="error mode of the student (default gle)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=None,
                   help="simulated time in a.u. (default: the published duration)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    from tqdm import tqdm
    cfg = PROTOCOLS[args.protocol]
    duration = cfg["duration"] if args.duration is None else args.duration
    overrides = {} if args.batch_size is None else {"batch_size": args.batch_size}
    n = int(round(duration / cfg["dt"]))
    t0 = time.perf_counter()
    with tqdm(total=n, unit="step", file=sys.stderr, desc=f"{args.protocol} ({args.mode})") as bar:
        summary = run_protocol(args.protocol, args.mode, args.seed, duration, bar.update,
                               **overrides)
    summary["wall_seconds"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"protocol {summary['protocol']} ({summary['error_mode']}), t = {summary['t']:.1f} a.u.,"
              f" wall {summary['wall_seconds']:.1f} s")
        print(f"  W      learned {summary['W']}\n         teacher {summary['teacher_W']}")
        print(f"  tau_m  learned {summary['tau_m']}\n         teacher {summary['teacher_tau_m']}")
        print(f"  final loss {summary['final_loss']:.3e}   max |ΔW| {summary['max_abs_W_error']:.2e}"
              f"   max |Δτm| {summary['max_abs_tau_m_error']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
