"""MNIST-1D with GLE (paper Fig. 6, Table 1): data, the "15k"/"42k" networks, training.

Protocol (spec §5 "MNIST-1D"): 5000 sequences from the ``mnist1d`` package resampled to 360
points (the first 4000 train, the last 1000 validation), standardised; fed one point per
Euler step at dt = 0.2 to a batch of 100 parallel streams whose state is never reset; the
label is the (one-hot) target at every step; cross-entropy, γ = 0, β = 1, GLE errors; one
Adam step per dt on W and b, lr 1e-3 halved after 2 epochs without a better validation loss;
150 epochs. Read-out: argmax of the output summed over a sample's 360 steps. Validation: the
1000 held-out samples at batch 1000, learning off, from the training state tiled.

Only W and b learn: the published parameter counts (14 956 for hidden size 53, 42 040 for
90) are exactly the weights and biases; the time constants are fixed.

A run writes ``OUT/seed-S/epochs.csv`` (``epoch,val_acc,val_loss,train_loss,lr,wall_s``;
epoch 0 is the untrained network, as in the published curves) and, after every epoch,
``OUT/seed-S/checkpoint.npz`` (parameters, Adam moments, network state, schedule, epoch,
history), both replaced atomically. Started again with the same arguments it resumes from
the checkpoint and produces the same numbers as an uninterrupted run: the order in which
samples are shown is a pure function of (seed, epoch), so there is no other random state.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import numbers
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .datasets import LabelledSequences, evaluate
from .errors import GLEParameterError
from .network import PARAMETER_KINDS, GLENetwork
from .schedules import ReduceOnPlateau

__all__ = ["DATA_ARGS", "NETS", "PUBLISHED", "cache_dir", "load_data", "hidden_taus",
           "make_network", "n_parameters", "RunConfig", "train", "read_epochs",
           "NETWORK_GUARD"]

#: arguments of ``mnist1d.data.make_dataset`` (the package defaults, 360 points)
DATA_ARGS = {"num_samples": 5000, "train_split": 0.8, "template_len": 12,
             "padding": [36, 60], "scale_coeff": 0.4, "max_translation": 48,
             "corr_noise_scale": 0.25, "iid_noise_scale": 2e-2, "shear_scale": 0.75,
             "shuffle_seq": False, "final_seq_length": 360, "seed": 42}
#: hidden size of the published networks
NETS = {"15k": 53, "42k": 90}
#: published final validation accuracies (%, paper Table 1): (mean, std)
PUBLISHED = {"GLE 15k": (91.3, 0.9), "GLE 42k": (93.9, 0.7), "MLP": (64.4, None),
             "TCN": (92.5, None), "GRU": (91.0, None)}
N_CLASSES = 10
DT = 0.2
EPOCH_COLUMNS = ("epoch", "val_acc", "val_loss", "train_loss", "lr", "wall_s")

# ---------------------------------------------------------------------------- data
#: run before ``mnist1d`` is imported in the generating subprocess: any attempt to reach
#: the network fails loudly (``get_dataset`` would download a pickle without a timeout)
NETWORK_GUARD = r"""
import socket
def _blocked(*args, **kwargs):
    raise RuntimeError("network access blocked while generating MNIST-1D")
socket.socket.connect = _blocked
socket.socket.connect_ex = _blocked
socket.create_connection = _blocked
socket.getaddrinfo = _blocked
try:
    import requests
    import requests.sessions
    requests.get = requests.post = requests.request = _blocked
    requests.sessions.Session.request = _blocked
except ImportError:
    pass
"""

_GENERATE = NETWORK_GUARD + r"""
import json, sys
import numpy as np
import mnist1d.data
from mnist1d.utils import ObjectView
args = mnist1d.data.get_dataset_args(as_dict=True)
args.update(json.loads(sys.argv[1]))
d = mnist1d.data.make_dataset(ObjectView(args))
np.savez(sys.argv[2], x=d["x"], y=d["y"], x_test=d["x_test"], y_test=d["y_test"],
         args=json.dumps(json.loads(sys.argv[1]), sort_keys=True))
