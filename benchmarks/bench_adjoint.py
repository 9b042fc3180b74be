"""Cost of exact gradients (gle_core.adjoint) relative to simulating the same window (not a test).

Run:  python benchmarks/bench_adjoint.py [--repeats N] [--steps K]

For a few network shapes and a window of K steps (default 300 = 3 a.u. at dt = 0.01, the
LagNet AM window) it prints, as medians over N interleaved runs:

* ``forward``: K plain engine steps (``GLENetwork.step``), ms per window;
* ``exact``: recording the window with the engine's step + hand-written reverse mode through
  every step (:func:`record_window` + :func:`backward_exact`), as a ratio to ``forward``;
  with γ ≠ 0 the reverse pass also runs through the error neurons;
* ``Eq.9``: recording + the windowed adjoint λ = I⁺_τm D⁻_τr α (:func:`backward_adjoint`,
  one vectorised anti-causal filter per layer), ratio to ``forward``;
* ``bytes/step``: memory the tape holds per window step (inputs, targets and the states the
  reverse pass reads); the whole window holds K times that, independent of the run length.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from gle_core.adjoint import backward_adjoint, backward_exact, record_window  # noqa: E402
from gle_core.network import GLENetwork  # noqa: E402


def _networks():
    """(name, factory(gamma)) for the benchmark shapes."""
    def chain(gamma):
        return GLENetwork([1, 1, 1], "softplus", [1.0, 2.0], 0.1, dt=0.01, gamma=gamma,
                          beta=0.01, batch_size=100, seed=0)

    def lagnet(gamma):
        return GLENetwork([1, 2, 2, 1], ["tanh", "tanh", "linear"],
                          [[1.0, 1.0], [1.0, 1.0], [1.0]], [[1.0, 0.1], [1.0, 0.1], [1.0]],
                          dt=0.01, gamma=gamma, batch_size=1, seed=0)

    def mnist15k(gamma):
        sizes = [1, 53] + [53] * 5 + [10]
        acts = ["linear"] + ["tanh"] * 5 + ["linear"]
        return GLENetwork(sizes, acts, 1.2, 0.2, dt=0.2, gamma=gamma, loss="cross_entropy",
                          batch_size=100, seed=0)

    return [("chain 1-1-1, batch 100", chain), ("LagNet 1-2-2-1, batch 1", lagnet),
            ("MNIST-1D 15k (7 layers), batch 100", mnist15k)]


def _data(net, K, rng):
    B, n_in, n_out = net.batch_size, net.layer_sizes[0], net.layer_sizes[-1]
    x = rng.normal(0.0, 1.0, (K, B, n_in))
    if net.loss == "mse":
        y = rng.normal(0.0, 1.0, (K, B, n_out))
    else:
        y = rng.integers(0, n_out, (K, B))
    return x, y


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args(argv)
    K, R = args.steps, args.repeats
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}; window K = {K} steps; medians over {R} interleaved runs")
    print(f"{'network':36} {'γ':>5} {'forward':>11} {'exact':>8} {'Eq.9':>8} "
          f"{'bytes/step':>11} {'(Eq.9 tape)':>11}")
    for name, make in _networks():
        for gamma in (0.0, 1.0):
            net0 = make(gamma)
            x, y = _data(net0, K, rng)
            for k in range(50):                  # leave the all-zero initial state
                net0.step(x[k % K], y[k % K])

            def forward():
                n = net0.copy()
                for k in range(K):
                    n.step(x[k], y[k])

            def exact():
                backward_exact(record_window(net0.copy(), x, y))

            def eq9():
                backward_adjoint(record_window(net0.copy(), x, y, error_path=False),
                                 return_adjoint=False)

            forward()
            exact()
            eq9()                                # warm-up
            # interleaved, so that a change of machine load hits all three alike; the ratios
            # are medians of the per-run ratios
            runs = np.array([[_time(f) for f in (forward, exact, eq9)] for _ in range(R)])
            t_fwd = float(np.median(runs[:, 0]))
            r_ex = float(np.median(runs[:, 1] / runs[:, 0]))
            r_am = float(np.median(runs[:, 2] / runs[:, 0]))
            tape = record_window(net0.copy(), x, y)
            tape9 = record_window(net0.copy(), x, y, error_path=False)
            print(f"{name:36} {gamma:>5g} {t_fwd * 1e3:>8.1f} ms {r_ex:>7.2f}x "
                  f"{r_am:>7.2f}x {tape.nbytes / K:>11.0f} {tape9.nbytes / K:>11.0f}")


if __name__ == "__main__":
    main()
