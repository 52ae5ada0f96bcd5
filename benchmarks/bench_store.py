"""Store cost per progress report: coalesced writes (ours) vs a transaction per report.

Run: ``.venv/bin/python benchmarks/bench_store.py [--reports N]``. Drives the real
``JobManager`` and ``JobStore`` (a SQLite file in a temp dir, WAL) in-process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from jupyter_progress.broker import EventBroker
from jupyter_progress.manager import JobManager
from jupyter_progress.models import JobKind, JobSpec, ProgressReport
from jupyter_progress.store import JobStore


def run(reports: int, *, write_every_report: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        store = JobStore(Path(tmp) / "jobs.sqlite")
        manager = JobManager(store=store, broker=EventBroker())
        manager.recover()
        job = manager.create(JobSpec(kind=JobKind.REPORTED, name="bench", total=reports))
        flush_every = 0.5  # what the server's periodic flush does
        last_flush = time.perf_counter()
        started = time.perf_counter()
        for done in range(1, reports + 1):
            manager.report(job.job_id, ProgressReport(success=done))
            now = time.perf_counter()
            if write_every_report or now - last_flush >= flush_every:
                store.flush()
                last_flush = now
        elapsed = time.perf_counter() - started
        writes = store.writes
        store.close()
    return elapsed / reports * 1e6, writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=20_000)
    args = parser.parse_args()
    coalesced, coalesced_writes = run(args.reports, write_every_report=False)
    each, each_writes = run(args.reports, write_every_report=True)
    print(f"{args.reports:,} progress reports through JobManager + SQLite")
    print(f"{'coalesced (every 0.5 s)':26} {coalesced:7.1f} µs/report  {coalesced_writes:6} txns")
    print(f"{'a transaction per report':26} {each:7.1f} µs/report  {each_writes:6} txns")
    print(f"per-report cost, per-report writes / coalesced: {each / coalesced:.1f}x")


if __name__ == "__main__":
    main()