"""


def cache_dir():
    """The user cache directory of GLE Lab: ``$GLE_LAB_CACHE``, else
    ``$XDG_CACHE_HOME/gle-lab``, else ``~/.cache/gle-lab``."""
    d = os.environ.get("GLE_LAB_CACHE")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".cache")
        d = os.path.join(base, "gle-lab")
    return d


def _data_key(args):
    blob = json.dumps(args, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_data(args=None, cache=None):
    """The MNIST-1D set, generated locally and cached by its arguments.

    Parameters
    ----------
    args : dict, optional
        Overrides of :data:`DATA_ARGS` (``make_dataset``'s arguments).
    cache : str, optional
        Cache directory; default :func:`cache_dir`.

    Returns
    -------
    dict
        ``x_train`` (4000, 360), ``y_train``, ``x_val`` (1000, 360), ``y_val`` (int labels
        0-9), ``args``, ``path`` (the cache file), ``mean``/``std`` (the train statistics used
        for standardisation).

    Notes
    -----
    The set is generated by ``mnist1d.data.make_dataset`` in a subprocess whose network
    access is blocked (:data:`NETWORK_GUARD`), which also keeps ``mnist1d``'s import of
    matplotlib and its reseeding of the global ``random``/``np.random`` out of this process.
    ``make_dataset`` already centres and scales the whole set; we standardise again with
    the training split's mean and standard deviation (one number each, "globally").
    """
    full = dict(DATA_ARGS)
    if args:
        bad = [k for k in args if k not in DATA_ARGS]
        if bad:
            raise GLEParameterError("data args", bad, "keys from " + ", ".join(DATA_ARGS))
        full.update(args)
    cache = cache or cache_dir()
    path = os.path.join(cache, f"mnist1d-{_data_key(full)}.npz")
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".npz")
        os.close(fd)
        try:
            env = dict(os.environ, MPLBACKEND="Agg")
            out = subprocess.run([sys.executable, "-c", _GENERATE, json.dumps(full), tmp],
                                 capture_output=True, text=True, env=env, timeout=600)
            if out.returncode != 0:
                last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise RuntimeError(f"generating MNIST-1D failed: {last}")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    with np.load(path) as d:
        x, y = d["x"].astype(float), d["y"].astype(np.int64)
        xv, yv = d["x_test"].astype(float), d["y_test"].astype(np.int64)
        stored = json.loads(str(d["args"]))
    if stored != json.loads(json.dumps(full, sort_keys=True)):
        raise RuntimeError(f"cache file {path} holds other arguments; delete it")
    mean, std = float(x.mean()), float(x.std())
    return {"x_train": (x - mean) / std, "y_train": y, "x_val": (xv - mean) / std,
            "y_val": yv, "args": full, "path": path, "mean": mean, "std": std}


# ---------------------------------------------------------------------------- networks
def hidden_taus(hidden):
    """(τm, τr) of a hidden layer of ``hidden`` units.

    ⌊hidden/3⌋ LE units (τm = τr = 1.2); the rest split between τm = 0.6 and τm = 1.2 with
    τr = 0.2 (the first half rounded up). For 53: 18 + 18 + 17 LE (published); for 90:
    30 + 30 + 30 LE (our choice, the published mix is unknown).
    """
    n_le = hidden // 3
    n_fast = (hidden - n_le + 1) // 2
    n_slow = hidden - n_le - n_fast
    tau_m = np.r_[np.full(n_fast, 0.6), np.full(n_slow, 1.2), np.full(n_le, 1.2)]
    tau_r = np.r_[np.full(n_fast, 0.2), np.full(n_slow, 0.2), np.full(n_le, 1.2)]
    return tau_m, tau_r


def _check_net(net):
    if net not in NETS:
        raise GLEParameterError("net", net, "one of " + ", ".join(NETS))
    return NETS[net]


def make_network(net="15k", mode="gle", seed=0, batch_size=100, hidden=None):
    """The paper's MNIST-1D network: 1 → H (linear) → 5 × (H → H, tanh) → 10 (linear).

    Every hidden layer (the linear first one too) has the τ mix of :func:`hidden_taus`; the
    output layer is LE with τ = 1.2. dt = 0.2, γ = 0, β = 1, cross-entropy; weights uniform
    in ±1/√n_in from ``seed``, biases 0. ``hidden`` overrides the size of ``net`` (tests).
    """
    H = _check_net(net) if hidden is None else int(hidden)
    tm, tr = hidden_taus(H)
    sizes = [1] + [H] * 6 + [N_CLASSES]
    acts = ["linear"] + ["tanh"] * 5 + ["linear"]
    tau_m = [tm] * 6 + [np.full(N_CLASSES, 1.2)]
    tau_r = [tr] * 6 + [np.full(N_CLASSES, 1.2)]
    return GLENetwork(sizes, acts, tau_m, tau_r, dt=DT, gamma=0.0, beta=1.0,
                      loss="cross_entropy", error_mode=mode, batch_size=batch_size, seed=seed)


def n_parameters(network, kinds=("W", "b")):
    """Number of learned parameters (weights and biases)."""
    return sum(a.size for k in kinds for a in network.parameters(k))


# ---------------------------------------------------------------------------- runs
class RunConfig:
    """Arguments of one MNIST-1D run (validated; everything but ``epochs`` must match to
    resume a checkpoint)."""

    FIELDS = ("net", "mode", "seed", "epochs", "train_samples", "val_samples", "batch_size",
              "lr", "backend", "hidden", "data_args", "threads")

    def __init__(self, net="15k", mode="gle", seed=42, epochs=150, train_samples=4000,
                 val_samples=1000, batch_size=100, lr=1e-3, backend="auto", hidden=None,
                 data_args=None, threads=None):
        _check_net(net)
        if mode not in ("gle", "ie"):
            raise GLEParameterError("mode", mode, "one of gle, ie")
        for name, value, low in (("seed", seed, 0), ("epochs", epochs, 0),
                                 ("train_samples", train_samples, 1),
                                 ("val_samples", val_samples, 1),
                                 ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
                    or value < low:
                raise GLEParameterError(name, value, f"an integer ≥ {low}")
        if train_samples < batch_size:
            raise GLEParameterError("train_samples", train_samples,
                                    f"≥ batch_size = {batch_size}")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0 \
                or not math.isfinite(lr):
            raise GLEParameterError("lr", lr, "a finite number > 0")
        if backend not in ("auto", "numpy", "numba"):
            raise GLEParameterError("backend", backend, "one of auto, numpy, numba")
        if hidden is not None and (isinstance(hidden, bool) or
                                   not isinstance(hidden, numbers.Integral) or hidden < 3):
            raise GLEParameterError("hidden", hidden, "an integer ≥ 3")
        self.net, self.mode, self.seed, self.epochs = net, mode, int(seed), int(epochs)
        self.train_samples, self.val_samples = int(train_samples), int(val_samples)
        self.batch_size, self.lr, self.backend = int(batch_size), float(lr), backend
        if threads is not None and (isinstance(threads, bool) or
                                    not isinstance(threads, numbers.Integral) or threads < 1):
            raise GLEParameterError("threads", threads, "an integer ≥ 1 or None")
        self.hidden = None if hidden is None else int(hidden)
        self.data_args = dict(data_args or {})
        #: CPU threads the run may use (training steps, validation); None: the machine's
        #: (up to 2 for training, see gle_core._kernel.default_threads). Not part of the
        #: run's identity: the numbers do not depend on it.
        self.threads = None if threads is None else int(threads)

    def as_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}

    def identity(self):
        """What must match to resume (all but epochs and backend: both are free)."""
        d = self.as_dict()
        d.pop("epochs")
        d.pop("backend")
        d.pop("threads")
        return d


def _atomic_write(path, write):
    """Write ``path`` via a temporary file in the same directory, then ``os.replace``."""
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _state_arrays(net):
    """The network's dynamic state (:meth:`GLENetwork.get_state`) but the step count:
    {attribute: array or list of arrays}."""
    return {k: v for k, v in net.get_state().items()
            if isinstance(v, np.ndarray) or isinstance(v, list)}


def save_checkpoint(path, config, net, optimizer, schedule, epoch, history):
    arrays = {}
    for k in PARAMETER_KINDS:
        for i, a in enumerate(net.parameters(k)):
            arrays[f"param/{k}/{i}"] = a
    for name, val in _state_arrays(net).items():
        if isinstance(val, list):
            for i, a in enumerate(val):
                arrays[f"state/{name}/{i}"] = a
        else:
            arrays[f"state/{name}"] = val
    for (kind, layer), st in optimizer.state.items():
        arrays[f"adam/{kind}/{layer}/m"] = st[0]
        arrays[f"adam/{kind}/{layer}/v"] = st[1]
        arrays[f"adam/{kind}/{layer}/count"] = np.array(st[2])
    meta = {"config": config.as_dict(), "epoch": int(epoch), "schedule":
            schedule.state_dict(), "history": history, "net_steps": int(net.steps),
            "format": 1}
    arrays["meta"] = np.array(json.dumps(meta))
    _atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path):
    with np.load(path) as d:
        meta = json.loads(str(d["meta"]))
        arrays = {k: d[k] for k in d.files if k != "meta"}
    return meta, arrays


def restore(arrays, meta, net, optimizer, schedule):
    """Put a checkpoint's parameters, state, Adam moments and schedule back."""
    for k in PARAMETER_KINDS:
        for i, a in enumerate(net.parameters(k)):
            a[...] = arrays[f"param/{k}/{i}"]
    state = {}
    for key, a in arrays.items():
        if key.startswith("state/"):
            parts = key.split("/")
            if len(parts) == 3:
                state.setdefault(parts[1], {})[int(parts[2])] = a
            else:
                state[parts[1]] = a
    current = set(_state_arrays(net))
    if set(state) != current:
        # checkpoints of an engine version whose error feedback was private (``_feedback``)
        by_plain = {n.lstrip("_"): n for n in current}
        state = {by_plain.get(n.lstrip("_"), n): v for n, v in state.items()}
        if set(state) != current:
            raise GLEParameterError("checkpoint state", sorted(state),
                                    f"the states of this engine: {sorted(current)}")
    full = {name: ([np.array(val[i]) for i in range(len(val))] if isinstance(val, dict)
                   else np.array(val)) for name, val in state.items()}
    full["steps"] = int(meta["net_steps"])
    net.set_state(full)
    optimizer.state.clear()
    for key, a in arrays.items():
        if key.startswith("adam/") and key.endswith("/m"):
            _, kind, layer, _ = key.split("/")
            base = f"adam/{kind}/{layer}"
            optimizer.state[(kind, int(layer))] = [np.array(a), np.array(arrays[base + "/v"]),
                                                   int(arrays[base + "/count"])]
    schedule.load_state_dict(meta["schedule"])


def _write_csv(path, history):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(EPOCH_COLUMNS)
    for row in history:
        w.writerow([row["epoch"]] + [repr(float(row[c])) for c in EPOCH_COLUMNS[1:]])
    _atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def read_epochs(path):
    """Rows of an ``epochs.csv`` as a dict of numpy arrays."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {c: np.array([float(r[c]) for r in rows]) for c in EPOCH_COLUMNS}


def seed_dir(out, seed):
    return os.path.join(out, f"seed-{int(seed)}")


def train(config, out, *, progress=None, data=None, chunk_hook=None):
    """Train (or resume) one seed; returns the run's history (a list of epoch rows).

    Parameters
    ----------
    config : RunConfig
    out : str
        Output directory; the run writes ``out/seed-S/``.
    progress : callable, optional
        ``progress(kind, info)`` with kind ``"batch"`` (info: epoch, batch, n_batches,
        train_loss so far, running_acc: the read-out accuracy of stream 0's samples so far
        in the epoch, %) after every minibatch of samples and ``"epoch"`` (info: the epoch's
        row) after every epoch.
    data : dict, optional
        A :func:`load_data` result (default: loaded with ``config.data_args``).
    chunk_hook : callable, optional
        Called after every minibatch (360 steps) with no arguments: lets a Dask task yield.
    """
    from ._kernel import kernel_threads
    with kernel_threads(config.threads):
        return _train(config, out, progress, data, chunk_hook)


def _train(config, out, progress, data, chunk_hook):
    from .simulator import Simulator

    data = data if data is not None else load_data(config.data_args)
    d = seed_dir(out, config.seed)
    os.makedirs(d, exist_ok=True)
    ckpt_path = os.path.join(d, "checkpoint.npz")
    csv_path = os.path.join(d, "epochs.csv")
    xtr, ytr = data["x_train"][:config.train_samples], data["y_train"][:config.train_samples]
    xva, yva = data["x_val"][:config.val_samples], data["y_val"][:config.val_samples]
    src = LabelledSequences(xtr, ytr, N_CLASSES, DT, config.batch_size, seed=config.seed)
    val = LabelledSequences(xva, yva, N_CLASSES, DT, len(xva), shuffle=False)
    net = make_network(config.net, config.mode, config.seed, config.batch_size,
                       hidden=config.hidden)
    schedule = ReduceOnPlateau(config.lr, factor=0.5, patience=2)
    L = src.steps_per_sample
    # recorded per step, one minibatch long: the batch-mean loss (the training loss) and
    # stream 0's output (its sample's read-out: the running accuracy of the progress bar)
    sim = Simulator(net, src.inputs, target=src.targets, optimizer="adam", lr=config.lr,
                    learn={"W": True, "b": True}, record=("output", "loss"),
                    record_every=1, record_stream=0, backend=config.backend, window=L)
    history, epoch = [], 0
    if os.path.exists(ckpt_path):
        meta, arrays = load_checkpoint(ckpt_path)
        saved = RunConfig(**meta["config"]).identity()
        if saved != config.identity():
            diff = sorted(k for k in saved if saved[k] != config.identity()[k])
            raise GLEParameterError(
                "out", out, f"a directory without a run of other arguments ({', '.join(diff)}"
                f" differ from the checkpoint in {d})", "use another --out")
        restore(arrays, meta, net, sim.optimizer, schedule)
        epoch, history = int(meta["epoch"]), list(meta["history"])
        _write_csv(csv_path, history)       # the csv always matches the checkpoint
    else:
        t0 = time.perf_counter()
        ev = evaluate(net, val, threads=config.threads)
        history = [{"epoch": 0, "val_acc": 100 * ev["accuracy"], "val_loss": ev["loss"],
                    "train_loss": float("nan"), "lr": schedule.lr,
                    "wall_s": time.perf_counter() - t0}]
        save_checkpoint(ckpt_path, config, net, sim.optimizer, schedule, 0, history)
        _write_csv(csv_path, history)
        if progress is not None:
            progress("epoch", history[-1])
    src.start_step = epoch * src.steps_per_epoch
    sim.lr = schedule.lr
    n_batches = src.samples_per_stream
    while epoch < config.epochs:
        t0 = time.perf_counter()
        loss_sum, hits = 0.0, 0
        for j in range(n_batches):
            sim.run_steps(L)
            loss_sum += float(np.mean(sim.trace("loss")))
            first = epoch * src.steps_per_epoch + j * L
            label0 = src.labels[src.sample_index([first])[0][0, 0]]
            hits += int(np.argmax(sim.trace("output").sum(axis=0)) == label0)
            if progress is not None:
                progress("batch", {"epoch": epoch + 1, "batch": j + 1,
                                   "n_batches": n_batches, "train_loss": loss_sum / (j + 1),
                                   "running_acc": 100.0 * hits / (j + 1)})
            if chunk_hook is not None:
                chunk_hook()
        t_train = time.perf_counter() - t0
        ev = evaluate(net, val, threads=config.threads)
        lr_used = schedule.lr
        sim.lr = schedule.step(ev["loss"])
        epoch += 1
        row = {"epoch": epoch, "val_acc": 100 * ev["accuracy"], "val_loss": ev["loss"],
               "train_loss": loss_sum / n_batches, "lr": lr_used,
               "wall_s": time.perf_counter() - t0, "train_s": t_train,
               "train_acc_stream0": 100.0 * hits / n_batches}
        history.append(row)
        save_checkpoint(ckpt_path, config, net, sim.optimizer, schedule, epoch, history)
        _write_csv(csv_path, history)
        if progress is not None:
            progress("epoch", row)
    return history


def collect_histories(out, config):
    """{seed: history} of every ``out/seed-S`` run made with the arguments of ``config``
    (the seed and the number of epochs aside), read from the checkpoints."""
    ident = config.identity()
    ident.pop("seed")
    found = {}
    if not os.path.isdir(out):
        return found
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name, "checkpoint.npz")
        if not (name.startswith("seed-") and os.path.exists(path)):
            continue
        with np.load(path) as d:
            meta = json.loads(str(d["meta"]))
        other = RunConfig(**meta["config"]).identity()
        seed = other.pop("seed")
        if other == ident:
            found[int(seed)] = meta["history"]
    return found


def summarize(histories, net="15k"):
    """Table-1-style numbers: per-seed final and best accuracy, mean ± std over seeds."""
    finals = {int(s): h[-1]["val_acc"] for s, h in histories.items()}
    vals = np.array(list(finals.values()))
    pub = PUBLISHED[f"GLE {net}"]
    return {"net": net, "seeds": sorted(finals), "final_val_acc": finals,
            "epochs": {int(s): h[-1]["epoch"] for s, h in histories.items()},
            "best_val_acc": {int(s): max(r["val_acc"] for r in h)
                             for s, h in histories.items()},
            "mean": float(vals.mean()) if len(vals) else float("nan"),
            "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
            "published": {"mean": pub[0], "std": pub[1]},
            "published_baselines": {k: v[0] for k, v in PUBLISHED.items()
                                    if not k.startswith("GLE")}}


def write_summary(path, summary):
    """Write ``summary.json`` atomically."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    _atomic_write(path, lambda f: f.write(json.dumps(summary, indent=1).encode()))


def format_summary(summary):
    """Table-1-style text: this run's final accuracy (mean ± std over seeds) vs the paper."""
    net = summary["net"]
    pub = summary["published"]
    lines = [f"MNIST-1D, GLE {net}: final validation accuracy over {len(summary['seeds'])} "
             f"seed(s)",
             f"  {'this run':<14} {summary['mean']:5.1f} ± {summary['std']:.1f} %",
             f"  {'paper (GLE)':<14} {pub['mean']:5.1f} ± {pub['std']:.1f} %"]
    for name, acc in summary["published_baselines"].items():
        lines.append(f"  {'paper ' + name:<14} {acc:5.1f} %")
    lines.append("  per seed: " + ", ".join(
        f"{s}: {summary['final_val_acc'][s]:.1f} % (epoch {summary['epochs'][s]})"
        for s in summary["seeds"]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- exported parameters
def export_parameters(checkpoint, out, command=None):
    """Write a run checkpoint's learned parameters only (no state, no optimizer) with its
    provenance: a small file to ship with an application (GLE Lab's trained MNIST-1D start).

    Parameters
    ----------
    checkpoint : str
        A run's ``checkpoint.npz`` (:func:`train`).
    out : str
        The file to write (``.npz``; replaced atomically).
    command : str, optional
        The command that produced the run (default: the ``gle-run mnist1d`` line rebuilt from
        the checkpoint's configuration).

    Returns
    -------
    dict
        The metadata written (``command``, ``config``, ``seed``, ``epochs_completed``,
        ``val_acc``/``val_loss`` of that epoch, ``history``: the run's per-epoch rows).
    """
    meta, arrays = load_checkpoint(checkpoint)
    cfg = meta["config"]
    if command is None:
        command = (f"gle-run mnist1d --net {cfg['net']} --mode {cfg['mode']} --seed "
                   f"{cfg['seed']} --epochs {cfg['epochs']} --out DIR")
    last = meta["history"][-1]
    info = {"command": command, "config": cfg, "seed": cfg["seed"], "net": cfg["net"],
            "mode": cfg["mode"], "epochs_completed": int(meta["epoch"]),
            "val_acc": float(last["val_acc"]), "val_loss": float(last["val_loss"]),
            "history": [{k: r[k] for k in EPOCH_COLUMNS} for r in meta["history"]],
            "format": 1}
    params = {k: v for k, v in arrays.items() if k.startswith("param/")}
    params["meta"] = np.array(json.dumps(info))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    _atomic_write(out, lambda f: np.savez_compressed(f, **params))
    return info


def load_parameters(source, network):
    """Copy the parameters of a checkpoint or of an :func:`export_parameters` file into
    ``network`` (any batch size; its state is left as it is).

    Parameters
    ----------
    source : str or file-like
        ``checkpoint.npz`` of a run, or an exported parameter file.
    network : GLENetwork
        A network of the same architecture (:func:`make_network` of the same ``net``).

    Returns
    -------
    dict
        The file's metadata.
    """
    with np.load(source) as d:
        meta = json.loads(str(d["meta"]))
        for k in PARAMETER_KINDS:
            for i, a in enumerate(network.parameters(k)):
                key = f"param/{k}/{i}"
                if key not in d.files or d[key].shape != a.shape:
                    raise GLEParameterError(
                        "parameters", key, f"an array of shape {a.shape} (the network's)")
                a[...] = d[key]
    return meta
