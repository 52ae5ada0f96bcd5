"""A damaged store never stops the server: a corrupt file at start is moved aside, and a
failing write is retried (logged once per streak) until the final states are written."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from jupyter_progress.broker import EventBroker
from jupyter_progress.manager import JobManager
from jupyter_progress.models import JobKind, JobSpec, JobStatus, ProgressReport
from jupyter_progress.store import JobStore

from helpers.server_process import ServerProcess


def test_a_corrupt_file_at_start_is_moved_aside_and_the_server_serves(tmp_path: Path) -> None:
    db = tmp_path / "db" / "jobs.sqlite"
    db.parent.mkdir()
    garbage = b"this is not a database, " * 200
    db.write_bytes(garbage)
    server = ServerProcess(tmp_path / "root", db)
    server.start()
    try:
        with server.client() as http:
            created = http.post("jobs", json={"name": "after", "total": 2})
            assert created.status_code == 201
            job_id = created.json()["job_id"]
            assert http.post(f"jobs/{job_id}/progress", json={"success": 2}).status_code == 200
            assert [job["job_id"] for job in http.get("jobs").json()["jobs"]] == [job_id]
    finally:
        server.stop()
    kept = list(db.parent.glob("jobs.corrupt-*.sqlite"))
    assert len(kept) == 1 and kept[0].read_bytes() == garbage
    assert "moved aside" in server.log_path.read_text()
    with sqlite3.connect(db) as fresh:  # the fresh store holds the new job
        assert fresh.execute("SELECT job_id FROM jobs").fetchall() == [(job_id,)]


def test_a_damaged_table_found_while_loading_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store = JobStore(path)
    store.close()
    with sqlite3.connect(path) as db:  # a file SQLite opens, but whose jobs table is wrong
        db.execute("DROP TABLE jobs")
        db.execute("CREATE TABLE jobs (job_id TEXT)")
    store = JobStore(path)
    assert store.load_jobs() == []
    assert store.moved_aside is not None and store.moved_aside.exists()
    store.close()


class FailingConnection:
    """A sqlite3 connection whose writes fail while ``failing`` is set (a full disk)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.failing = False
        self.attempts = 0

    def _check(self, sql: str) -> None:
        if self.failing and sql.split()[0].upper() in {"BEGIN", "INSERT", "DELETE"}:
            self.attempts += 1
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self.db.executemany(sql, *args)

    def close(self) -> None:
        self.db.close()


def test_a_failing_write_keeps_serving_and_writes_final_states_once_it_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.sqlite"
    store = JobStore(path)
    manager = JobManager(store=store, broker=EventBroker())
    manager.recover()
    connection = FailingConnection(store._db)
    store._db = connection  # type: ignore[assignment]
    connection.failing = True
    reader = manager.broker.subscribe()
    with caplog.at_level(logging.WARNING):
        job = manager.create(JobSpec(kind=JobKind.REPORTED, name="on a full disk", total=10))
        for done in range(1, 11):
            manager.report(job.job_id, ProgressReport(success=done))
            manager._flush()
        manager.report(job.job_id, ProgressReport(status=JobStatus.COMPLETED))
        manager._flush()
    assert connection.attempts >= 10, "every flush tries again"
    failures = [r for r in caplog.records if "could not write jobs" in r.getMessage()]
    assert len(failures) == 1, "logged once per streak, not per attempt"
    assert manager.get(job.job_id).status is JobStatus.COMPLETED  # served from memory
    assert reader.pending[-1].job_id == job.job_id  # readers still got every change
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)

    connection.failing = False
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        manager._flush()
    assert any("written to" in r.getMessage() for r in caplog.records)
    store.close()

    reopened = JobStore(path)
    (saved,) = reopened.load_jobs()
    assert saved.status is JobStatus.COMPLETED
    assert saved.success == 10 and saved.total == 10
    reopened.close()


