"""The public contract in code: statuses, limits, the Job document and its one line of text.

The server (``models.py``) and every client (``tracking``, ``jobs``, ``widget``, ``cli``)
import these from here, so a status, a limit or the rate formula is written once. Stdlib
only: a script that only calls ``track`` must not pay for the server's imports.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any


class JobStatus(str, enum.Enum):
    """Lifecycle: pending → processing → completed | failed | cancelled."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


# A str-enum member hashes and compares like its value: ``"failed" in FINAL_STATUSES`` holds.
FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
#: What a progress report may set (``pending`` and ``cancelled`` are the server's to set).
REPORTABLE_STATUSES = frozenset({JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED})

# ----- limits: the server refuses more (400); clients trim to them before sending ------------

MAX_NAME_LENGTH = 200
MAX_MESSAGE_LENGTH = 1000
MAX_ERROR_SAMPLES = 100
MAX_SAMPLE_ITEM_LENGTH = 500
MAX_SAMPLE_ERROR_LENGTH = 2000
MAX_SAMPLES_TOTAL_LENGTH = 16_000  # all of a job's samples: keeps every event small
MAX_COUNTER = 10**12
MAX_PATH_LENGTH = 4096
MAX_TARGET_LENGTH = 300
MAX_PARAMETERS = 200
MAX_UNIT_LENGTH = 40
MAX_POSTFIX_LENGTH = 1000
MAX_NESTING_DEPTH = 16  # parent → child → … : deeper is refused (400)
#: Finished children kept per parent (the newest); older ones are deleted with job_removed.
MAX_FINISHED_CHILDREN = 20
DEFAULT_UNIT = "it"


def is_final(status: str | None) -> bool:
    return status in FINAL_STATUSES


def add_error_sample(samples: list[dict[str, str]], item: str, error: str) -> None:
    """Keep the first samples: they are the ones a user fixes first.

    Bounded in number and in total size, since every event carries them.
    """
    if len(samples) >= MAX_ERROR_SAMPLES:
        return
    used = sum(len(s["item"]) + len(s["error"]) for s in samples)
    item, error = item[:MAX_SAMPLE_ITEM_LENGTH], error[:MAX_SAMPLE_ERROR_LENGTH]
    if len(item) + len(error) > MAX_SAMPLES_TOTAL_LENGTH - used:
        return
    samples.append({"item": item, "error": error})


# ----- the Job document ------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def iso_time(timestamp: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 UTC with a ``Z``, as the contract shows.

    Cached: a job's start and creation times are formatted for every one of its events.
    """
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso_time(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentage(processed: int, total: int | None, status: str) -> float | None:
    """``processed / total`` in percent, one decimal; an empty job that ended is 100 %."""
    if not total:
        return 100.0 if total == 0 and status in FINAL_STATUSES else None
    return round(processed / total * 100, 1)


def rate(
    processed: int, started_at: float | None, finished_at: float | None, now: float
) -> float | None:
    """Items per second from the start until the end (or ``now`` while it runs)."""
    if started_at is None or processed == 0:
        return None
    elapsed = (finished_at if finished_at is not None else now) - started_at
    if elapsed <= 0:
        return None
    return round(processed / elapsed, 3)


def eta_seconds(
    processed: int, total: int | None, status: str, items_per_second: float | None
) -> float | None:
    """Seconds left at the current rate; none for a final job or without a total."""
    if status in FINAL_STATUSES or total is None or not items_per_second:
        return None
    return round(max(total - processed, 0) / items_per_second, 1)


def job_document(
    *,
    job_id: str,
    name: str,
    kind: str,
    status: str,
    total: int | None,
    success: int,
    errors: int,
    now: float,
    message: str = "",
    error_samples: Sequence[Mapping[str, str]] = (),
    details: Mapping[str, Any] | None = None,
    created_at: float | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    parent_id: str | None = None,
    unit: str = DEFAULT_UNIT,
    unit_scale: bool = False,
    postfix: str = "",
    leave: bool = True,
) -> dict[str, Any]:
    """The public JSON shape of a job (docs/api.md); times are seconds since the epoch."""
    processed = success + errors
    items_per_second = rate(processed, started_at, finished_at, now)
    return {
        "job_id": job_id,
        "name": name,
        "kind": str(kind),
        "status": str(status),
        "progress": {
            "processed": processed,
            "total": total,
            "success": success,
            "errors": errors,
            "percentage": percentage(processed, total, status),
        },
        "message": message,
        "error_samples": [dict(sample) for sample in error_samples],
        "rate": items_per_second,
        "eta_seconds": eta_seconds(processed, total, status, items_per_second),
        "details": dict(details or {}),
        "created_at": iso_time(created_at),
        "started_at": iso_time(started_at),
        "finished_at": iso_time(finished_at),
        "parent_id": parent_id,
        "unit": unit,
        "unit_scale": unit_scale,
        "postfix": postfix,
        "leave": leave,
    }


# ----- a job as text ---------------------------------------------------------------------


def format_counts(job: Mapping[str, Any], *, compact: bool = False) -> str:
    """``50/100 (50.0%)`` (``50/100 50.0%`` when compact), or ``7 items`` without a total."""
    progress = job.get("progress") or {}
    processed = progress.get("processed", 0)
    total = progress.get("total")
    if total is None:
        return f"{processed} items"
    share = progress.get("percentage")
    if share is None:
        share = 100.0 * processed / total if total else 0.0
    return f"{processed}/{total} {share:.1f}%" if compact else f"{processed}/{total} ({share:.1f}%)"


def format_errors(job: Mapping[str, Any]) -> str:
    """``2 errors``, ``1 error``, or nothing."""
    errors = (job.get("progress") or {}).get("errors") or 0
    return f"{errors} error{'s' if errors != 1 else ''}" if errors else ""


def describe_job(job: Mapping[str, Any] | None, job_id: str = "") -> str:
    """One line for humans: name, counts, status (``text/plain``, reprs and terminals)."""
    if not job:
        return f"job {job_id}: no progress known yet" if job_id else "job: no progress known yet"
    name = job.get("name") or job.get("job_id") or job_id
    errors = format_errors(job)
    return f"{name}: {format_counts(job)}, {job.get('status')}" + (f", {errors}" if errors else "")


def describe_outcome(job: Mapping[str, Any]) -> str:
    """One line about a job that ended, for a log: how many items succeeded and failed."""
    progress = job.get("progress") or {}
    text = (
        f"{job.get('name')}: {job.get('status')}, {progress.get('success', 0)} succeeded, "
        f"{progress.get('errors', 0)} failed"
    )
    if job.get("status") == JobStatus.FAILED and job.get("message"):
        text += f" - {job['message']}"  # why it failed; other messages repeat the counts
    output = (job.get("details") or {}).get("output_path")
    if output:
        text += f" (output: {output})"
    return text


def describe_progress(job: Mapping[str, Any]) -> str:
    """The plain-text bar of ``track`` without a widget: counts, rate, errors, status."""
    errors = format_errors(job)
    return (
        f"{job.get('name')}: {format_counts(job, compact=True)}"
        + (f" {job['rate']:.1f} it/s" if job.get("rate") else "")
        + (f" {errors}" if errors else "")
        + f" [{job.get('status')}]"
    )
