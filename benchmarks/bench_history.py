"""P7 (server part): what history costs the server at 1,000 / 10,000 / 100,000 finished jobs.

Run: ``.venv/bin/python benchmarks/bench_history.py [--sizes 1000 10000 100000]``.

For each size, in the same run, against a server with an empty store:

- the snapshot a page gets when it opens the unfiltered event stream (bytes, and the
  time from the request to its last byte, p50 of 10 connects);
- ``GET jobs?limit=50`` p50 (200 requests on one connection), and a page deep in history
  (``before=`` a cursor half-way down) and a name search (``q=``) for comparison;
- the server's RSS once it has served those, against the empty server's;
- restart to ready (the server process started until ``GET jobs`` answers), p50 of 5,
  against the empty store's;
- the part of a start that is ours (open the store, recover), in-process, p50 of 5;
- one ``DELETE jobs?status=finished`` of the whole history, the seconds until its space
  is given back (free list empty), and the SQLite file's size after that.

Seeding: 100,000 jobs through HTTP would make creating them the benchmark, so
:func:`seed_history` writes finished jobs with ``JobStore`` (the server's own store class,
its own record and event format) in this process, in batches, before the server starts.
It is not a door into a running server: the server only ever reads the file at start,
like any store it wrote itself. Retention is switched off (``keep_finished=0``,
``keep_finished_days=0``) so the history stays for the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from _server import start_server
from bench_latency import rss_kb

from jupyter_progress.broker import EventBroker
from jupyter_progress.manager import JobManager
from jupyter_progress.models import JobKind, JobState, JobStatus, new_job_id
from jupyter_progress.sse import Event, format_json_event
from jupyter_progress.store import JobStore

from helpers.server_process import ServerProcess

NO_RETENTION = ["--JupyterProgress.keep_finished=0", "--JupyterProgress.keep_finished_days=0"]


def seed_history(db_path: Path, count: int, *, batch: int = 2000) -> float:
    """Write ``count`` finished top-level jobs (and their last events) into a store file,
    as the server would have left them; returns the seconds it took."""
    started = time.perf_counter()
    store = JobStore(db_path)
    now = time.time()
    event_id = time.time_ns() // 1000 - count * 10
    for first in range(0, count, batch):
        for number in range(first, min(first + batch, count)):
            created = now - (count - number) * 20.0  # one every 20 s, oldest first
            job = JobState(
                job_id=new_job_id(),
                name=f"convert batch {number}",
                kind=JobKind.REPORTED,
                status=JobStatus.FAILED if number % 10 == 0 else JobStatus.COMPLETED,
                total=100,
                success=98,
                errors=2,
                message=f"part-{number}.csv",
                error_samples=[{"item": "x.csv", "error": "ValueError: bad row 17"}],
                created_at=created,
                started_at=created,
                finished_at=created + 15.0,
            )
            event_id += 10
            job.event_id = event_id
            payload = {"type": "job_updated", "data": job.to_dict()}
            store.mark_dirty(job)
            store.add_event(
                Event(event_id, job.job_id, format_json_event(event_id, "job_updated", payload))
            )
        store.flush()
    store.close()
    return time.perf_counter() - started


async def snapshot_once(host: str, port: int, token: str) -> tuple[int, float]:
    """Bytes of the unfiltered stream's snapshot and seconds to its last byte."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /jupyter-progress/api/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: token {token}\r\n\r\n".encode()
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")  # the headers
    size, last = 0, started
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(1 << 16), 0.3)
        except asyncio.TimeoutError:
            break  # quiet: the snapshot is over (no job is running)
        if not chunk:
            break
        size += len(chunk)
        last = time.perf_counter()
    writer.close()
    return size, last - started


def p50(values: list[float]) -> float:
    return statistics.median(values)


def measure(server: ServerProcess, size: int) -> dict[str, Any]:
    host, port = "127.0.0.1", server.port
    snaps = [asyncio.run(snapshot_once(host, port, server.token)) for _ in range(10)]
    result: dict[str, Any] = {
        "snapshot_bytes": snaps[-1][0],
        "snapshot_ms": p50([t for _, t in snaps]) * 1000,
    }
    with server.client() as client:
        times = []
        for _ in range(200):
            started = time.perf_counter()
            response = client.get("jobs", params={"limit": 50})
            times.append(time.perf_counter() - started)
            assert response.status_code == 200
        result["page_ms"] = p50(times) * 1000
        result["page_jobs"] = len(response.json()["jobs"])
        # a page half-way down: follow cursors of 1000-job pages to the middle
        cursor, seen = None, 0
        while seen < size // 2:
            params: dict[str, Any] = {"limit": 1000, **({"before": cursor} if cursor else {})}
            body = client.get("jobs", params=params).json()
            seen += len(body["jobs"])
            cursor = body["next"]
            if cursor is None:
                break
        deep = []
        for _ in range(50):
            params = {"limit": 50, **({"before": cursor} if cursor else {})}
            started = time.perf_counter()
            client.get("jobs", params=params)
            deep.append(time.perf_counter() - started)
        result["deep_page_ms"] = p50(deep) * 1000
        search = []
        for _ in range(20):
            started = time.perf_counter()
            client.get("jobs", params={"limit": 50, "q": "batch 7"})
            search.append(time.perf_counter() - started)
        result["search_ms"] = p50(search) * 1000
    assert server.process is not None
    result["rss_mb"] = rss_kb(server.process.pid) / 1024
    return result


