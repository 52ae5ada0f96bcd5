"""The job manager: the one owner of every job's state. Knows nothing of HTTP.

Every change goes through ``_emit``, which serializes the job once, hands the event to
the broker (for live readers), to the ``ReplayRing`` (for ``Last-Event-ID`` replay) and
to the store (coalesced writes; final states at once).

Server-run kinds (``python``, ``notebook``) are delegated to a ``JobRunner`` per kind.
A runner never touches a job itself: it gives the job's ``details`` before the job
exists, then reports through ``job_started`` / ``item_finished`` / ``job_finished``,
always on the server's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .broker import EventBroker
from .exceptions import InvalidRequest, JobNotFound, JobStateConflict
from .models import (
    FINAL_STATUSES,
    JobKind,
    JobSpec,
    JobState,
    JobStatus,
    ProgressReport,
    new_job_id,
)
from .replay import ReplayRing
from .sse import Event, format_json_event
from .store import JobStore

RESTART_MESSAGE = "the server restarted while this job was running"


class JobRunner(Protocol):
    """Runs the jobs of one server-side kind (see ``runners.py``)."""

    def validate(self, spec: JobSpec) -> None:
        """Raise ``InvalidRequest`` for a spec this runner cannot run (before a job exists)."""

    def details(self, spec: JobSpec) -> dict[str, Any]:
        """The job's ``details`` from its creation on (where and what it runs)."""

    def start(self, job_id: str, spec: JobSpec, manager: JobManager) -> None:
        """Start the work in the background; report through the manager's runner methods."""

    def cancel(self, job_id: str) -> None:
        """Stop the job's work where possible; the manager has already marked it cancelled."""

    async def shutdown(self) -> None:
        """Stop everything; called once when the server stops."""


