"""MNIST-1D seeds on Dask: progress events, results of every seed, a killed worker's seed
resumes from its checkpoint and ends with the numbers of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from gle_core.distributed import run_seeds
from gle_core.mnist1d import RunConfig, load_data, read_epochs, train

TINY = dict(hidden=6, train_samples=200, val_samples=50, batch_size=10, epochs=5)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("gle-lab-cache"))
    old = os.environ.get("GLE_LAB_CACHE")
    os.environ["GLE_LAB_CACHE"] = d              # the workers inherit it
    load_data()
    yield d
    if old is None:
        os.environ.pop("GLE_LAB_CACHE", None)
    else:
        os.environ["GLE_LAB_CACHE"] = old


def _columns(path):
    cols = read_epochs(path)
    return np.column_stack([cols[c] for c in ("epoch", "val_acc", "val_loss", "train_loss",
                                              "lr")])


def test_two_seeds_on_a_local_cluster_survive_a_killed_worker(tmp_path, cache):
    events, killed = [], {}
    lock = threading.Lock()

    def on_event(msg):
        with lock:
            events.append(msg)
            # kill the worker running seed 3 once it has checkpointed epoch 1
            if msg["seed"] == 3 and msg["kind"] == "epoch" and msg["epoch"] == 1 \
                    and not killed:
                killed["pid"] = msg["pid"]
                os.kill(msg["pid"], signal.SIGKILL)

    configs = [RunConfig(seed=s, **TINY) for s in (3, 4)]
    summary = run_seeds(configs, str(tmp_path / "run"), workers=2, echo=False,
                        on_event=on_event)

    # progress arrived as events from both seeds, epoch by epoch
    def epochs_reported(seed):
        return {m["epoch"] for m in events if m["seed"] == seed and m["kind"] == "epoch"}
    assert epochs_reported(4) == set(range(6))
    # seed 3: an epoch finished in the instant before the kill may have lost its event
    assert {0, 1, 5} <= epochs_reported(3)
    for seed in (3, 4):
        assert any(m["kind"] == "batch" and m["seed"] == seed for m in events)
    # the killed worker's seed finished elsewhere (a new worker process)
    assert killed and summary["finished_by"][3]["pid"] != killed["pid"]
    # both results written, the summary over both seeds
    for seed in (3, 4):
        assert _columns(tmp_path / "run" / f"seed-{seed}" / "epochs.csv").shape == (6, 5)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["seeds"] == [3, 4] and set(saved["final_val_acc"]) == {"3", "4"}
    assert saved["mean"] == pytest.approx(np.mean(list(saved["final_val_acc"].values())))
    assert saved["published"] == {"mean": 91.3, "std": 0.9}
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    assert "bokeh" in (tmp_path / "run" / "curves.html").read_text().lower()
    # resuming lost nothing: the same numbers as an uninterrupted run of seed 3
    train(RunConfig(seed=3, **TINY), str(tmp_path / "alone"))
    assert np.array_equal(_columns(tmp_path / "run" / "seed-3" / "epochs.csv"),
                          _columns(tmp_path / "alone" / "seed-3" / "epochs.csv"),
                          equal_nan=True)


def test_an_unreachable_scheduler_is_one_error_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "gle_core", "mnist1d", "--seeds", "1,2",
                          "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "2",
                          "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], res.stderr
    assert not out.exists()
