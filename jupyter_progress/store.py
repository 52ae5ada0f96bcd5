"""Durable job state in one SQLite file (WAL), written in coalesced batches.

Per-item progress only marks a job dirty; a periodic flush writes the latest state of
each dirty job in one transaction. Final states are written at once, so a crash
(even ``kill -9``) never loses a finished job. Recent events are kept too, so a
stream reader can resume after ``Last-Event-ID``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import IO

from .exceptions import ProgressError
from .models import JobState
from .sse import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    frame BLOB NOT NULL,
    parents TEXT NOT NULL DEFAULT ''
);
"""


class StoreLocked(ProgressError):
    """Another server already keeps its jobs in this file."""


def _lock_exclusively(lock_path: Path) -> IO[str] | None:
    """Hold an exclusive lock for this process's life: two servers recovering and
    trimming one file would fail each other's running jobs."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, one server per file is on the user
        return None
    handle = open(lock_path, "a")  # noqa: SIM115 - held open until close()
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreLocked(f"{lock_path} is held by another jupyter-progress server") from None
    return handle


TRIM_EVERY = 1000  # events written between trims of the events table (a scan of it)


class JobStore:
    """Jobs and recent events in SQLite, owned by the server's event loop (one thread)."""

    def __init__(self, path: str | Path, *, events_kept: int = 10_000) -> None:
        self.path = Path(path)
        self.events_kept = events_kept
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_exclusively(self.path.with_name(self.path.name + ".lock"))
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._migrate()
        self._dirty_jobs: dict[str, JobState] = {}
        self._deleted: set[str] = set()
        self._new_events: list[Event] = []
        self.writes = 0
        self._events_since_trim = TRIM_EVERY  # trim once at the first flush

    def _migrate(self) -> None:
        """Bring a file written by an older version up to this schema."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        if "parents" not in columns:
            self._db.execute("ALTER TABLE events ADD COLUMN parents TEXT NOT NULL DEFAULT ''")

    def load_jobs(self) -> list[JobState]:
        rows = self._db.execute("SELECT record FROM jobs ORDER BY created_at").fetchall()
        return [JobState.from_record(json.loads(record)) for (record,) in rows]

    def load_events(self) -> list[Event]:
        rows = self._db.execute(
            "SELECT event_id, job_id, frame, parents FROM events ORDER BY event_id DESC LIMIT ?",
            (self.events_kept,),
        ).fetchall()
        return [
            Event(event_id, job_id, bytes(frame), tuple(filter(None, parents.split(","))))
            for event_id, job_id, frame, parents in reversed(rows)
        ]

    def mark_dirty(self, job: JobState) -> None:
        self._deleted.discard(job.job_id)
        self._dirty_jobs[job.job_id] = job

    def mark_deleted(self, job_id: str) -> None:
        self._dirty_jobs.pop(job_id, None)
        self._deleted.add(job_id)

    def add_event(self, event: Event) -> None:
        self._new_events.append(event)

    @property
    def has_pending_writes(self) -> bool:
        return bool(self._dirty_jobs or self._deleted or self._new_events)

    def flush(self) -> None:
        """Write everything pending in one transaction."""
        if not self.has_pending_writes:
            return
        jobs: list[tuple[str, float, str]] = [
            (job.job_id, job.created_at, json.dumps(job.to_record()))
            for job in self._dirty_jobs.values()
        ]
        deleted = [(job_id,) for job_id in self._deleted]
        events = [(e.event_id, e.job_id, e.frame, ",".join(e.parents)) for e in self._new_events]
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO jobs (job_id, created_at, record) VALUES (?, ?, ?) "
                "ON CONFLICT(job_id) DO UPDATE SET record = excluded.record",
                jobs,
            )
            self._db.executemany("DELETE FROM jobs WHERE job_id = ?", deleted)
            self._db.executemany(
                "INSERT OR REPLACE INTO events (event_id, job_id, frame, parents) "
                "VALUES (?, ?, ?, ?)",
                events,
            )
            self._events_since_trim += len(events)
            if self._events_since_trim >= TRIM_EVERY:
                self._events_since_trim = 0
                self._db.execute(
                    "DELETE FROM events WHERE event_id <= "
                    "(SELECT event_id FROM events ORDER BY event_id DESC LIMIT 1 OFFSET ?)",
                    (self.events_kept,),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise  # everything stays pending: the next flush tries again
        # Cleared only once committed (nothing runs between: the loop owns the store).
        self._dirty_jobs.clear()
        self._deleted.clear()
        self._new_events.clear()
        self.writes += 1

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the lock
