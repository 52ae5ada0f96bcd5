"""Every return value and every failure of server-run jobs, beside the job store.

Error samples in a Job are bounded (100) because they travel in every event; here are the
rest: a ``python`` job's return values in item order and each failed item with its error
(a notebook job's failing cell too), read a page at a time with ``GET jobs/{id}/results``
and ``GET jobs/{id}/failures``. Their own SQLite file, so the job store stays small and
fast to load; rows are buffered and written in one transaction per ``FLUSH_ROWS`` (or when
read, or at the job's end), on the server's event loop like the job store.

A job's values are bounded by ``max_bytes`` (``c.JupyterProgress.max_result_bytes``): once
they pass it, the job's values are dropped and no more are kept (the job goes on; reading
them says why). Failures are always kept: each is bounded by the request's own limits.
Nothing here knows HTTP.

Like the job store, it never stops the server: a file that cannot be read at start is moved
aside (kept, under a timestamped name) and a fresh one started (in memory if even that
fails); the runners log a failed write and their jobs go on and end.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import JobStateConflict

SCHEMA = """
CREATE TABLE IF NOT EXISTS result_jobs (
    job_key INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL UNIQUE,
    dropped TEXT
);
CREATE TABLE IF NOT EXISTS results (
    job_key INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (job_key, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    job_key INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    item TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (job_key, idx)
) WITHOUT ROWID;
"""
# Rows are keyed by a small integer per job, not its 32-character id: an insert then costs
# a third (~1 µs a row), which keeps results from slowing trivial items (P9).

#: Milliseconds a write waits for a lock held by another connection (as the job store).
BUSY_TIMEOUT_MS = 250
#: Buffered rows written in one transaction.
FLUSH_ROWS = 2000
#: Largest page of ``results``/``failures`` one request may ask for.
MAX_PAGE = 10_000
DEFAULT_PAGE = 1000


def dropped_message(max_bytes: int) -> str:
    mib = max_bytes / (1024 * 1024)
    return (
        f"the results of this job passed max_result_bytes ({mib:g} MiB) and are not kept; "
        "return smaller values, or write them to files and return their paths"
    )


@dataclass(frozen=True)
class Page:
    """One page and where the next one starts (``None``: this was the last)."""

    entries: list[Any]
    next_offset: int | None


class ResultStore:
    """Values and failures of jobs in one SQLite file (WAL), one owner thread at a time."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        log: logging.Logger | None = None,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.log = log or logging.getLogger(__name__)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._values: list[tuple[int, int, str]] = []
        self._failures: list[tuple[int, int, str, str]] = []
        self._keys: dict[str, int] = {}
        self._bytes: dict[str, int] = {}  # running jobs' values kept so far
        self._dropped: dict[str, str] = {}
        #: Where an unreadable file was moved at start, if it was.
        self.moved_aside: Path | None = None
        try:
            self._db = self._connect(self.path)
        except Exception as error:  # not a database, damaged tables: never stop the server
            self._db = self._start_fresh(error)

    def _connect(self, path: Path | str) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.executescript(SCHEMA)
            rows = db.execute("SELECT job_id, dropped FROM result_jobs WHERE dropped IS NOT NULL")
            self._dropped = dict(rows)
            db.execute("SELECT job_key FROM results LIMIT 1").fetchall()
            db.execute("SELECT job_key FROM failures LIMIT 1").fetchall()
        except BaseException:
            db.close()
            raise
        return db

    def _start_fresh(self, error: BaseException) -> sqlite3.Connection:
        """Move an unreadable file aside (kept, with a timestamped name) and start anew;
        where even that fails, keep this server's results in memory."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.stem}.corrupt-{stamp}{self.path.suffix}")
        self._dropped = {}
        try:
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.rename(f"{aside}{suffix}")
            db = self._connect(self.path)
        except Exception as failure:
            self.log.warning(
                "the results store %s cannot be read (%s) nor replaced (%s): this server "
                "keeps jobs' results in memory only",
                self.path,
                error,
                failure,
            )
            return self._connect(":memory:")
        self.moved_aside = aside
        self.log.warning(
            "the results store %s could not be read (%s): it was moved aside to %s and this "
            "server starts with a fresh one",
            self.path,
            error,
            aside,
        )
        return db

    @property
    def keeps_results(self) -> bool:
        """0 turns keeping values off (jobs then run as if their values were ``None``)."""
        return self.max_bytes > 0

    def _key(self, job_id: str, *, create: bool = False) -> int | None:
        key = self._keys.get(job_id)
        if key is None:
            row = self._db.execute(
                "SELECT job_key FROM result_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None and create:
                cursor = self._db.execute("INSERT INTO result_jobs (job_id) VALUES (?)", (job_id,))
                row = (cursor.lastrowid,)
            if row is None:
                return None
            key = self._keys[job_id] = int(row[0])
        return key

    # ----- writing (runners) -----

    def open_job(self, job_id: str) -> None:
        """A job starts: nothing of an earlier job with its id survives (ids may be reused)."""
        self.delete(job_id)
        self._key(job_id, create=True)
        self._bytes[job_id] = 0

    def add(self, job_id: str, index: int, value: str | None) -> str | None:
        """Keep one item's value; see ``add_values``."""
        return self.add_values(job_id, [(index, value)])

    def add_values(self, job_id: str, values: list[tuple[int, str | None]]) -> str | None:
        """Keep items' values (JSON text; ``None`` keeps nothing); the message once the
        job's values are dropped for passing ``max_bytes`` (so the caller can say so)."""
        if job_id in self._dropped:
            return None
        rows = [(index, value) for index, value in values if value is not None]
        if not rows:
            return None
        kept = self._bytes.get(job_id, 0) + sum(len(value) for _, value in rows)
        if kept > self.max_bytes or any(value == "" for _, value in rows):  # "" = TOO_LARGE
            return self._drop(job_id)
        self._bytes[job_id] = kept
        key = self._key(job_id, create=True)
        assert key is not None
        self._values.extend((key, index, value) for index, value in rows)
        if len(self._values) >= FLUSH_ROWS:
            self.flush()
        return None

    def add_failure(self, job_id: str, index: int, item: Any, error: str) -> None:
        key = self._key(job_id, create=True)
        assert key is not None
        self._failures.append((key, index, json.dumps(item), error))
        if len(self._failures) >= FLUSH_ROWS:
            self.flush()

    def close_job(self, job_id: str) -> None:
        """The job ended: write what is buffered; forget its running total."""
        self._bytes.pop(job_id, None)
        self.flush()

    def _drop(self, job_id: str) -> str:
        message = dropped_message(self.max_bytes)
        self._dropped[job_id] = message
        self._bytes.pop(job_id, None)
        key = self._key(job_id, create=True)
        self._values = [row for row in self._values if row[0] != key]
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM results WHERE job_key = ?", (key,))
            self._db.execute("UPDATE result_jobs SET dropped = ? WHERE job_key = ?", (message, key))
        return message

    def flush(self) -> None:
        if not self._values and not self._failures:
            return
        values, self._values = self._values, []
        failures, self._failures = self._failures, []
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?)", values)
            self._db.executemany("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?)", failures)

    def delete(self, job_id: str) -> None:
        """Forget the job's values and failures (with the job)."""
        self._bytes.pop(job_id, None)
        self._dropped.pop(job_id, None)
        key = self._key(job_id)
        if key is None:
            return
        self._values = [row for row in self._values if row[0] != key]
        self._failures = [row for row in self._failures if row[0] != key]
        del self._keys[job_id]
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM results WHERE job_key = ?", (key,))
            self._db.execute("DELETE FROM failures WHERE job_key = ?", (key,))
            self._db.execute("DELETE FROM result_jobs WHERE job_key = ?", (key,))

    def prune(self, exists: Callable[[str], bool]) -> int:
        """Forget the values and failures of every job for which ``exists`` is false
        (deleted while the server was down, or by a path that did not say so); how many
        jobs were pruned."""
        held = [job_id for (job_id,) in self._db.execute("SELECT job_id FROM result_jobs")]
        gone = [job_id for job_id in held if not exists(job_id)]
        for job_id in gone:
            self.delete(job_id)
        return len(gone)

    # ----- reading (handlers) -----

    def results(self, job_id: str, *, total: int, offset: int, limit: int) -> Page:
        """Values ``offset`` to ``offset + limit`` in item order; ``None`` where an item
        failed, returned ``None`` or has not run yet. ``JobStateConflict`` if dropped."""
        if job_id in self._dropped:
            raise JobStateConflict(self._dropped[job_id])
        self.flush()
        end = min(total, offset + limit)
        page: list[Any] = [None] * max(0, end - offset)
        key = self._key(job_id)
        if key is not None and page:
            rows = self._db.execute(
                "SELECT idx, value FROM results WHERE job_key = ? AND idx >= ? AND idx < ?",
                (key, offset, end),
            )
            for index, value in rows:
                page[index - offset] = json.loads(value)
        return Page(page, end if end < total else None)

    def failures(self, job_id: str, *, offset: int, limit: int) -> Page:
        """Failed items in item order: ``{"index", "item", "error"}``."""
        self.flush()
        key = self._key(job_id)
        if key is None:
            return Page([], None)
        rows = self._db.execute(
            "SELECT idx, item, error FROM failures WHERE job_key = ? ORDER BY idx LIMIT ? OFFSET ?",
            (key, limit + 1, offset),
        ).fetchall()
        entries = [
            {"index": index, "item": json.loads(item), "error": error}
            for index, item, error in rows[:limit]
        ]
        return Page(entries, offset + limit if len(rows) > limit else None)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()