class JobManager:
    """Creates, updates, cancels and forgets jobs, and publishes every change."""

    def __init__(
        self,
        *,
        store: JobStore,
        broker: EventBroker,
        runners: Mapping[JobKind, JobRunner] | None = None,
        reporter_timeout: float = 120.0,
        flush_interval: float = 0.5,
        events_kept: int = 10_000,
        events_kept_bytes: int = 32 * 1024 * 1024,
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.runners: dict[JobKind, JobRunner] = dict(runners or {})
        self.reporter_timeout = reporter_timeout
        self.flush_interval = flush_interval
        self.log = log or logging.getLogger(__name__)
        self._jobs: dict[str, JobState] = {}
        self._replay = ReplayRing(max_events=events_kept, max_bytes=events_kept_bytes)
        self._latest: dict[str, Event] = {}  # each job's newest frame: the snapshot
        self._heard_at: dict[str, float] = {}  # monotonic time of a reporter's last word
        self._last_event_id = 0
        self._tasks: list[asyncio.Task[None]] = []
        #: Called with the id of every job forgotten (what is kept beside it goes too).
        self.removed_listeners: list[Callable[[str], object]] = []

    # ----- lifecycle -------------------------------------------------------------------

    def recover(self) -> None:
        """Load the store; jobs that were running when the server died are now failed."""
        for job in self.store.load_jobs():
            self._jobs[job.job_id] = job
        events = self.store.load_events()
        self._replay.restore(events)
        self._last_event_id = max(self._last_event_id, self._replay.last_event_id)
        for event in events:
            if event.job_id in self._jobs:  # a kept job's events are all updates
                self._latest[event.job_id] = event
        for job in list(self._jobs.values()):
            if not job.is_final:
                self.log.info("job %s was running when the server stopped: failed", job.job_id)
                self._finish(job, JobStatus.FAILED, RESTART_MESSAGE)
        for job in self._jobs.values():
            if job.job_id not in self._latest:  # its events were trimmed: serialize it once
                self._latest[job.job_id] = self._job_event(self._last_event_id, job)
        self.store.flush()

    async def start(self) -> None:
        """Start the periodic flush and the silent-reporter watchdog (once)."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._flush_periodically(), name="jupyter-progress-flush"),
            asyncio.create_task(self._watch_reporters(), name="jupyter-progress-watchdog"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for runner in self.runners.values():
            try:
                await runner.shutdown()
            except Exception:
                self.log.exception("a job runner failed to shut down")
        self.broker.close_all()
        self.store.close()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            self._flush()

    async def _watch_reporters(self) -> None:
        interval = max(0.05, min(self.reporter_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(interval)
            try:
                self.fail_silent_reporters()
            except Exception:
                self.log.exception("the silent-reporter watchdog failed; it goes on")

    def fail_silent_reporters(self, now: float | None = None) -> list[str]:
        """End ``reported`` jobs whose reporter has been silent for too long.

        Measured on the monotonic clock, which stands still while the machine sleeps: a
        laptop waking up does not fail every job at once.
        """
        now = now if now is not None else time.monotonic()
        failed = []
        for job in list(self._jobs.values()):
            heard_at = self._heard_at.get(job.job_id)
            if (
                job.kind is JobKind.REPORTED
                and not job.is_final
                and heard_at is not None
                and now - heard_at > self.reporter_timeout
            ):
                message = (
                    f"no progress report for {self.reporter_timeout:g} s: "
                    "the kernel or script reporting it may have stopped"
                )
                self._finish(job, JobStatus.FAILED, message)
                failed.append(job.job_id)
        return failed

    def _flush(self) -> None:
        try:
            self.store.flush()
        except Exception:
            self.log.exception("could not write job state to %s", self.store.path)

    # ----- queries ---------------------------------------------------------------------

    def get(self, job_id: str) -> JobState:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(job_id) from None

    def list_jobs(self, status: JobStatus | None = None) -> list[JobState]:
        """Newest first."""
        jobs = [job for job in self._jobs.values() if status is None or job.status is status]
        jobs.sort(key=lambda job: job.created_at, reverse=True)
        return jobs

    def initial_frames(
        self, job_ids: frozenset[str] | None, last_event_id: int | None
    ) -> tuple[list[bytes], int]:
        """What a new stream reader gets first, and the id it is up to date with.

        A replay of what it missed if the ring still holds it; otherwise a snapshot: the
        newest frame of every matching job, already serialized, in event order (so a
        reader that drops mid-snapshot resumes from where it got to).
        """
        if last_event_id is not None:
            frames = self._replay.since(last_event_id, job_ids)
            if frames is not None:
                return frames, self._last_event_id
        if job_ids is None:
            latest = list(self._latest.values())
        else:
            latest = [self._latest[job_id] for job_id in job_ids if job_id in self._latest]
        latest.sort(key=lambda event: event.event_id)
        return [event.frame for event in latest], self._last_event_id

    # ----- commands from clients -------------------------------------------------------

    def create(self, spec: JobSpec) -> JobState:
        if spec.job_id is not None and spec.job_id in self._jobs:
            raise JobStateConflict(f"a job with id {spec.job_id!r} already exists")
        runner = None
        details: dict[str, Any] = {}
        if spec.kind is not JobKind.REPORTED:
            runner = self.runners.get(spec.kind)
            if runner is None:
                raise InvalidRequest(f"this server does not run {spec.kind.value!r} jobs")
            runner.validate(spec)
            details = runner.details(spec)
        now = time.time()
        job = JobState(
            job_id=spec.job_id or new_job_id(),
            name=spec.name,
            kind=spec.kind,
            total=spec.total,
            details=details,
            created_at=now,
        )
        if spec.kind is JobKind.REPORTED:
            job.status = JobStatus.PROCESSING
            job.started_at = now
            self._heard_at[job.job_id] = time.monotonic()
        self._jobs[job.job_id] = job
        self.log.info("job %s (%s) created: %s", job.job_id, job.kind.value, job.name)
        self._emit(job, durable=True)
        if runner is not None:
            try:
                runner.start(job.job_id, spec, self)
            except Exception as error:
                self.log.exception("job %s could not start", job.job_id)
                self.job_finished(job.job_id, JobStatus.FAILED, f"could not start: {error}")
        return job

    def report(self, job_id: str, report: ProgressReport) -> JobState:
        """Apply an absolute progress report to a ``reported`` job."""
        job = self.get(job_id)
        if job.kind is not JobKind.REPORTED:
            raise JobStateConflict("this job is run by the server; it takes no reports")
        if job.is_final:
            raise JobStateConflict(f"the job is {job.status.value}; it takes no more reports")
        success = max(job.success, report.success if report.success is not None else 0)
        errors = max(job.errors, report.errors if report.errors is not None else 0)
        total = report.total if report.total_given else job.total
        if total is not None and success + errors > total:
            raise InvalidRequest(f"processed ({success + errors}) would exceed total ({total})")
        before = (job.success, job.errors, job.total, job.message, len(job.error_samples))
        job.success, job.errors, job.total = success, errors, total
        if report.message is not None:
            job.message = report.message
        if report.error_samples:
            known = {(s["item"], s["error"]) for s in job.error_samples}
            for sample in report.error_samples:
                if (sample["item"], sample["error"]) not in known:
                    job.add_error_sample(sample["item"], sample["error"])
        self._heard_at[job_id] = time.monotonic()
        if report.status in FINAL_STATUSES:
            self._finish(job, report.status, job.message)
        elif before != (job.success, job.errors, job.total, job.message, len(job.error_samples)):
            self._emit(job)
        return job

    def cancel(self, job_id: str) -> tuple[JobState, bool]:
        """Cancel a job; returns it and whether this call changed anything."""
        job = self.get(job_id)
        if job.status is JobStatus.CANCELLED:
            return job, False
        if job.is_final:
            raise JobStateConflict(f"the job already {job.status.value}")
        self._finish(job, JobStatus.CANCELLED, "cancelled")
        runner = self.runners.get(job.kind)
        if runner is not None:
            try:
                runner.cancel(job_id)
            except Exception:
                self.log.exception("job %s: the runner failed to cancel", job_id)
        return job, True

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if not job.is_final:
            raise JobStateConflict("the job is still running; cancel it first")
        del self._jobs[job_id]
        self._latest.pop(job_id, None)
        self.store.mark_deleted(job_id)
        event_id = self._next_event_id()
        payload = {"type": "job_removed", "data": {"job_id": job_id}}
        self._publish(Event(event_id, job_id, format_json_event(event_id, "job_removed", payload)))
        self._flush()
        for listener in self.removed_listeners:
            try:
                listener(job_id)
            except Exception:
                self.log.exception("job %s: a listener of its removal failed", job_id)
        self.log.info("job %s deleted", job_id)

    # ----- reports from runners (server-run kinds) -------------------------------------

    def job_started(self, job_id: str, *, total: int | None = None) -> None:
        """The work began; ``total`` when only the runner knows it (a notebook's cells)."""
        job = self._jobs.get(job_id)
        if job is None or job.status is not JobStatus.PENDING:
            return
        if total is not None:
            job.total = total
        job.status = JobStatus.PROCESSING
        job.started_at = time.time()
        self._emit(job)

    def item_finished(
        self,
        job_id: str,
        *,
        error: str | None = None,
        item: str = "",
        message: str | None = None,
    ) -> None:
        """One item is done; ``error`` set means it failed. Ignored once the job is final."""
        job = self._jobs.get(job_id)
        if job is None or job.is_final:
            return
        if error is None:
            job.success += 1
        else:
            job.errors += 1
            job.add_error_sample(item, error)
        if job.total is not None and job.processed > job.total:
            job.total = job.processed
        if message is not None:
            job.message = message
        self._emit(job)

    def job_progressed(
        self,
        job_id: str,
        *,
        details: Mapping[str, Any] | None = None,
        message: str | None = None,
    ) -> None:
        """A running job's ``details`` (merged key by key) or ``message`` changed, with no
        item done: a notebook's running cell and its log tail. One event if anything did."""
        job = self._jobs.get(job_id)
        if job is None or job.is_final:
            return
        changed = False
        if details:
            merged = {**job.details, **details}
            if merged != job.details:
                job.details, changed = merged, True
        if message is not None and message != job.message:
            job.message, changed = message, True
        if changed:
            self._emit(job)

    def job_finished(self, job_id: str, status: JobStatus, message: str | None = None) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.is_final:
            return
        self._finish(job, status, message if message is not None else job.message)

    # ----- internals -------------------------------------------------------------------

    def _finish(self, job: JobState, status: JobStatus, message: str) -> None:
        now = time.time()
        job.status = status
        job.message = message
        job.finished_at = now
        if job.started_at is None:
            job.started_at = now
        if status is JobStatus.COMPLETED and job.total is None:
            job.total = job.processed
        self._heard_at.pop(job.job_id, None)
        self.log.info("job %s %s: %s", job.job_id, status.value, job.name)
        self._emit(job, durable=True)

    def _next_event_id(self) -> int:
        """Strictly increasing, and still so after a restart: microseconds since the epoch."""
        self._last_event_id = max(self._last_event_id + 1, time.time_ns() // 1000)
        return self._last_event_id

    @staticmethod
    def _job_event(event_id: int, job: JobState) -> Event:
        payload = {"type": "job_updated", "data": job.to_dict()}
        return Event(event_id, job.job_id, format_json_event(event_id, "job_updated", payload))

    def _emit(self, job: JobState, *, durable: bool = False) -> None:
        event = self._job_event(self._next_event_id(), job)
        self._latest[job.job_id] = event
        self.store.mark_dirty(job)
        self._publish(event)
        if durable:
            self._flush()

    def _publish(self, event: Event) -> None:
        self._replay.remember(event)
        self.store.add_event(event)
        try:
            self.broker.publish(event)
        except Exception:
            self.log.exception("broadcast of event %s failed; the job goes on", event.event_id)
