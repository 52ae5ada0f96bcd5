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
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import contract
from .contract import (
    FINAL_STATUSES,
    MAX_COUNTER,
    MAX_ERROR_SAMPLES,
    MAX_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PARAMETERS,
    MAX_PATH_LENGTH,
    MAX_SAMPLE_ERROR_LENGTH,
    MAX_SAMPLE_ITEM_LENGTH,
    MAX_TARGET_LENGTH,
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
        )

    def to_record(self) -> dict[str, Any]:
        """What the store keeps: the public shape plus the exact timestamps."""
        record = self.to_dict()
        record["_times"] = {
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
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
        )


@dataclass(frozen=True)
class JobSpec:
    """A validated request to create a job."""

    kind: JobKind
    name: str
    job_id: str | None = None
    total: int | None = None
    target: str | None = None
    function: bytes | None = None  # a pickled function (cloudpickle), in place of target
    items: list[Any] | None = None
    concurrency: int = 1
    path: str | None = None
    output_path: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None


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


def parse_status_filter(value: str | None) -> JobStatus | None:
    if value is None:
        return None
    try:
        return JobStatus(value)
    except ValueError:
        choices = ", ".join(s.value for s in JobStatus)
        raise InvalidRequest(f"unknown status {value!r}; one of {choices}") from None


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
    _reject_unknown(body, {"success", "errors", "total", "message", "error_samples", "status"})
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
    )


def _pickled_function(body: dict[str, Any]) -> bytes | None:
    """``function``: a function pickled by value (cloudpickle), base64; the body limit bounds
    it. Not unpickled here: that runs code, which happens where the items run."""
    value = body.get("function")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("'function' must be a base64 string (a cloudpickle of a function)")
    try:
        pickled = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'function' is not valid base64") from None
    if not pickled:
        raise InvalidRequest("'function' is empty")
    return pickled


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
    common = {"kind", "name", "job_id"}
    if kind is JobKind.REPORTED:
        _reject_unknown(body, common | {"total"})
        return JobSpec(
            kind=kind,
            name=name or "job",
            job_id=job_id,
            total=_counter(body, "total", nullable=True),
        )
    if kind is JobKind.PYTHON:
        _reject_unknown(body, common | {"target", "function", "items", "concurrency"})
        function = _pickled_function(body)
        target = _text(body, "target", MAX_TARGET_LENGTH)
        if function is not None:
            if target is not None:
                raise InvalidRequest("give 'target' or 'function', not both")
        elif not target or not TARGET_PATTERN.match(target):
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
            name=name or target or "function",
            job_id=job_id,
            total=len(items),
            target=target,
            function=function,
            items=items,
            concurrency=concurrency,
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
    )
