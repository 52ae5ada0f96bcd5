"""The store and manager with history: memory bounded by what runs, a file from an older
version converted, pruning in batches. A real SQLite file, the real manager."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from jupyter_progress.broker import EventBroker
from jupyter_progress.manager import RESTART_MESSAGE, JobManager
from jupyter_progress.models import JobKind, JobPage, JobSpec, JobState, JobStatus, ProgressReport
from jupyter_progress.store import JobStore


def manager_on(path: Path, **options: int) -> JobManager:
    manager = JobManager(store=JobStore(path), broker=EventBroker(), **options)  # type: ignore[arg-type]
    manager.recover()
    return manager


def finished(manager: JobManager, name: str, parent_id: str | None = None) -> str:
    job = manager.create(JobSpec(kind=JobKind.REPORTED, name=name, parent_id=parent_id))
    manager.report(job.job_id, ProgressReport(status=JobStatus.COMPLETED))
    return job.job_id


def test_a_restart_loads_what_runs_not_the_history(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    manager = manager_on(path, finished_cache=10)
    ids = [finished(manager, f"old {n}") for n in range(500)]
    parent = manager.create(JobSpec(kind=JobKind.REPORTED, name="running parent"))
    child = manager.create(
        JobSpec(kind=JobKind.REPORTED, name="running child", parent_id=parent.job_id)
    )
    assert manager.in_memory()["finished_cached"] <= 10
    manager.store.close()  # like kill -9: nothing more is written

    manager = manager_on(path, snapshot_finished=5, finished_cache=10)
    counts = manager.in_memory()
    assert counts == {"running": 0, "finished_cached": 2, "snapshot_finished": 5}
    for job_id in (parent.job_id, child.job_id):
        job = manager.get(job_id)
        assert (job.status, job.message) == (JobStatus.FAILED, RESTART_MESSAGE)
    assert manager.get(ids[0]).name == "old 0"  # from the store, into the cache
    assert manager.in_memory()["finished_cached"] == 3
    page, cursor = manager.list_jobs(JobPage(limit=3))
    assert [job.job_id for job in page] == [parent.job_id, ids[-1], ids[-2]]
    assert cursor is not None
    manager.store.close()


def test_a_file_from_an_older_version_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    old = JobState(job_id="a" * 32, name="Old Job", kind=JobKind.REPORTED, created_at=1.0)
    old.status, old.finished_at, old.started_at = JobStatus.COMPLETED, 2.0, 1.0
    record = old.to_record()
    for key in ("parent_id", "unit", "unit_scale", "postfix", "leave", "_ancestors", "_event_id"):
        record.pop(key)
    with sqlite3.connect(path) as db:  # the schema of the first versions
        db.executescript(
            "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, created_at REAL NOT NULL, "
            "record TEXT NOT NULL);"
            "CREATE TABLE events (event_id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, "
            "frame BLOB NOT NULL);"
        )
        db.execute("INSERT INTO jobs VALUES (?, ?, ?)", (old.job_id, 1.0, json.dumps(record)))
        db.execute("INSERT INTO events VALUES (5, ?, ?)", (old.job_id, b"id: 5\n\n"))
    manager = manager_on(path)
    (job,) = manager.list_jobs(JobPage(q="old j", statuses=frozenset({"completed"})))[0]
    assert job.job_id == old.job_id
    assert job.to_dict()["unit"] == "it" and job.to_dict()["leave"] is True
    assert manager.delete_finished() == 1
    manager.store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)


def test_pruning_deletes_in_batches_and_keeps_the_newest(tmp_path: Path) -> None:
    manager = manager_on(tmp_path / "jobs.sqlite", keep_finished=7, prune_batch=4)
    subscriber = manager.broker.subscribe()
    ids = [finished(manager, f"job {n}") for n in range(20)]
    running = manager.create(JobSpec(kind=JobKind.REPORTED, name="running"))
    subscriber.pending  # noqa: B018 - drained below
    writes = manager.store.writes
    assert asyncio.run(manager.prune()) == 13
    assert manager.store.writes - writes >= 13 // 4  # one transaction per batch
    removed = [
        json.loads(event.frame.split(b"data: ")[1])["data"]["job_id"]
        for event in subscriber.pending
        if b"job_removed" in event.frame
    ]
    assert sorted(removed) == sorted(ids[:13])
    page, _ = manager.list_jobs(JobPage(limit=100))
    assert [job.job_id for job in page] == [running.job_id, *ids[13:][::-1]]
    assert asyncio.run(manager.prune()) == 0
    manager.store.close()


def test_a_big_bulk_delete_announces_every_job_between_other_work(tmp_path: Path) -> None:
    manager = JobManager(
        store=JobStore(tmp_path / "jobs.sqlite"), broker=EventBroker(max_pending_bytes=10**9)
    )
    manager.recover()
    ids = {finished(manager, f"job {n}") for n in range(2500)}
    subscriber = manager.broker.subscribe()

    async def delete_and_count() -> tuple[int, int, int]:
        deleted = manager.delete_finished()
        at_once = len(subscriber.pending)  # the rest comes in later turns of the loop
        await asyncio.gather(*manager._announcing)
        return deleted, at_once, len(subscriber.pending)

    deleted, at_once, in_all = asyncio.run(delete_and_count())
    assert deleted == 2500
    assert at_once < 2500
    frames = [event.frame for event in subscriber.pending]
    removed = {json.loads(frame.split(b"data: ")[1])["data"]["job_id"] for frame in frames}
    assert in_all == 2500 and removed == ids
    event_ids = [event.event_id for event in subscriber.pending]
    assert event_ids == sorted(event_ids)
    manager.store.close()
