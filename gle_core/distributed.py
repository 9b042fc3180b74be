"""MNIST-1D seeds on a Dask cluster (``dask.distributed``): ``gle-run mnist1d --seeds ...``.

Every seed is one task running :func:`gle_core.mnist1d.train` on a worker. The task reports
its progress with Dask's event API (``get_worker().log_event(topic, msg)``); the client
subscribes to the topic (``Client.subscribe_topic``) and prints it while the runs go. A task
whose worker dies is rescheduled by Dask (the nanny of a ``LocalCluster`` starts a new worker
process) and resumes from the seed's last checkpoint, so at most one epoch is recomputed.
The training loop runs in chunks of one minibatch of samples (360 Euler steps, well under a
second), so the worker's event loop and its heartbeats get the interpreter between chunks.

The output directory must be visible to every worker (a ``LocalCluster``: the same machine;
an existing cluster given by ``--scheduler``: a shared filesystem).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid

from .errors import GLEParameterError
from .mnist1d import RunConfig, load_data, summarize, train, write_summary

__all__ = ["run_seeds", "seed_task", "connect"]

#: progress events of batches are sent every this many minibatches
BATCH_EVERY = 10


def seed_task(config, out, topic):
    """The Dask task of one seed: train (or resume) it, reporting progress as events.

    Parameters
    ----------
    config : dict
        :meth:`RunConfig.as_dict`.
    out : str
        The run's output directory (``out/seed-S/``).
    topic : str
        Event topic the client listens to.

    Returns
    -------
    dict
        ``seed``, ``history`` (the epoch rows), ``pid`` and ``worker`` that finished it.
    """
    from distributed import get_worker
    try:
        worker = get_worker()
    except ValueError:          # called outside a worker (tests, sequential fallback)
        worker = None
    cfg = RunConfig(**config)
    base = {"seed": cfg.seed, "pid": os.getpid(),
            "worker": None if worker is None else worker.address}

    def progress(kind, info):
        if worker is None:
            return
        if kind == "epoch" or info["batch"] % BATCH_EVERY == 0 \
                or info["batch"] == info["n_batches"]:
            msg = dict(base, kind=kind, epochs=cfg.epochs)
            msg.update({k: v for k, v in info.items() if k != "train_s"})
            worker.log_event(topic, msg)

    if worker is not None:
        worker.log_event(topic, dict(base, kind="start", epochs=cfg.epochs))
    history = train(cfg, out, progress=progress)
    return dict(base, history=history)


def connect(scheduler=None, workers=2, timeout=10):
    """A ``(client, cluster)`` pair: a new ``LocalCluster`` of ``workers`` processes (one
    thread each), or a client of the scheduler at ``scheduler`` (``cluster`` is None).

    Raises
    ------
    OSError
        The scheduler cannot be reached within ``timeout`` seconds.
    """
    from distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as exc:
            raise OSError(f"cannot reach the Dask scheduler at {scheduler} within "
                          f"{timeout} s ({type(exc).__name__})") from None
        return client, None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):          # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_task(client):
    """CPU threads one seed's task may use without oversubscribing its machine: per host,
    its CPUs (as the workers see them) divided by the task slots of its workers (their
    ``nthreads``), at most 2 (what a training step can use), at least 1; the smallest over
    the hosts (a task may land anywhere). Two one-thread workers on a 2-core machine: 1.
    1 if the cluster cannot be asked."""
    try:
        info = client.scheduler_info()["workers"]
        cpus = client.run(_cpus)
    except Exception:                          # an unusual cluster: stay on one thread
        return 1
    hosts = {}
    for addr, w in info.items():
        host = w.get("host", addr)
        slots, n_cpu = hosts.get(host, (0, 1))
        hosts[host] = (slots + int(w.get("nthreads", 1)), max(n_cpu, int(cpus.get(addr, 1))))
    if not hosts:
        return 1
    return max(1, min(min(2, n_cpu // max(1, slots)) for slots, n_cpu in hosts.values()))


def _echo(msg, stream=sys.stderr):
    kind = msg.get("kind")
    if kind == "epoch":
        print(f"[seed {msg['seed']}] epoch {msg['epoch']}/{msg['epochs']}  val_acc "
              f"{msg['val_acc']:5.1f} %  val_loss {msg['val_loss']:.4f}  train_loss "
              f"{msg['train_loss']:.4f}  lr {msg['lr']:.3g}  {msg['wall_s']:.1f} s", file=stream,
              flush=True)
    elif kind == "start":
        print(f"[seed {msg['seed']}] started on {msg['worker']} (pid {msg['pid']})",
              file=stream, flush=True)


def run_seeds(configs, out, *, workers=2, scheduler=None, echo=True, on_event=None,
              client=None, plots=True, timeout=10):
    """Run several seeds on Dask; returns the Table-1-style summary (also in
    ``out/summary.json``).

    Parameters
    ----------
    configs : list of RunConfig
        One per seed (same network and mode).
    out : str
        Output directory: ``out/seed-S/`` per seed, ``out/summary.json``, and (if
        ``plots`` and GLE Lab's plotting is installed) ``out/curves.png``, ``out/curves.html``.
    workers : int
        Processes of the ``LocalCluster`` started when neither ``scheduler`` nor ``client``
        is given.
    scheduler : str, optional
        Address of an existing scheduler (``tcp://HOST:8786``).
    echo : bool
        Print per-seed progress (epoch lines) on stderr.
    on_event : callable, optional
        Called with every progress message (a dict) as it arrives.
    client : distributed.Client, optional
        Use this client (and its cluster) instead of connecting.
    timeout : float
        Seconds to wait for ``scheduler``.
    """
    if not configs:
        raise GLEParameterError("configs", configs, "at least one seed")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise GLEParameterError("seeds", seeds, "distinct seeds")
    if len({(c.net, c.mode) for c in configs}) != 1:
        raise GLEParameterError("configs", "mixed networks or modes", "one net and mode")
    own = client is None
    cluster = None
    if own:
        client, cluster = connect(scheduler, workers, timeout)   # fails before writing
    try:
        if any(c.threads is None for c in configs):
            per_task = threads_per_task(client)
            configs = [c if c.threads is not None else
                       RunConfig(**dict(c.as_dict(), threads=per_task)) for c in configs]
        if scheduler is None:
            load_data(configs[0].data_args)   # generate the cache once, not per worker
        topic = f"gle-mnist1d-{uuid.uuid4().hex[:8]}"

        def handler(event):
            msg = event[1] if isinstance(event, tuple) and len(event) == 2 else event
            if echo:
                _echo(msg)
            if on_event is not None:
                on_event(msg)

        client.subscribe_topic(topic, handler)
        out = os.path.abspath(out)
        os.makedirs(out, exist_ok=True)
        futures = {client.submit(seed_task, c.as_dict(), out, topic, pure=False,
                                 key=f"mnist1d-{c.net}-{c.mode}-seed-{c.seed}-{topic[-8:]}"):
                   c.seed for c in configs}
        from distributed import as_completed
        histories, finished_by = {}, {}
        t0 = time.perf_counter()
        for fut in as_completed(futures):
            res = fut.result()
            histories[res["seed"]] = res["history"]
            finished_by[res["seed"]] = {"pid": res["pid"], "worker": res["worker"]}
        try:
            client.unsubscribe_topic(topic)
        except Exception:                       # an older/newer distributed: not fatal
            pass
        summary = summarize(histories, configs[0].net)
        summary.update({"mode": configs[0].mode, "wall_s": time.perf_counter() - t0,
                        "finished_by": finished_by,
                        "config": {k: v for k, v in configs[0].as_dict().items()
                                   if k != "seed"}})
        write_summary(os.path.join(out, "summary.json"), summary)
        if plots:
            summary["plots"] = write_plots(out, histories, configs[0].net)
        return summary
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


def write_plots(out, histories, net):
    """``out/curves.png`` and ``out/curves.html`` of the ``seed-*`` runs under ``out``.

    The plots are GLE Lab's (``python -m gle_lab.mnist1d_report``, HoloViews and
    matplotlib), run as a child process: the engine never imports the app or a plotting
    library. ``histories`` is accepted for the callers' convenience; the report reads the
    same ``epochs.csv`` files. Returns the paths written, or a note why none were.
    """
    del histories
    proc = subprocess.run([sys.executable, "-m", "gle_lab.mnist1d_report", str(out),
                           "--net", str(net)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return {"note": "no plots: " + (lines[-1] if lines else f"exit {proc.returncode}")}
    return json.loads(proc.stdout.strip().splitlines()[-1])