def test_a_failing_write_while_stopping_does_not_raise(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    manager = JobManager(store=store, broker=EventBroker())
    manager.recover()
    connection = FailingConnection(store._db)
    store._db = connection  # type: ignore[assignment]
    connection.failing = True
    manager.create(JobSpec(kind=JobKind.REPORTED, name="x", total=1))
    store.close(clean=True)
    assert not store.stopped_cleanly
    assert not (tmp_path / "jobs.sqlite.stopped").exists(), "an unwritten stop is not clean"


def test_a_store_locked_by_another_program_is_written_once_the_lock_goes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.sqlite"
    store = JobStore(path)
    manager = JobManager(store=store, broker=EventBroker())
    manager.recover()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a real write lock, as a sqlite3 shell could hold
    try:
        with caplog.at_level(logging.WARNING):
            job = manager.create(JobSpec(kind=JobKind.REPORTED, name="locked", total=2))
            manager.report(job.job_id, ProgressReport(success=2, status=JobStatus.COMPLETED))
            manager._flush()
        assert store.failed_writes >= 3
        assert len([r for r in caplog.records if "could not write" in r.getMessage()]) == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    manager._flush()
    assert store.failed_writes == 0
    store.close()
    reopened = JobStore(path)
    (saved,) = reopened.load_jobs()
    assert saved.status is JobStatus.COMPLETED and saved.success == 2
    reopened.close()


def write_finished_jobs(path: Path, count: int) -> None:
    store = JobStore(path)
    manager = JobManager(store=store, broker=EventBroker())
    manager.recover()
    for index in range(count):
        job = manager.create(JobSpec(kind=JobKind.REPORTED, name="x" * 150 + str(index), total=1))
        manager.job_finished(job.job_id, JobStatus.COMPLETED, "done")
    store.close(clean=True)


def damage_newest_job_pages(path: Path) -> None:
    """Overwrite the table pages of the newest jobs, which only history reads reach (the
    start-up checks and the running jobs' index do not)."""
    with sqlite3.connect(path) as db:
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
        pages = [
            pageno
            for (pageno,) in db.execute(
                "SELECT pageno FROM dbstat WHERE name = 'jobs' AND pagetype = 'leaf' "
                "ORDER BY pageno"
            )
        ]
    assert len(pages) >= 9
    with open(path, "r+b") as file:
        for pageno in pages[-len(pages) // 3 :]:
            file.seek((pageno - 1) * page_size + 8)
            file.write(b"\xa5" * (page_size - 8))


def test_damaged_pages_of_finished_jobs_at_start_move_the_file_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.sqlite"
    write_finished_jobs(path, 600)
    damage_newest_job_pages(path)
    store = JobStore(path)
    assert store.moved_aside is None, "the checks at open do not reach these pages"
    manager = JobManager(store=store, broker=EventBroker())
    with caplog.at_level(logging.WARNING):
        manager.recover()
    assert store.moved_aside is not None and store.moved_aside.exists()
    assert "moved aside" in caplog.text
    job = manager.create(JobSpec(kind=JobKind.REPORTED, name="after", total=1))
    manager.job_finished(job.job_id, JobStatus.COMPLETED, "done")
    store.close()
    reopened = JobStore(path)
    assert [saved.name for saved in reopened.load_jobs()] == ["after"]
    reopened.close()


def test_a_server_starts_over_damaged_pages_of_finished_jobs(tmp_path: Path) -> None:
    db = tmp_path / "db" / "jobs.sqlite"
    db.parent.mkdir()
    write_finished_jobs(db, 600)
    damage_newest_job_pages(db)
    server = ServerProcess(tmp_path / "root", db)
    server.start()
    try:
        with server.client() as http:
            created = http.post("jobs", json={"name": "after", "total": 1})
            assert created.status_code == 201
            assert [job["name"] for job in http.get("jobs").json()["jobs"]] == ["after"]
    finally:
        server.stop()
    assert len(list(db.parent.glob("jobs.corrupt-*.sqlite"))) == 1
    assert "moved aside" in server.log_path.read_text()


def write_version_1_file(path: Path, rows: list[tuple[str, str]]) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, created_at REAL NOT NULL, "
            "record TEXT NOT NULL);"
            "CREATE TABLE events (event_id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, "
            "frame BLOB NOT NULL);"
        )
        db.executemany(
            "INSERT INTO jobs VALUES (?, ?, ?)",
            [(job_id, float(index), record) for index, (job_id, record) in enumerate(rows)],
        )


def test_the_upgrade_of_an_old_file_skips_a_damaged_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = JobStore(tmp_path / "new.sqlite")
    manager = JobManager(store=source, broker=EventBroker())
    manager.recover()
    job = manager.create(JobSpec(kind=JobKind.REPORTED, name="kept", total=1))
    manager.job_finished(job.job_id, JobStatus.COMPLETED, "done")
    source.close()
    with sqlite3.connect(tmp_path / "new.sqlite") as db:
        (good,) = db.execute("SELECT record FROM jobs").fetchone()
    path = tmp_path / "old.sqlite"
    damaged = [("a" * 32, "{not json"), ("b" * 32, json.dumps({"job_id": "b" * 32}))]
    write_version_1_file(path, [*damaged, (job.job_id, good)])
    with caplog.at_level(logging.WARNING):
        store = JobStore(path)
    assert store.moved_aside is None, "two damaged records cost those jobs, not the file"
    assert len([r for r in caplog.records if "unreadable job record" in r.getMessage()]) == 2
    assert [saved.name for saved in store.newest_finished(10)] == ["kept"]
    store.close()
    again = JobStore(path)  # the lock was let go, and the file is upgraded once
    assert [saved.name for saved in again.newest_finished(10)] == ["kept"]
    again.close()
