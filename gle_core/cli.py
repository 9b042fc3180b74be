"""Headless runner: ``gle-run lagline --mode gle`` (or ``python -m gle_core``)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .protocols import PROTOCOLS, run_protocol


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["mnist1d"]:
        return mnist1d_main(argv[1:])
    p = argparse.ArgumentParser(prog="gle-run", description="Run a published GLE protocol "
                                "headless and print learned vs teacher parameters "
                                "(or train MNIST-1D: gle-run mnist1d --help).")
    p.add_argument("protocol", choices=sorted(PROTOCOLS) + ["mnist1d"])
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


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (``gle-run mnist1d: error: ...``), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _mnist1d_parser():
    p = _OneLineParser(prog="gle-run mnist1d", description="Train GLE networks on MNIST-1D "
                       "(paper Fig. 6, Table 1); resumes from DIR/seed-S/checkpoint.npz.")
    p.add_argument("--net", default="15k", help="15k (hidden 53) or 42k (hidden 90)")
    p.add_argument("--mode", default="gle", help="gle (prospective errors) or ie "
                   "(instantaneous errors, the baseline)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--seeds", default=None, help="comma-separated seeds: run them on Dask")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--train-samples", type=int, default=4000)
    p.add_argument("--val-samples", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--backend", default="auto", help="auto, numpy or numba")
    p.add_argument("--hidden", type=int, default=None, help="override the hidden size "
                   "(tests, benchmarks)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--workers", type=int, default=2, help="Dask LocalCluster processes "
                   "(with --seeds)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler "
                   "(tcp://HOST:8786) instead of a LocalCluster")
    p.add_argument("--connect-timeout", type=float, default=10.0,
                   help="seconds to wait for --scheduler (default 10)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per run (a training step split between two, the "
                   "validation's streams); default: up to 2 for a lone run, and with "
                   "--seeds what the workers leave per task (1 when they fill the cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def mnist1d_main(argv=None):
    """``gle-run mnist1d ...``: one seed here, or several on Dask (``--seeds``)."""
    from .errors import GLEParameterError
    p = _mnist1d_parser()
    args = p.parse_args(argv)
    try:
        from .mnist1d import RunConfig
        seeds = None
        if args.seeds is not None:
            try:
                seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
            except ValueError:
                raise GLEParameterError("--seeds", args.seeds, "comma-separated integers")
            if not seeds:
                raise GLEParameterError("--seeds", args.seeds, "at least one seed")
        configs = [RunConfig(net=args.net, mode=args.mode, seed=s, epochs=args.epochs,
                             train_samples=args.train_samples, val_samples=args.val_samples,
                             batch_size=args.batch_size, lr=args.lr, backend=args.backend,
                             hidden=args.hidden, threads=args.threads)
                   for s in (seeds if seeds is not None else [args.seed])]
        if seeds is not None:
            from .distributed import run_seeds
            if args.workers < 1:
                raise GLEParameterError("--workers", args.workers, "an integer ≥ 1")
            summary = run_seeds(configs, args.out, workers=args.workers,
                                scheduler=args.scheduler, echo=not args.quiet,
                                timeout=args.connect_timeout)
        else:
            summary = _run_one(configs[0], args.out, quiet=args.quiet)
    except (GLEParameterError, OSError, TimeoutError) as exc:
        print(f"gle-run mnist1d: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gle-run mnist1d: interrupted; run again with the same arguments to resume",
              file=sys.stderr)
        return 130
    from .mnist1d import format_summary
    print(format_summary(summary))
    return 0


def _run_one(config, out, quiet=False):
    import os

    from tqdm import tqdm

    from .mnist1d import collect_histories, load_data, summarize, train, write_summary
    data = load_data(config.data_args)
    bar = None if quiet else tqdm(total=config.epochs, unit="epoch", file=sys.stderr,
                                  desc=f"mnist1d {config.net} {config.mode} seed {config.seed}")
    state = {"val_acc": float("nan")}

    def progress(kind, info):
        if kind == "epoch":
            state["val_acc"] = info["val_acc"]
            print(f"epoch {info['epoch']:3d}  val_acc {info['val_acc']:5.1f} %  val_loss "
                  f"{info['val_loss']:.4f}  train_loss {info['train_loss']:.4f}  "
                  f"lr {info['lr']:.3g}  {info['wall_s']:.1f} s", flush=True)
            if bar is not None:
                bar.n = info["epoch"]
                bar.set_postfix_str(f"val_acc {info['val_acc']:.1f}%")
        elif bar is not None:
            bar.set_postfix_str(f"epoch {info['epoch']} batch {info['batch']}/"
                                f"{info['n_batches']} train_loss {info['train_loss']:.3f} "
                                f"running_acc {info['running_acc']:.0f}% "
                                f"val_acc {state['val_acc']:.1f}%")
    try:
        history = train(config, out, progress=progress, data=data)
    finally:
        if bar is not None:
            bar.close()
    # the summary covers every seed run into ``out`` with these arguments
    histories = collect_histories(out, config)
    histories[config.seed] = history
    summary = summarize(histories, config.net)
    summary["mode"] = config.mode
    write_summary(os.path.join(out, "summary.json"), summary)
    from .distributed import write_plots
    summary["plots"] = write_plots(out, histories, config.net)
    return summary


if __name__ == "__main__":
    sys.exit(main())