def restart_rounds(servers: dict[int, ServerProcess], rounds: int = 5) -> dict[int, float]:
    """Start-to-ready of every size, interleaved round by round, so the machine's load
    (shared, noisy) falls on all sizes alike; p50 per size."""
    times: dict[int, list[float]] = {size: [] for size in servers}
    for _ in range(rounds):
        for size, server in servers.items():
            started = time.monotonic()
            server.start()
            times[size].append(time.monotonic() - started)
            server.stop()
    return {size: p50(values) for size, values in times.items()}


def recover_ms(db_path: Path, runs: int = 5) -> float:
    """What the extension adds to a start: open the store and recover (p50), in-process,
    where the machine's load does not drown it as it does a whole server's start."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        store = JobStore(db_path)
        JobManager(store=store, broker=EventBroker(), keep_finished=0).recover()
        times.append(time.perf_counter() - started)
        store.close()
    return p50(times) * 1000


def wait_until_reclaimed(db_path: Path, timeout: float = 120.0) -> float:
    """Seconds until the file's free list is empty (deleted rows' space given back)."""
    started = time.perf_counter()
    with sqlite3.connect(db_path) as db:
        while db.execute("PRAGMA freelist_count").fetchone()[0] > 0:
            if time.perf_counter() - started > timeout:
                break
            time.sleep(0.05)
    return time.perf_counter() - started


def bench(sizes: list[int]) -> list[dict[str, Any]]:
    servers: dict[int, ServerProcess] = {}
    rows: dict[int, dict[str, Any]] = {}
    for size in sizes:
        server = servers[size] = start_server(*NO_RETENTION)  # creates the file
        server.stop()
        seeded = seed_history(server.db_path, size) if size else 0.0
        server.start()
        try:
            rows[size] = {"size": size, "seed_s": seeded, **measure(server, size)}
        finally:
            server.stop()
    for size, restart in restart_rounds(servers).items():
        rows[size]["restart_s"] = restart
        rows[size]["recover_ms"] = recover_ms(servers[size].db_path)
    for size, server in servers.items():
        server.start()
        try:
            with server.client() as client:
                started = time.perf_counter()
                response = client.delete("jobs", params={"status": "finished"}, timeout=600)
                rows[size]["delete_s"] = time.perf_counter() - started
                assert response.json() == {"deleted": size}, response.text
            rows[size]["reclaim_s"] = wait_until_reclaimed(server.db_path)
        finally:
            server.stop()
        rows[size]["db_mb"] = server.db_path.stat().st_size / 1e6  # after the delete
    return [rows[size] for size in sizes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    args = parser.parse_args()
    rows = bench([0, *args.sizes])
    empty = rows[0]
    header = (
        f"{'finished jobs':>13} {'seed s':>7} {'snapshot':>10} {'snap ms':>8} "
        f"{'page50 ms':>9} {'deep ms':>8} {'q= ms':>7} {'RSS MB':>7} {'RSS/empty':>9} "
        f"{'restart s':>9} {'/empty':>6} {'recover ms':>10} {'DELETE s':>8} "
        f"{'reclaim s':>9} {'file MB':>7}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['size']:>13,} {row['seed_s']:>7.1f} {row['snapshot_bytes']:>8,} B "
            f"{row['snapshot_ms']:>8.1f} {row['page_ms']:>9.2f} {row['deep_page_ms']:>8.2f} "
            f"{row['search_ms']:>7.1f} {row['rss_mb']:>7.1f} "
            f"{row['rss_mb'] / empty['rss_mb']:>8.2f}x {row['restart_s']:>9.2f} "
            f"{row['restart_s'] / empty['restart_s']:>5.2f}x {row['recover_ms']:>10.1f} "
            f"{row['delete_s']:>8.2f} {row['reclaim_s']:>9.2f} {row['db_mb']:>7.1f}"
        )


if __name__ == "__main__":
    main()
