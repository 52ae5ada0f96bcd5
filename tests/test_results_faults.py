"""A damaged or locked results store never stops the server nor a job: a garbage file at
start is moved aside, and a python job whose results cannot be written still counts its
items and ends."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from jupyter_progress.broker import EventBroker
from jupyter_progress.executors import ThreadExecutor
from jupyter_progress.manager import JobManager
from jupyter_progress.models import JobKind, JobSpec, JobStatus
from jupyter_progress.results import FLUSH_ROWS, ResultStore
from jupyter_progress.runners import PythonRunner
from jupyter_progress.store import JobStore

from helpers.server_process import ServerProcess


def test_a_garbage_results_file_is_moved_aside_and_a_fresh_one_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs-results.sqlite"
    garbage = b"this is not a database, " * 200
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING):
        store = ResultStore(path)
    assert store.moved_aside is not None and store.moved_aside.read_bytes() == garbage
    assert "moved aside" in caplog.text
    store.open_job("a")
    store.add("a", 0, json.dumps(1))
    store.close()
    reopened = ResultStore(path)
    assert reopened.moved_aside is None
    assert reopened.results("a", total=1, offset=0, limit=1).entries == [1]
    reopened.close()


def test_the_results_store_waits_briefly_for_a_lock_like_the_job_store(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.sqlite")
    assert store._db.execute("PRAGMA busy_timeout").fetchone() == (250,)
    store.close()


def test_a_server_starts_over_a_garbage_results_file(tmp_path: Path) -> None:
    db = tmp_path / "db" / "jobs.sqlite"
    db.parent.mkdir()
    (db.parent / "jobs-results.sqlite").write_bytes(b"not a database at all " * 100)
    server = ServerProcess(tmp_path / "root", db)
    server.start()
    try:
        with server.client() as http:
            assert http.post("jobs", json={"name": "after", "total": 1}).status_code == 201
    finally:
        server.stop()
    assert len(list(db.parent.glob("jobs-results.corrupt-*.sqlite"))) == 1


async def test_a_job_whose_results_cannot_be_written_counts_its_items_and_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "results.sqlite"
    results = ResultStore(path)
    runner = PythonRunner(ThreadExecutor(), max_workers=2, results=results)
    manager = JobManager(
        store=JobStore(tmp_path / "jobs.sqlite"),
        broker=EventBroker(),
        runners={JobKind.PYTHON: runner},
    )
    manager.recover()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a real write lock: every write of the results fails
    count = 2 * FLUSH_ROWS + 2  # enough failures and values to write during the run
    try:
        with caplog.at_level(logging.WARNING):
            job = manager.create(
                JobSpec(
                    kind=JobKind.PYTHON,
                    name="locked results",
                    target="progress_tasks:fail_on_odd",
                    items=list(range(count)),
                )
            )

            async def finished() -> None:
                while not manager.get(job.job_id).is_final:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(finished(), 120)
    finally:
        other.execute("ROLLBACK")
        other.close()
    done = manager.get(job.job_id)
    assert done.status is JobStatus.COMPLETED
    assert (done.processed, done.success, done.errors) == (count, count // 2, count // 2)
    warnings = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert len(warnings) == 1, "logged once per job, not once per batch"
    await runner.shutdown()
    results.close()
    manager.store.close()
