"""Durable job state in one SQLite file (WAL), written in coalesced batches.

Per-item progress only marks a job dirty; a periodic flush writes the latest state of
each dirty job in one transaction. Final states are written at once, so a crash
(even ``kill -9``) never loses a finished job. Recent events are kept too, so a
stream reader can resume after ``Last-Event-ID``.

History is queried here, never held in memory: the ``jobs`` table has columns beside the
JSON record (parent, status, folded name, finish time, ancestors) and indexes so that a
page of jobs, a parent's children, the jobs to prune and the running jobs each cost an
index range, the same with 100 or 100,000 jobs. The file reclaims the space of deleted
jobs (``auto_vacuum=INCREMENTAL``, a step after each prune).

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .exceptions import ProgressError
from .models import JobPage, JobState
from .sse import Event

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    record TEXT NOT NULL,
    parent_id TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    name_folded TEXT NOT NULL DEFAULT '',
    finished_at REAL,
    ancestors TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    frame BLOB NOT NULL,
    parents TEXT NOT NULL DEFAULT ''
);
"""

# Pages newest first (top level: parent_id IS NULL), a parent's children, status filtered
# from the index entry itself; finished jobs by end time (snapshot, retention); running ones.
INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_id, created_at, job_id, status);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_top_finished ON jobs (finished_at)
    WHERE finished_at IS NOT NULL AND parent_id IS NULL;
