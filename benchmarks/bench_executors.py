"""P6: items/s of ``python`` jobs of trivial items, beside the bare alternatives, as ratios.

Run: ``.venv/bin/python benchmarks/bench_executors.py [--items 20000] [--dask-items 5000]
[--repeat 3]``.

For each executor (processes, threads, Dask) a real server subprocess is started with
that configuration; a job of ``operator:abs`` over ``range(N)`` is submitted with the
Python API and timed from the request to its final event (so it includes the HTTP
request, the broadcast after every item and the stream). Beside it, in the same run:
a bare ``ProcessPoolExecutor(2).map(abs, range(N))`` (pool start included, as the job's
workers are) and a bare ``client.map(abs, range(N))`` + ``gather`` on the same Dask
``LocalCluster``. Best of ``--repeat`` runs each, because the machine is shared.

Then the cost per item of the broadcast itself: ``JobManager.item_finished`` in this
process (state update, one serialization, store marking, publish) with 0, 1 and 100
subscribers.

``--results`` (P9) measures only what keeping return values costs: the same jobs on a
server that keeps them (the default) and on one with ``max_result_bytes=0`` (values
neither encoded nor moved nor stored), alternating, best of ``--repeat`` each, per executor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _server import start_server

from jupyter_progress.broker import EventBroker
from jupyter_progress.jobs import submit
from jupyter_progress.manager import JobManager
from jupyter_progress.models import JobKind, JobSpec
from jupyter_progress.store import JobStore

WORKERS = 2


def best(repeat: int, run: Callable[[], float]) -> float:
    """The best items/s over ``repeat`` runs."""
    return max(run() for _ in range(repeat))


def bare_process_pool(items: int) -> float:
    started = time.perf_counter()
    with ProcessPoolExecutor(WORKERS) as pool:
        for _ in pool.map(abs, range(items)):
            pass
    return items / (time.perf_counter() - started)


def server_job(url: str, token: str, items: int, concurrency: int) -> float:
    started = time.perf_counter()
    job = submit(
        "operator:abs", range(items), concurrency=concurrency, name="bench", url=url, token=token
    )
    job.wait(timeout=600)
    elapsed = time.perf_counter() - started
    assert job.status == "completed" and job.progress["success"] == items, job.data
    return items / elapsed


def bare_dask(address: str, items: int) -> float:
    from distributed import Client

    with Client(address) as client:
        started = time.perf_counter()
        futures = client.map(abs, range(items), pure=False)
        client.gather(futures)
        elapsed = time.perf_counter() - started
        del futures
    return items / elapsed


def broadcast_cost(subscribers: int, items: int = 20_000) -> float:
    """Microseconds per ``item_finished`` (one event per item) with idle subscribers."""
    with tempfile.TemporaryDirectory() as directory:
        store = JobStore(Path(directory) / "jobs.sqlite")
        broker = EventBroker()
        manager = JobManager(store=store, broker=broker)
        readers = [broker.subscribe() for _ in range(subscribers)]
        job = manager.create(JobSpec(kind=JobKind.REPORTED, name="bench", total=items))
        started = time.perf_counter()
        for index in range(items):
            manager.item_finished(job.job_id, item=str(index), message=str(index))
        elapsed = time.perf_counter() - started
        for reader in readers:
            broker.unsubscribe(reader)
        store.close()
    return elapsed / items * 1e6


def results_cost(args: argparse.Namespace) -> None:
    """P9: items/s with return values kept against the same jobs without, as ratios."""
    from distributed import LocalCluster

    rows: list[tuple[str, float, float]] = []
    setups = [("process", WORKERS, args.items, ()), ("thread", WORKERS, args.items, ())]
    cluster = LocalCluster(
        n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    dask = (f"--JupyterProgress.dask_address={cluster.scheduler_address}",)
    setups += [("dask", 8, args.dask_items, dask), ("dask", 32, args.dask_items, dask)]
    setups = [setup for setup in setups if setup[0] in args.executors]
    try:
        for executor, concurrency, n, extra in setups:
            chosen = extra or (f"--JupyterProgress.executor={executor}",)
            kept = start_server(*chosen)
            dropped = start_server(*chosen, "--JupyterProgress.max_result_bytes=0")
            rates: dict[str, list[float]] = {"kept": [], "none": []}
            try:
                for _ in range(args.repeat):
                    for label, server in (("none", dropped), ("kept", kept)):
                        rate = server_job(server.url, server.token, n, concurrency)
                        rates[label].append(rate)
            finally:
                kept.stop()
                dropped.stop()
            rows.append((f"{executor} (concurrency {concurrency})", max(rates["kept"]),
                         max(rates["none"])))  # fmt: skip
    finally:
        cluster.close()
    print(f"\nP9: trivial items (operator:abs) with results kept, best of {args.repeat}")
    print(f"{'executor':<26}{'kept items/s':>14}{'not kept':>12}{'ratio':>8}")
    for name, kept_rate, none_rate in rows:
        print(f"{name:<26}{kept_rate:>14.0f}{none_rate:>12.0f}{kept_rate / none_rate:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--dask-items", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", action="store_true", help="only P9: results kept or not")
    parser.add_argument(
        "--executors", nargs="+", default=["process", "thread", "dask"], help="with --results"
    )
    args = parser.parse_args()
    if args.results:
        results_cost(args)
        return
    n, repeat = args.items, args.repeat
    rows: list[tuple[str, float, str, float]] = []

    bare = best(repeat, lambda: bare_process_pool(n))
    for executor, concurrency in (("process", WORKERS), ("thread", WORKERS)):
        server = start_server(f"--JupyterProgress.executor={executor}")
        try:
            rate = best(repeat, lambda s=server, c=concurrency: server_job(s.url, s.token, n, c))
        finally:
            server.stop()
        rows.append(
            (f"{executor} (concurrency {concurrency})", rate, "ProcessPoolExecutor.map", bare)
        )

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        address = cluster.scheduler_address
        server = start_server(f"--JupyterProgress.dask_address={address}")
        try:
            bare_map = best(repeat, lambda: bare_dask(address, args.dask_items))
            for concurrency in (WORKERS, 8, 32):
                rate = best(
                    repeat,
                    lambda c=concurrency: server_job(server.url, server.token, args.dask_items, c),
                )
                rows.append((f"dask (concurrency {concurrency})", rate, "client.map", bare_map))
        finally:
            server.stop()

    print(
        f"\npython jobs of trivial items (operator:abs), {os.cpu_count()} cores, best of {repeat}"
    )
    print(f"{'executor':<26}{'items/s':>10}  {'alternative':<26}{'items/s':>10}{'ratio':>8}")
    for name, rate, alternative, other in rows:
        print(f"{name:<26}{rate:>10.0f}  {alternative:<26}{other:>10.0f}{rate / other:>8.2f}")

    print("\nbroadcast cost per item (JobManager.item_finished, in process)")
    for subscribers in (0, 1, 100):
        cost = min(broadcast_cost(subscribers) for _ in range(repeat))
        print(f"  {subscribers:>3} subscribers: {cost:6.1f} µs/item")


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())  # Subscriber makes an asyncio.Event
    main()
