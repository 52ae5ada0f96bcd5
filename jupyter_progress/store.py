"""Durable job state in one SQLite file (WAL), written in coalesced batches.

Per-item progress only marks a job dirty; a periodic flush writes the latest state of
each dirty job in one transaction. Final states are written at once, so a crash
(even ``kill -9``) never loses a finished job. Recent events are kept too, so a
stream reader can resume after ``Last-Event-ID``.

The store never stops the server: a file that cannot be read at start is moved aside
(kept, under a timestamped name) and a fresh one started; a write that fails (disk full,
a lock) leaves everything pending in memory, is retried at the next flush, and is logged
once per streak of failures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
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


#: Milliseconds a write waits for a lock held by another connection before it fails.
BUSY_TIMEOUT_MS = 250
TRIM_EVERY = 1000  # events written between trims of the events table (a scan of it)


class JobStore:
    """Jobs and recent events in SQLite, owned by the server's event loop (one thread)."""

    def __init__(
        self,
        path: str | Path,
        *,
        events_kept: int = 10_000,
        log: logging.Logger | None = None,
    ) -> None:
        self.path = Path(path)
        self.events_kept = events_kept
        self.log = log or logging.getLogger(__name__)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_exclusively(self.path.with_name(self.path.name + ".lock"))
        #: Whether the last server on this file stopped cleanly (it cancelled and wrote its
        #: own jobs): ``reported`` jobs are then left to the reporter timeout, not failed.
        self.stopped_cleanly = self._stop_marker.exists()
        with contextlib.suppress(OSError):
            self._stop_marker.unlink()
        #: Where an unreadable file was moved at start, if it was.
        self.moved_aside: Path | None = None
        #: Flushes that failed in a row (0 while writes work).
        self.failed_writes = 0
        self._dirty_jobs: dict[str, JobState] = {}
        self._deleted: set[str] = set()
        self._new_events: list[Event] = []
        self._loaded: list[JobState] = []
        self.writes = 0
        self._events_since_trim = TRIM_EVERY  # trim once at the first flush
        try:
            self._db = self._connect(self.path)
        except sqlite3.DatabaseError as error:
            self._db = self._start_fresh(error)

    @property
    def _stop_marker(self) -> Path:
        return self.path.with_name(self.path.name + ".stopped")

    @staticmethod
    def _connect(path: Path | str) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # A lock held by another program fails a flush fast (it is retried at the
            # next one) rather than stalling the event loop for seconds.
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.executescript(SCHEMA)
            JobStore._migrate(db)
            db.execute("SELECT job_id FROM jobs LIMIT 1").fetchall()
            db.execute("SELECT event_id FROM events LIMIT 1").fetchall()
        except BaseException:
            db.close()
            raise
        return db

    def _start_fresh(self, error: BaseException) -> sqlite3.Connection:
        """Move an unreadable file aside (kept, with a timestamped name) and start anew.

        Jobs already read from it are written to the fresh file. Where even that fails
        (the directory is read-only), the server keeps its jobs in memory only.
        """
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.stem}.corrupt-{stamp}{self.path.suffix}")
        try:
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.rename(f"{aside}{suffix}")
            db = self._connect(self.path)
        except (OSError, sqlite3.Error) as failure:
            self.log.warning(
                "the job store %s cannot be read (%s) nor replaced (%s): this server keeps "
                "its jobs in memory only; they will not survive a restart",
                self.path,
                error,
                failure,
            )
            return self._connect(":memory:")
        self.moved_aside = aside
        self.log.warning(
            "the job store %s could not be read (%s): it was moved aside to %s and this "
            "server starts with a fresh store",
            self.path,
            error,
            aside,
        )
        for job in self._loaded:
            self.mark_dirty(job)
        return db

    def _replace(self, error: BaseException) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._db = self._start_fresh(error)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring a file written by an older version up to this schema."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        if "parents" not in columns:
            db.execute("ALTER TABLE events ADD COLUMN parents TEXT NOT NULL DEFAULT ''")

    def load_jobs(self) -> list[JobState]:
        """Every stored job; an unreadable file is moved aside (and there are none)."""
        try:
            rows = self._db.execute("SELECT record FROM jobs ORDER BY created_at").fetchall()
        except sqlite3.DatabaseError as error:
            self._replace(error)
            return []
        jobs = []
        for (record,) in rows:
            try:
                jobs.append(JobState.from_record(json.loads(record)))
            except Exception as error:  # one damaged row costs that job, not the store
                self.log.warning("skipping an unreadable job record in %s: %s", self.path, error)
        self._loaded = jobs
        return jobs

    def load_events(self) -> list[Event]:
        try:
            rows = self._db.execute(
                "SELECT event_id, job_id, frame, parents FROM events "
                "ORDER BY event_id DESC LIMIT ?",
                (self.events_kept,),
            ).fetchall()
        except sqlite3.DatabaseError as error:
            self._replace(error)  # the jobs already read are written to the fresh file
            return []
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
            with contextlib.suppress(sqlite3.Error):  # a failed COMMIT may have ended it
                self._db.execute("ROLLBACK")
            # Everything stays pending for the next flush; only the newest events are
            # worth keeping for replay, so a long outage cannot grow memory without bound.
            del self._new_events[: -self.events_kept or None]
            raise
        # Cleared only once committed (nothing runs between: the loop owns the store).
        self._dirty_jobs.clear()
        self._deleted.clear()
        self._new_events.clear()
        self.writes += 1

    def try_flush(self) -> bool:
        """``flush``, but a failure is logged (once per streak) and retried next time.

        While writes fail the server goes on from memory; nothing pending is dropped
        (bar the oldest replay events), so final states are written once it works again.
        """
        try:
            self.flush()
        except (sqlite3.Error, OSError) as error:
            self.failed_writes += 1
            if self.failed_writes == 1:
                self.log.warning(
                    "could not write jobs to %s (%s); the server keeps them in memory and "
                    "retries at every flush",
                    self.path,
                    error,
                )
            return False
        if self.failed_writes:
            self.log.warning(
                "jobs are written to %s again (after %d failed attempts)",
                self.path,
                self.failed_writes,
            )
            self.failed_writes = 0
        return True

    def close(self, *, clean: bool = False) -> None:
        """Write what is pending and close; ``clean`` leaves a mark that the server's own
        jobs were ended and written (see ``stopped_cleanly``)."""
        try:
            written = self.try_flush()
            if clean and written:
                with contextlib.suppress(OSError):
                    self._stop_marker.touch()
        finally:
            self._db.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the lock