CREATE INDEX IF NOT EXISTS jobs_running ON jobs (created_at) WHERE finished_at IS NULL;
"""

FINAL_STATUS_VALUES = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class RemovedJob:
    """A job deleted from the store: enough to tell its readers (``job_removed``)."""

    job_id: str
    ancestors: tuple[str, ...]


def _split(text: str) -> tuple[str, ...]:
    return tuple(filter(None, text.split(",")))


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
            try:
                self._db = self._connect(self.path, self.log)
            except Exception as error:  # unreadable, or damage the checks did not foresee
                self._db = self._start_fresh(error)
        except BaseException:
            if self._lock_file is not None:  # a store that failed to open holds no lock
                self._lock_file.close()
            raise

    @property
    def _stop_marker(self) -> Path:
        return self.path.with_name(self.path.name + ".stopped")

    @staticmethod
    def _connect(path: Path | str, log: logging.Logger) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            # Before the first table exists (a new file); an older file is converted once.
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # A lock held by another program fails a flush fast (it is retried at the
            # next one) rather than stalling the event loop for seconds.
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.executescript(SCHEMA)
            JobStore._migrate(db, log)
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
            db = self._connect(self.path, self.log)
        except Exception as failure:
            self.log.warning(
                "the job store %s cannot be read (%s) nor replaced (%s): this server keeps "
                "its jobs in memory only; they will not survive a restart",
                self.path,
                error,
                failure,
            )
            return self._connect(":memory:", self.log)
        self.moved_aside = aside
        self.log.warning(
            "the job store %s could not be read (%s): it was moved aside to %s and this "
            "server starts with a fresh store",
            self.path,
            error,
            aside,
        )
        for job in self._loaded:
            if job.job_id not in self._deleted:
                self.mark_dirty(job)
        return db

    def _replace(self, error: BaseException) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._db = self._start_fresh(error)

    def at_start(self, read: Callable[[], object]) -> None:
        """Run a start-up step that reads history (recent finished jobs, children).

        Those are the first reads of finished jobs' pages, which the checks at open never
        touch: a damaged one moves the file aside (as ``load_running`` does) and the step
        runs again on the fresh file, so a damaged store never keeps the server from
        starting.
        """
        try:
            read()
        except sqlite3.DatabaseError as error:
            self._replace(error)
            read()

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

    @staticmethod
    def _migrate(db: sqlite3.Connection, log: logging.Logger) -> None:
        """Bring a file written by an older version up to this schema (once); a damaged
        record is skipped (it costs that job, as when loading), not the whole file."""
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version < SCHEMA_VERSION:
            columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
            if "parents" not in columns:
                db.execute("ALTER TABLE events ADD COLUMN parents TEXT NOT NULL DEFAULT ''")
            columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for column, declaration in (
                ("parent_id", "TEXT"),
                ("status", "TEXT NOT NULL DEFAULT 'pending'"),
                ("name_folded", "TEXT NOT NULL DEFAULT ''"),
                ("finished_at", "REAL"),
                ("ancestors", "TEXT NOT NULL DEFAULT ''"),
            ):
                if column not in columns:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declaration}")
            updates = []
            for (record,) in db.execute("SELECT record FROM jobs").fetchall():
                try:
                    job = JobState.from_record(json.loads(record))
                except Exception as error:  # left with the columns' defaults, never listed
                    log.warning("skipping an unreadable job record while upgrading: %s", error)
                    continue
                updates.append((*JobStore._indexed(job), job.job_id))
            if updates:
                db.execute("BEGIN")
                db.executemany(
                    "UPDATE jobs SET parent_id = ?, status = ?, name_folded = ?, "
                    "finished_at = ?, ancestors = ? WHERE job_id = ?",
                    updates,
                )
                db.execute("COMMIT")
            (auto_vacuum,) = db.execute("PRAGMA auto_vacuum").fetchone()
            if auto_vacuum != 2:  # a file from before: VACUUM applies the setting
                db.execute("VACUUM")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.executescript(INDEXES)

    @staticmethod
    def _indexed(job: JobState) -> tuple[str | None, str, str, float | None, str]:
        """The columns queried beside the record: parent, status, name, end, ancestors."""
        return (
            job.parent_id,
            job.status.value,
            job.name.casefold(),
            job.finished_at if job.is_final else None,
            ",".join(job.ancestors),
        )

    def _records(self, sql: str, parameters: Sequence[object]) -> list[JobState]:
        jobs = []
        for (record,) in self._db.execute(sql, parameters).fetchall():
            try:
                jobs.append(JobState.from_record(json.loads(record)))
            except Exception as error:  # one damaged row costs that job, not the store
                self.log.warning("skipping an unreadable job record in %s: %s", self.path, error)
        return jobs

    def load_running(self) -> list[JobState]:
        """The jobs that were not final when last written (failed at a restart); an
        unreadable file is moved aside (and there are none)."""
        try:
            jobs = self._records(
                "SELECT record FROM jobs WHERE finished_at IS NULL ORDER BY created_at", ()
            )
        except sqlite3.DatabaseError as error:
            self._replace(error)
            return []
        self._loaded = jobs  # written to a fresh file if the events prove it unreadable
        return jobs

    def load_job(self, job_id: str) -> JobState | None:
        found = self._records("SELECT record FROM jobs WHERE job_id = ?", (job_id,))
        return found[0] if found else None

    def newest_finished(self, count: int) -> list[JobState]:
        """The top-level jobs that finished last, newest first."""
        return self._records(
            "SELECT record FROM jobs INDEXED BY jobs_top_finished "
            "WHERE finished_at IS NOT NULL AND parent_id IS NULL "
            "ORDER BY finished_at DESC LIMIT ?",
            (count,),
        )

    def page(self, query: JobPage) -> list[JobState]:
        """One page, newest first, of the jobs under ``query.parent_id`` (None: top level).

        Walks the ``jobs_by_parent`` index from the cursor down, so a page costs the same
        however many older jobs there are (a rare status or a name search reads further).
        """
        where = ["parent_id IS ?"]
        parameters: list[object] = [query.parent_id]
        if query.before is not None:
            where.append("(created_at, job_id) < (?, ?)")
            parameters.extend(query.before)
        if query.statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            parameters.extend(sorted(query.statuses))
        if query.q:
            where.append("instr(name_folded, ?) > 0")
            parameters.append(query.q.casefold())
        parameters.append(query.limit)
        return self._records(
            "SELECT record FROM jobs INDEXED BY jobs_by_parent WHERE "
            + " AND ".join(where)
            + " ORDER BY created_at DESC, job_id DESC LIMIT ?",
            parameters,
        )

    def child_ids(self, parent_ids: Iterable[str]) -> list[str]:
        """The ids of these jobs' direct children."""
        found: list[str] = []
        for parent_id in parent_ids:
            found.extend(
                job_id
                for (job_id,) in self._db.execute(
                    "SELECT job_id FROM jobs WHERE parent_id = ?", (parent_id,)
                )
            )
        return found

    def surplus_finished_children(self, parent_id: str, keep: int) -> list[RemovedJob]:
        """A parent's finished children beyond the newest ``keep`` (by creation)."""
        return self._removed(
            "SELECT job_id, ancestors FROM jobs WHERE parent_id = ? AND finished_at IS NOT NULL "
            "ORDER BY created_at DESC LIMIT -1 OFFSET ?",
            (parent_id, keep),
        )

    def expired(self, *, keep: int, finished_before: float, batch: int) -> list[RemovedJob]:
        """Up to ``batch`` finished jobs past retention: too old, or beyond the newest ``keep``."""
        old = self._removed(
            "SELECT job_id, ancestors FROM jobs WHERE finished_at < ? ORDER BY finished_at LIMIT ?",
            (finished_before, batch),
        )
        if old:
            return old
        return self._removed(
            "SELECT job_id, ancestors FROM jobs WHERE finished_at IS NOT NULL "
            "ORDER BY finished_at DESC LIMIT ? OFFSET ?",
            (batch, keep),
        )

    def _removed(self, sql: str, parameters: Sequence[object]) -> list[RemovedJob]:
        return [RemovedJob(job_id, _split(a)) for job_id, a in self._db.execute(sql, parameters)]

    def delete_jobs(self, job_ids: Sequence[str]) -> None:
        """Delete these jobs now, in one transaction (after anything pending); a write
        that fails stays pending for the next flush."""
        for job_id in job_ids:
            self.mark_deleted(job_id)
        self.try_flush()

    def delete_finished(
        self, statuses: frozenset[str], finished_before: float | None
    ) -> list[RemovedJob]:
        """Delete every finished job of ``statuses`` (ended before a time) in one transaction."""
        self.flush()
        where = f"finished_at IS NOT NULL AND status IN ({', '.join('?' * len(statuses))})"
        parameters: list[object] = [*sorted(statuses)]
        if finished_before is not None:
            where += " AND finished_at < ?"
            parameters.append(finished_before)
        self._db.execute("BEGIN")
        try:
            removed = self._removed(
                f"DELETE FROM jobs WHERE {where} RETURNING job_id, ancestors", parameters
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.writes += 1
        return removed

    def reclaim_space(self, pages: int = 2000) -> int:
        """Give back the pages of deleted rows, a bounded step (2,000 pages = 8 MB) at a
        time; returns how many free pages are left for the next step."""
        # executescript steps the statement to its end (execute would free one page).
        self._db.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
        (left,) = self._db.execute("PRAGMA freelist_count").fetchone()
        return int(left)

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
        jobs = [
            (job.job_id, job.created_at, json.dumps(job.to_record()), *self._indexed(job))
            for job in self._dirty_jobs.values()
        ]
        deleted = [(job_id,) for job_id in self._deleted]
        # Only the newest are ever read back (a bulk delete makes one event per job).
        events = [
            (e.event_id, e.job_id, e.frame, ",".join(e.parents))
            for e in self._new_events[-self.events_kept :]
        ]
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO jobs (job_id, created_at, record, parent_id, status, name_folded, "
                "finished_at, ancestors) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(job_id) DO UPDATE SET record = excluded.record, "
                "status = excluded.status, name_folded = excluded.name_folded, "
                "finished_at = excluded.finished_at",
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
