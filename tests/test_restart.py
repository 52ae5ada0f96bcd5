"""Durability: a real server process, a real SQLite file, ``kill -9`` and a restart."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from jupyter_progress.broker import EventBroker
from jupyter_progress.manager import RESTART_MESSAGE, JobManager
from jupyter_progress.models import JobKind, JobSpec, JobStatus, ProgressReport
from jupyter_progress.store import TRIM_EVERY, JobStore, StoreLocked

from helpers.server_process import ServerProcess


def test_kill_9_loses_no_finished_job_and_fails_running_ones(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "root", tmp_path / "db" / "jobs.sqlite")
    server.start()
    try:
        with server.client() as http:
            done = http.post("jobs", json={"name": "done", "total": 10}).json()
            http.post(
                f"jobs/{done['job_id']}/progress",
                json={
                    "success": 8,
                    "errors": 2,
                    "error_samples": [{"item": "a.csv", "error": "ValueError: bad"}],
                    "status": "completed",
                },
            )
            cancelled = http.post("jobs", json={"name": "cancelled", "total": 5}).json()
            http.post(f"jobs/{cancelled['job_id']}/progress", json={"success": 2})
            http.post(f"jobs/{cancelled['job_id']}/cancel")
            running = http.post("jobs", json={"name": "running", "total": 100}).json()
            for done_items in range(1, 31):
                http.post(f"jobs/{running['job_id']}/progress", json={"success": done_items})
            before = {job["job_id"]: job for job in http.get("jobs").json()["jobs"]}
    finally:
        server.kill()

    server.start()
    try:
        # Recovery runs before the server listens: its very first answer is already final.
        with server.client() as http:
            after = {job["job_id"]: job for job in http.get("jobs").json()["jobs"]}
        for key in (done["job_id"], cancelled["job_id"]):
            for field in ("status", "progress", "error_samples", "name", "finished_at"):
                assert after[key][field] == before[key][field]
        failed = after[running["job_id"]]
        assert failed["status"] == "failed"
        assert failed["message"] == RESTART_MESSAGE
        assert failed["finished_at"] is not None
        assert 0 <= failed["progress"]["processed"] <= 30
    finally:
        server.stop()


def test_progress_writes_are_coalesced_into_few_transactions(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    manager = JobManager(store=store, broker=EventBroker())
    manager.recover()
    job = manager.create(JobSpec(kind=JobKind.REPORTED, name="many", total=10_000))
    writes_after_create = store.writes
    for done in range(1, 10_001):
        manager.report(job.job_id, ProgressReport(success=done))
    assert store.writes == writes_after_create, "per-item reports are not written one by one"
    store.flush()
    assert store.writes == writes_after_create + 1
    manager.report(job.job_id, ProgressReport(success=10_000, status=JobStatus.COMPLETED))
    assert store.writes == writes_after_create + 2, "a final state is written at once"
    with sqlite3.connect(tmp_path / "jobs.sqlite") as db:
        (count,) = db.execute("SELECT COUNT(*) FROM events").fetchone()
    assert count <= store.events_kept + TRIM_EVERY, "old events are trimmed"
    assert len(store.load_events()) == store.events_kept
    store.close()


def test_silent_reporter_fails_the_job(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    manager = JobManager(store=store, broker=EventBroker(), reporter_timeout=30)
    manager.recover()
    job = manager.create(JobSpec(kind=JobKind.REPORTED, name="kernel died", total=5))
    assert manager.fail_silent_reporters(now=time.monotonic() + 10) == []
    assert manager.fail_silent_reporters(now=time.monotonic() + 31) == [job.job_id]
    assert job.status.value == "failed"
    assert "no progress report" in job.message
    store.close()


def test_a_failed_flush_keeps_its_writes_for_the_next_one(tmp_path: Path) -> None:
    """Regression: pending writes were dropped before the transaction, and lost on error."""
    path = tmp_path / "jobs.sqlite"
    store = JobStore(path)
    manager = JobManager(store=store, broker=EventBroker())
    manager.recover()
    job = manager.create(JobSpec(kind=JobKind.REPORTED, name="x", total=5))
    manager.report(job.job_id, ProgressReport(success=3))
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    store._db.execute("PRAGMA busy_timeout=0")
    try:
        store.flush()
    except sqlite3.OperationalError:
        pass
    else:
        raise AssertionError("the flush should have met the lock")
    blocker.rollback()
    blocker.close()
    store.flush()
    store.close()
    reopened = JobStore(path)
    (reloaded,) = reopened.load_jobs()
    reopened.close()
    assert reloaded.success == 3


def test_a_second_store_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = JobStore(tmp_path / "jobs.sqlite")
    with pytest.raises(StoreLocked):
        JobStore(tmp_path / "jobs.sqlite")
    first.close()
    JobStore(tmp_path / "jobs.sqlite").close()


def test_a_second_server_on_the_same_file_leaves_the_first_ones_jobs_alone(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "db" / "jobs.sqlite"
    first = ServerProcess(tmp_path / "one", shared)
    second = ServerProcess(tmp_path / "two", shared)
    first.start()
    try:
        with first.client() as http:
            running = http.post("jobs", json={"name": "long", "total": 10}).json()
            http.post(f"jobs/{running['job_id']}/progress", json={"success": 4})
        second.start()
        try:
            with second.client() as http:
                assert http.get("jobs").json()["jobs"] == []
                assert http.post("jobs", json={"name": "other"}).status_code == 201
        finally:
            second.stop()
        assert "held by another jupyter-progress server" in second.log_path.read_text()
        with first.client() as http:
            job = http.get(f"jobs/{running['job_id']}").json()
        assert (job["status"], job["progress"]["success"]) == ("processing", 4)
    finally:
        first.stop()
