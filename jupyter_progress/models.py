"""The job model and the validation of what clients send.

Everything that crosses the HTTP boundary is checked here, with the limits of
``contract.py``, so the job manager only ever sees well-formed values. Plain dataclasses,
no HTTP. ``JobStatus`` and ``FINAL_STATUSES`` come from ``contract.py`` (server code
imports them from here too).
"""

from __future__ import annotations

import base64
import binascii
import enum
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import contract
from .contract import (
    DEFAULT_UNIT,
    FINAL_STATUSES,
    MAX_COUNTER,
    MAX_ERROR_SAMPLES,
    MAX_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PARAMETERS,
    MAX_PATH_LENGTH,
    MAX_POSTFIX_LENGTH,
    MAX_SAMPLE_ERROR_LENGTH,
    MAX_SAMPLE_ITEM_LENGTH,
    MAX_TARGET_LENGTH,
    MAX_UNIT_LENGTH,
    REPORTABLE_STATUSES,
    JobStatus,
    parse_iso_time,
)
from .exceptions import InvalidRequest


class JobKind(str, enum.Enum):
    """Who does the work: somebody else (``reported``) or the server itself."""

    REPORTED = "reported"
    PYTHON = "python"
    NOTEBOOK = "notebook"

    def __str__(self) -> str:
        return self.value


JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
TARGET_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
PARAMETER_NAME_PATTERN = re.compile(r"^[A-Za-z_]\w*$")


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass
class JobState:
    """The server's record of one job and how far it got. Only the manager mutates it.

    Not the public ``jobs.Job`` handle a client holds: this is the inside of the server.
    """

    job_id: str
    name: str
    kind: JobKind
    status: JobStatus = JobStatus.PENDING
    total: int | None = None
    success: int = 0
    errors: int = 0
    message: str = ""
    error_samples: list[dict[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    parent_id: str | None = None
    unit: str = DEFAULT_UNIT
    unit_scale: bool = False
    postfix: str = ""
    leave: bool = True
    #: The parent, its parent, …: a ``?job=`` reader of any of them gets this job's events.
    ancestors: tuple[str, ...] = ()
    #: The id of this job's newest event (its snapshot frame carries it).
    event_id: int = 0

    @property
    def processed(self) -> int:
        return self.success + self.errors

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def percentage(self) -> float | None:
        return contract.percentage(self.processed, self.total, self.status)

    def rate(self, now: float | None = None) -> float | None:
        """Items per second since the job started (until it finished)."""
        return contract.rate(self.processed, self.started_at, self.finished_at, now or time.time())

    def eta_seconds(self, now: float | None = None) -> float | None:
        return contract.eta_seconds(self.processed, self.total, self.status, self.rate(now))

    def add_error_sample(self, item: str, error: str) -> None:
        contract.add_error_sample(self.error_samples, item, error)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """The public JSON shape of a job (see docs/api.md)."""
        return contract.job_document(
            job_id=self.job_id,
            name=self.name,
            kind=self.kind.value,
            status=self.status.value,
            total=self.total,
            success=self.success,
            errors=self.errors,
            now=now or time.time(),
            message=self.message,
            error_samples=self.error_samples,
            details=self.details,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            parent_id=self.parent_id,
            unit=self.unit,
            unit_scale=self.unit_scale,
            postfix=self.postfix,
            leave=self.leave,
        )

    def to_record(self) -> dict[str, Any]:
        """What the store keeps: the public shape plus the exact timestamps."""
        record = self.to_dict()
        record["_times"] = {
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        record["_ancestors"] = list(self.ancestors)
        record["_event_id"] = self.event_id
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> JobState:
        times = record.get("_times") or {}
        progress = record["progress"]
        return cls(
            job_id=record["job_id"],
            name=record["name"],
            kind=JobKind(record["kind"]),
            status=JobStatus(record["status"]),
            total=progress["total"],
            success=progress["success"],
            errors=progress["errors"],
            message=record.get("message", ""),
            error_samples=list(record.get("error_samples", [])),
            details=dict(record.get("details", {})),
            created_at=times.get("created_at") or parse_iso_time(record["created_at"]) or 0.0,
            started_at=times.get("started_at"),
            finished_at=times.get("finished_at"),
            parent_id=record.get("parent_id"),
            unit=record.get("unit", DEFAULT_UNIT),
            unit_scale=bool(record.get("unit_scale", False)),
            postfix=record.get("postfix", ""),
            leave=bool(record.get("leave", True)),
            ancestors=tuple(record.get("_ancestors") or ()),
            event_id=int(record.get("_event_id") or 0),
        )


@dataclass(frozen=True)
class JobSpec:
    """A validated request to create a job."""

    kind: JobKind
    name: str
    job_id: str | None = None
    total: int | None = None
    target: str | None = None
    items: list[Any] | None = None
    concurrency: int = 1
    path: str | None = None
    output_path: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    parent_id: str | None = None
    unit: str = DEFAULT_UNIT
    unit_scale: bool = False
    leave: bool = True


@dataclass(frozen=True)
class ProgressReport:
    """A validated progress report; ``None`` means "not given"."""

    success: int | None = None
    errors: int | None = None
    total: int | None = None
    total_given: bool = False
    message: str | None = None
    error_samples: list[dict[str, str]] | None = None
    status: JobStatus | None = None
    postfix: str | None = None
    name: str | None = None


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")


def _counter(body: dict[str, Any], key: str, *, nullable: bool = False) -> int | None:
    value = body.get(key)
    if value is None:
        if key in body and not nullable:
            raise InvalidRequest(f"{key!r} must be an integer, not null")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{key!r} must be an integer")
    if not 0 <= value <= MAX_COUNTER:
        raise InvalidRequest(f"{key!r} must be between 0 and {MAX_COUNTER}")
    return value


def _text(body: dict[str, Any], key: str, limit: int, *, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidRequest(f"{key!r} must be a string")
    if len(value) > limit:
        raise InvalidRequest(f"{key!r} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidRequest(f"{key!r} must not contain NUL characters")
    return value


def parse_job_id(value: str) -> str:
    if not isinstance(value, str) or not JOB_ID_PATTERN.match(value):
        raise InvalidRequest("a job id is 32 lowercase hexadecimal characters")
    return value


DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_QUERY_LENGTH = MAX_NAME_LENGTH
#: ``?status=finished``: the three final statuses.
FINISHED = "finished"


@dataclass(frozen=True)
class JobPage:
    """A validated ``GET jobs`` query: whose jobs, which, and from where (the cursor)."""

    parent_id: str | None = None
    statuses: frozenset[str] | None = None
    q: str | None = None
    before: tuple[float, str] | None = None
    limit: int = DEFAULT_PAGE_SIZE


def encode_cursor(created_at: float, job_id: str) -> str:
    """Opaque to clients: the position (creation time, id) of a page's last job."""
    return base64.urlsafe_b64encode(f"{created_at!r}:{job_id}".encode()).decode().rstrip("=")


def parse_cursor(text: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        created_text, job_id = raw.split(":")
        created_at = float(created_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("'before' is not a cursor this server gave") from None
    if not math.isfinite(created_at) or not JOB_ID_PATTERN.match(job_id):
        raise InvalidRequest("'before' is not a cursor this server gave")
    return created_at, job_id


def parse_statuses(values: list[str]) -> frozenset[str] | None:
    """Repeatable ``status``; ``finished`` stands for the three final ones."""
    if not values:
        return None
    statuses: set[str] = set()
    for value in values:
        if value == FINISHED:
            statuses.update(status.value for status in FINAL_STATUSES)
        else:
            statuses.add(_status(value).value)
    return frozenset(statuses)


def _status(value: str) -> JobStatus:
    try:
        return JobStatus(value)
    except ValueError:
        choices = ", ".join([*(s.value for s in JobStatus), FINISHED])
        raise InvalidRequest(f"unknown status {value!r}; one of {choices}") from None


def parse_job_page(
    *,
    statuses: list[str],
    q: str | None,
    parent: str | None,
    limit: str | None,
    before: str | None,
) -> JobPage:
    size = DEFAULT_PAGE_SIZE
    if limit is not None:
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"'limit' must be an integer from 1 to {MAX_PAGE_SIZE}")
        size = int(limit)
    if q is not None and (len(q) > MAX_QUERY_LENGTH or "\x00" in q):
        raise InvalidRequest(f"'q' is at most {MAX_QUERY_LENGTH} characters")
    return JobPage(
        parent_id=None if parent is None else parse_job_id(parent),
        statuses=parse_statuses(statuses),
        q=q or None,
        before=None if before is None else parse_cursor(before),
        limit=size,
    )


def parse_finished_deletion(
    statuses: list[str], before: str | None
) -> tuple[frozenset[str], float | None]:
    """``DELETE jobs?status=finished[&before=ISO]``: which finished jobs, ended before when."""
    chosen = parse_statuses(statuses)
    if not chosen:
        raise InvalidRequest("say which jobs to delete: ?status=finished")
    if any(status not in FINAL_STATUSES for status in chosen):
        raise InvalidRequest("only finished jobs can be deleted in bulk")
    finished_before = None
    if before is not None:
        try:
            moment = datetime.fromisoformat(before.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:  # a time without a zone is UTC, like every time here
                moment = moment.replace(tzinfo=timezone.utc)
            finished_before = moment.timestamp()
        except (ValueError, OverflowError, OSError):
            raise InvalidRequest("'before' must be an ISO 8601 time") from None
    return chosen, finished_before


def parse_error_samples(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise InvalidRequest("'error_samples' must be a list")
    if len(value) > MAX_ERROR_SAMPLES:
        raise InvalidRequest(f"'error_samples' holds at most {MAX_ERROR_SAMPLES} entries")
    samples = []
    for entry in value:
        entry = _require_object(entry)
        _reject_unknown(entry, {"item", "error"})
        item = _text(entry, "item", MAX_SAMPLE_ITEM_LENGTH, default="")
        error = _text(entry, "error", MAX_SAMPLE_ERROR_LENGTH, default="")
        samples.append({"item": item or "", "error": error or ""})
    return samples


def parse_progress_report(body: Any) -> ProgressReport:
    body = _require_object(body)
    _reject_unknown(
        body,
        {"success", "errors", "total", "message", "error_samples", "status", "postfix", "name"},
    )
    status = body.get("status")
    parsed_status = None
    if status is not None:
        if not isinstance(status, str) or status not in {s.value for s in REPORTABLE_STATUSES}:
            raise InvalidRequest("'status' may only be processing, completed or failed")
        parsed_status = JobStatus(status)
    samples = body.get("error_samples")
    return ProgressReport(
        success=_counter(body, "success"),
        errors=_counter(body, "errors"),
        total=_counter(body, "total", nullable=True),
        total_given="total" in body,
        message=_text(body, "message", MAX_MESSAGE_LENGTH),
        error_samples=None if samples is None else parse_error_samples(samples),
        status=parsed_status,
        postfix=_text(body, "postfix", MAX_POSTFIX_LENGTH),
        name=_text(body, "name", MAX_NAME_LENGTH),
    )


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key!r} must be true or false")
    return value


def _nesting(body: dict[str, Any]) -> dict[str, Any]:
    """The fields every kind takes: where the job nests and how its counts read."""
    parent_id = body.get("parent_id")
    if parent_id is not None:
        parent_id = parse_job_id(parent_id)
        if parent_id == body.get("job_id"):
            raise InvalidRequest("a job cannot be its own parent")
    unit = _text(body, "unit", MAX_UNIT_LENGTH)
    if unit is not None and (not unit.strip() or not unit.isprintable()):
        raise InvalidRequest("'unit' must be a non-empty printable string")
    return {
        "parent_id": parent_id,
        "unit": unit or DEFAULT_UNIT,
        "unit_scale": _flag(body, "unit_scale", False),
        "leave": _flag(body, "leave", True),
    }


def parse_job_spec(body: Any, *, max_concurrency: int) -> JobSpec:
    """Validate a create request for any kind; the kind's runner checks the rest."""
    body = _require_object(body)
    kind_text = body.get("kind", JobKind.REPORTED.value)
    if not isinstance(kind_text, str) or kind_text not in {k.value for k in JobKind}:
        raise InvalidRequest("'kind' must be one of reported, python, notebook")
    kind = JobKind(kind_text)
    job_id = body.get("job_id")
    if job_id is not None:
        job_id = parse_job_id(job_id)
    name = _text(body, "name", MAX_NAME_LENGTH) or ""
    common = {"kind", "name", "job_id", "parent_id", "unit", "unit_scale", "leave"}
    nesting = _nesting(body)
    if kind is JobKind.REPORTED:
        _reject_unknown(body, common | {"total"})
        return JobSpec(
            kind=kind,
            name=name or "job",
            job_id=job_id,
            total=_counter(body, "total", nullable=True),
            **nesting,
        )
    if kind is JobKind.PYTHON:
        _reject_unknown(body, common | {"target", "items", "concurrency"})
        target = _text(body, "target", MAX_TARGET_LENGTH)
        if not target or not TARGET_PATTERN.match(target):
            raise InvalidRequest("'target' must be 'package.module:function'")
        items = body.get("items")
        if not isinstance(items, list):
            raise InvalidRequest("'items' must be a list of JSON values")
        concurrency = body.get("concurrency", 1)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidRequest("'concurrency' must be a positive integer")
        if concurrency > max_concurrency:
            raise InvalidRequest(f"'concurrency' is at most {max_concurrency} on this server")
        return JobSpec(
            kind=kind,
            name=name or target,
            job_id=job_id,
            total=len(items),
            target=target,
            items=items,
            concurrency=concurrency,
            **nesting,
        )
    _reject_unknown(body, common | {"path", "output_path", "parameters", "timeout"})
    path = _text(body, "path", MAX_PATH_LENGTH)
    if not path or not path.endswith(".ipynb"):
        raise InvalidRequest("'path' must name a .ipynb file")
    output_path = _text(body, "output_path", MAX_PATH_LENGTH)
    if output_path is not None and not output_path.endswith(".ipynb"):
        raise InvalidRequest("'output_path' must name a .ipynb file")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict) or len(parameters) > MAX_PARAMETERS:
        raise InvalidRequest(f"'parameters' must be an object of at most {MAX_PARAMETERS} names")
    for key in parameters:
        if not PARAMETER_NAME_PATTERN.match(key):
            raise InvalidRequest(f"parameter name {key!r} is not a Python identifier")
    timeout = body.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise InvalidRequest("'timeout' must be a positive number of seconds per cell")
    return JobSpec(
        kind=kind,
        name=name or path.rsplit("/", 1)[-1],
        job_id=job_id,
        path=path,
        output_path=output_path,
        parameters=parameters,
        timeout=None if timeout is None else float(timeout),
        **nesting,
    )
