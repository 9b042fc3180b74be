"""Build the trained start of GLE Lab's MNIST-1D preset from a ``gle-run mnist1d`` run.

    python benchmarks/make_mnist1d_checkpoint.py [RUN_DIR/seed-42/checkpoint.npz]

writes ``assets/checkpoints/mnist1d-15k-gle.npz``: the run's learned parameters only (W, b and
the fixed τm, τr; ~0.2 MB) and its provenance in the ``meta`` entry (command, seed, epochs
completed, validation accuracy and loss of that epoch, the per-epoch history). The default
source is the 15k GLE seed-42 run of

    gle-run mnist1d --net 15k --seed 42 --epochs 150 --out /work/runs/mnist1d

Re-run this script when that run has finished (or at any epoch: it takes the latest
checkpoint); the dashboard reads the file through ``gle_lab.resources.asset``.
"""
from __future__ import annotations

import argparse
import os
import sys

from gle_core.mnist1d import export_parameters

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = "/work/runs/mnist1d/seed-42/checkpoint.npz"
DEFAULT_OUT = os.path.join(ROOT, "assets", "checkpoints", "mnist1d-15k-gle.npz")
COMMAND = "gle-run mnist1d --net 15k --seed 42 --epochs 150 --out /work/runs/mnist1d"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", default=DEFAULT_SOURCE)
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--command", default=COMMAND,
                   help="the command that produced the run (stored as provenance)")
    args = p.parse_args(argv)
    if not os.path.exists(args.checkpoint):
        sys.exit(f"make_mnist1d_checkpoint: no checkpoint at {args.checkpoint}")
    info = export_parameters(args.checkpoint, args.out, command=args.command)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e3:.0f} kB): "
          f"{info['net']} {info['mode']}, seed {info['seed']}, "
          f"{info['epochs_completed']} epochs, val_acc {info['val_acc']:.1f} %")


if __name__ == "__main__":
    main()
