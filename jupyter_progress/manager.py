"""The job manager: the one owner of every job's state. Knows nothing of HTTP.

Every change goes through ``_emit``, which serializes the job once, hands the event to
the broker (for live readers), to the ``ReplayRing`` (for ``Last-Event-ID`` replay) and
to the store (coalesced writes; final states at once).

Server-run kinds (``python``, ``notebook``) are delegated to a ``JobRunner`` per kind.
A runner never touches a job itself: it gives the job's ``details`` before the job
exists, then reports through ``job_started`` / ``item_finished`` / ``job_finished``,
always on the server's event loop.

Memory holds what is running, not history: running jobs and their newest frames, a small
cache of finished jobs, and the frames of the unfiltered stream's snapshot (the newest
``snapshot_finished`` finished top-level jobs, and the finished children of running
jobs). Everything else is read from the store when asked for, and pruned from it in the
background (``keep_finished``, ``keep_finished_days``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from .broker import EventBroker
from .contract import MAX_FINISHED_CHILDREN, MAX_NESTING_DEPTH
from .exceptions import InvalidRequest, JobNotFound, JobStateConflict
from .models import (
    FINAL_STATUSES,
    JobKind,
    JobPage,
    JobSpec,
    JobState,
    JobStatus,
    ProgressReport,
    encode_cursor,
    new_job_id,
)
from .replay import ReplayRing
from .sse import Event, format_json_event
from .store import JobStore, RemovedJob

RESTART_MESSAGE = "the server restarted while this job was running"
ANNOUNCE_BATCH = 1000  # job_removed events sent per turn of the event loop
STOP_MESSAGE = "the server stopped"


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
        snapshot_finished: int = 50,
        keep_finished: int = 10_000,
        keep_finished_days: float = 30.0,
        prune_interval: float = 300.0,
        prune_batch: int = 500,
        finished_cache: int = 256,
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.runners: dict[JobKind, JobRunner] = dict(runners or {})
        self.reporter_timeout = reporter_timeout
        self.flush_interval = flush_interval
        self.log = log or logging.getLogger(__name__)
        self.snapshot_finished = snapshot_finished
        self.keep_finished = keep_finished
        self.keep_finished_days = keep_finished_days
        self.prune_interval = prune_interval
        self.prune_batch = prune_batch
        self.finished_cache = finished_cache
        self._jobs: dict[str, JobState] = {}  # pending and running jobs only
        self._finished: OrderedDict[str, JobState] = OrderedDict()  # a small LRU cache
        self._replay = ReplayRing(max_events=events_kept, max_bytes=events_kept_bytes)
        self._latest: dict[str, Event] = {}  # each running job's newest frame
        # The snapshot's finished part: newest finished top-level jobs (newest last) ...
        self._recent: OrderedDict[str, Event] = OrderedDict()
        self._recent_stale = False  # one was deleted: reread from the store when asked
        # ... and the newest finished children of each running job.
        self._done_children: dict[str, OrderedDict[str, Event]] = {}
        self._heard_at: dict[str, float] = {}  # monotonic time of a reporter's last word
        self._last_event_id = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._reclaiming: asyncio.Task[None] | None = None
        self._announcing: set[asyncio.Task[None]] = set()  # job_removed events of a bulk delete
        # Called with the public document of every job that ends (webhooks.py); each must
        # return at once and never raise into the manager.
        self.final_listeners: list[Callable[[dict[str, Any]], None]] = []
        #: Called with the id of every job forgotten (what is kept beside it goes too).
        self.removed_listeners: list[Callable[[str], object]] = []

    # ----- lifecycle -------------------------------------------------------------------

    def recover(self) -> None:
        """Load what was running (now failed) and the recent events; never all of history."""
        self._replay.restore(self.store.load_events())
        self._last_event_id = max(self._last_event_id, self._replay.last_event_id)
        for job in self.store.load_running():
            self._jobs[job.job_id] = job
            self._latest[job.job_id] = self._stored_event(job)
        # These read finished jobs (children, the newest): a damaged page there moves the
        # file aside and the step runs again on the fresh one; the server always starts.
        self.store.at_start(self._end_interrupted)
        self.store.at_start(self._load_recent)
        self.store.try_flush()

    def _end_interrupted(self) -> None:
        """Fail the jobs that were running when the server stopped (once each)."""
        for job in list(self._jobs.values()):
            if job.job_id not in self._jobs or job.is_final:  # removed, or ended already
                continue
            if job.kind is JobKind.REPORTED and self.store.stopped_cleanly:
                # A clean stop ended the server's own jobs; a reporter may outlive the
                # server, so its job is judged by the reporter timeout from now on.
                self._heard_at[job.job_id] = time.monotonic()
            else:
                self.log.info("job %s was running when the server stopped: failed", job.job_id)
                self._finish(job, JobStatus.FAILED, RESTART_MESSAGE)

    async def start(self) -> None:
        """Start the periodic flush, the silent-reporter watchdog and retention (once)."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._flush_periodically(), name="jupyter-progress-flush"),
            asyncio.create_task(self._watch_reporters(), name="jupyter-progress-watchdog"),
            asyncio.create_task(self._prune_periodically(), name="jupyter-progress-retention"),
        ]

    async def stop(self) -> None:
        """A clean stop: end the server's own jobs and write them, then stop the runners.

        ``reported`` jobs keep running: their reporter may outlive the server, and the
        reporter timeout judges them after a restart.
        """
        self.cancel_server_jobs(STOP_MESSAGE)
        tasks = [*self._tasks, *self._announcing, *([self._reclaiming] if self._reclaiming else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        for runner in self.runners.values():
            try:
                await runner.shutdown()
            except Exception:
                self.log.exception("a job runner failed to shut down")
        self.broker.close_all()
        self.store.close(clean=True)

    def cancel_server_jobs(self, message: str) -> list[str]:
        """Cancel every pending or running job this server runs; written at once."""
        cancelled = []
        for job in list(self._jobs.values()):
            if job.kind is JobKind.REPORTED or job.is_final:
                continue
            self._finish(job, JobStatus.CANCELLED, message, durable=False)
            cancelled.append(job.job_id)
            runner = self.runners.get(job.kind)
            if runner is not None:
                try:
                    runner.cancel(job.job_id)
                except Exception:
                    self.log.exception("job %s: the runner failed to cancel", job.job_id)
        if cancelled:
            self.log.info("the server stops: %d running job(s) cancelled", len(cancelled))
            self._flush()
        return cancelled

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

    async def _prune_periodically(self) -> None:
        while True:  # at start too: a restart does not postpone retention
            try:
                await self.prune()
            except Exception:
                self.log.exception("pruning finished jobs failed; trying again later")
            await asyncio.sleep(self.prune_interval)

    async def prune(self, now: float | None = None) -> int:
        """Delete finished jobs past retention, a batch per transaction, yielding between
        batches so streams and requests go on; then give the file's space back."""
        if self.keep_finished <= 0 and self.keep_finished_days <= 0:
            await self.reclaim_space()
            return 0
        keep = self.keep_finished if self.keep_finished > 0 else 2**62
        cutoff = (now or time.time()) - self.keep_finished_days * 86400
        if self.keep_finished_days <= 0:
            cutoff = float("-inf")
        removed = 0
        while True:
            batch = self.store.expired(keep=keep, finished_before=cutoff, batch=self.prune_batch)
            if not batch:
                break
            self.store.delete_jobs([gone.job_id for gone in batch])
            self._forget(batch)
            removed += len(batch)
            await asyncio.sleep(0)
        await self.reclaim_space()  # also what trimmed events left free
        if removed:
            self.log.info("retention: %d finished jobs deleted", removed)
        return removed

    async def reclaim_space(self) -> None:
        """Shrink the file by what deletes freed, a step at a time between other work."""
        while self.store.reclaim_space() > 0:
            await asyncio.sleep(0)

    def _reclaimed(self, task: asyncio.Task[None]) -> None:
        if self._reclaiming is task:
            self._reclaiming = None
        if not task.cancelled() and task.exception() is not None:
            self.log.warning("could not give space back to the disk: %s", task.exception())

    def _flush(self) -> None:
        self.store.try_flush()  # a failure is logged once per streak and retried

    # ----- queries ---------------------------------------------------------------------

    def get(self, job_id: str) -> JobState:
        job = self._find(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def _find(self, job_id: str) -> JobState | None:
        """A running job, a cached finished one, or one read from the store."""
        job = self._jobs.get(job_id)
        if job is not None:
            return job
        job = self._finished.get(job_id)
        if job is None:
            job = self.store.load_job(job_id)
            if job is None:
                return None
        self._cache(job)
        return job

    def in_memory(self) -> dict[str, int]:
        """How many jobs memory holds, by why: it grows with what runs, not with history."""
        return {
            "running": len(self._jobs),
            "finished_cached": len(self._finished),
            "snapshot_finished": len(self._recent)
            + sum(len(children) for children in self._done_children.values()),
        }

    def _cache(self, job: JobState) -> None:
        self._finished[job.job_id] = job
        self._finished.move_to_end(job.job_id)
        while len(self._finished) > self.finished_cache:
            self._finished.popitem(last=False)

    def list_jobs(self, page: JobPage | None = None) -> tuple[list[JobState], str | None]:
        """One page, newest first, of top-level jobs (or ``page.parent_id``'s children),
        and the cursor of the next page (None at the end)."""
        page = page or JobPage()
        ask = replace(page, limit=page.limit + 1)  # one more tells whether a page follows
        if page.statuses and not any(status in FINAL_STATUSES for status in page.statuses):
            jobs = self._running_page(ask)  # only running jobs asked for: all in memory
        else:
            self._flush()  # the store has every change so far
            jobs = [self._jobs.get(job.job_id, job) for job in self.store.page(ask)]
        if len(jobs) <= page.limit:
            return jobs, None
        jobs = jobs[: page.limit]
        return jobs, encode_cursor(jobs[-1].created_at, jobs[-1].job_id)

    def _running_page(self, page: JobPage) -> list[JobState]:
        folded = page.q.casefold() if page.q else None
        jobs = [
            job
            for job in self._jobs.values()
            if job.parent_id == page.parent_id
            and (page.statuses is None or job.status.value in page.statuses)
            and (folded is None or folded in job.name.casefold())
            and (page.before is None or (job.created_at, job.job_id) < page.before)
        ]
        jobs.sort(key=lambda job: (job.created_at, job.job_id), reverse=True)
        return jobs[: page.limit]

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
            if self._recent_stale:
                self._load_recent()
            latest = [*self._latest.values(), *self._recent.values()]
            for children in self._done_children.values():
                latest.extend(children.values())
        else:
            latest = self._family_events(job_ids)
        latest.sort(key=lambda event: event.event_id)
        return [event.frame for event in latest], self._last_event_id

    def _family_events(self, job_ids: Iterable[str]) -> list[Event]:
        """The current frames of these jobs and of all their descendants, however old."""
        events: dict[str, Event] = {}
        level = [job_id for job_id in job_ids]
        for _ in range(MAX_NESTING_DEPTH + 1):
            for job_id in level:
                job = self._find(job_id) if job_id not in events else None
                if job is not None:
                    events[job_id] = self._latest.get(job_id) or self._stored_event(job)
            level = [child for child in self.store.child_ids(level) if child not in events]
            if not level:
                break
        return list(events.values())

    def _load_recent(self) -> None:
        newest = self.store.newest_finished(self.snapshot_finished)
        self._recent = OrderedDict((job.job_id, self._stored_event(job)) for job in newest[::-1])
        self._recent_stale = False

    # ----- commands from clients -------------------------------------------------------

    def create(self, spec: JobSpec) -> JobState:
        if spec.job_id is not None and self._find(spec.job_id) is not None:
            raise JobStateConflict(f"a job with id {spec.job_id!r} already exists")
        runner = None
        details: dict[str, Any] = {}
        if spec.kind is not JobKind.REPORTED:
            runner = self.runners.get(spec.kind)
            if runner is None:
                raise InvalidRequest(f"this server does not run {spec.kind.value!r} jobs")
            runner.validate(spec)
            details = runner.details(spec)
        if spec.notify:  # the page notifies when it ends, however short it ran
            details = {**details, "notify": True}
        ancestors = self._ancestors_of_new_child(spec.parent_id)
        now = time.time()
        job = JobState(
            job_id=spec.job_id or new_job_id(),
            name=spec.name,
            kind=spec.kind,
            total=spec.total,
            details=details,
            created_at=now,
            parent_id=spec.parent_id,
            unit=spec.unit,
            unit_scale=spec.unit_scale,
            leave=spec.leave,
            ancestors=ancestors,
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
        before = self._reported_fields(job)
        job.success, job.errors, job.total = success, errors, total
        if report.message is not None:
            job.message = report.message
        if report.postfix is not None:
            job.postfix = report.postfix
        if report.name:  # an empty description keeps the name the job has
            job.name = report.name
        if report.error_samples:
            known = {(s["item"], s["error"]) for s in job.error_samples}
            for sample in report.error_samples:
                if (sample["item"], sample["error"]) not in known:
                    job.add_error_sample(sample["item"], sample["error"])
        self._heard_at[job_id] = time.monotonic()
        if report.status in FINAL_STATUSES:
            self._finish(job, report.status, job.message)
        elif before != self._reported_fields(job):
            self._emit(job)
        return job

    @staticmethod
    def _reported_fields(job: JobState) -> tuple[Any, ...]:
        """What a report can change: an event goes out only when one of these did."""
        fields = (job.success, job.errors, job.total, job.message, job.postfix, job.name)
        return (*fields, len(job.error_samples))

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
        self._remove(job)
        self.log.info("job %s deleted", job_id)

    def delete_finished(
        self, statuses: frozenset[str] | None = None, finished_before: float | None = None
    ) -> int:
        """Forget every finished job (of ``statuses``, ended before a time) at once: one
        transaction, then a ``job_removed`` event per job."""
        statuses = statuses or frozenset(status.value for status in FINAL_STATUSES)
        if any(status not in FINAL_STATUSES for status in statuses):
            raise InvalidRequest("only finished jobs can be deleted in bulk")
        self._flush()
        removed = self.store.delete_finished(statuses, finished_before)
        self._forget(removed)
        if removed and self._reclaiming is None:
            try:
                task = asyncio.get_running_loop().create_task(self.reclaim_space())
            except RuntimeError:  # no event loop (a script using the manager): at once
                asyncio.run(self.reclaim_space())
            else:  # kept until done, so stop() cancels it; only its own end clears it
                self._reclaiming = task
                task.add_done_callback(self._reclaimed)
        self.log.info("%d finished jobs deleted", len(removed))
        return len(removed)

    # ----- reports from runners (server-run kinds) -------------------------------------

    def job_waiting(self, job_id: str, message: str) -> None:
        """The job waits ``pending`` for room under a server-wide cap; ``message`` says why."""
        job = self._jobs.get(job_id)
        if job is None or job.status is not JobStatus.PENDING or job.message == message:
            return
        job.message = message
        self._emit(job)

    def job_started(self, job_id: str, *, total: int | None = None) -> None:
        """The work began; ``total`` when only the runner knows it (a notebook's cells)."""
        job = self._jobs.get(job_id)
        if job is None or job.status is not JobStatus.PENDING:
            return
        if total is not None:
            job.total = total
        job.status = JobStatus.PROCESSING
        job.started_at = time.time()
        job.message = ""  # a pending job's only message is why it waited (job_waiting)
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

    def _finish(
        self, job: JobState, status: JobStatus, message: str, *, durable: bool = True
    ) -> None:
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
        self._emit(job, durable=durable)
        if job.parent_id is None:  # a child bar is a part of its parent, not news of its own
            for listener in self.final_listeners:
                try:
                    listener(job.to_dict())
                except Exception:
                    self.log.exception(
                        "a listener of job %s's end failed; the job is done", job.job_id
                    )
        self._settle(job)
        if job.kind is not JobKind.REPORTED and status is not JobStatus.COMPLETED:
            self._end_descendants(job, durable=durable)
        if status is JobStatus.COMPLETED and not job.leave:
            self._remove(job)  # like tqdm's leave=False: the bar goes once it is done
        elif job.parent_id is not None:
            self._trim_children(job.parent_id)

    def _end_descendants(self, job: JobState, *, durable: bool) -> None:
        """A server-run job ended cancelled or failed: its still-running descendants (tqdm
        bars in a notebook job's kernel, reported under it) will get no final report, so
        they end cancelled now. A completed parent leaves them alone: their reports come."""
        descendants = [other for other in self._jobs.values() if job.job_id in other.ancestors]
        if not descendants:
            return
        if job.status is JobStatus.FAILED:
            message = (
                f"the parent job failed: {job.message}" if job.message else "the parent job failed"
            )
        elif job.message == STOP_MESSAGE:
            message = STOP_MESSAGE
        else:
            message = "the parent job was cancelled"
        for child in descendants:
            if child.is_final:  # ended meanwhile, as another one's descendant
                continue
            self._finish(child, JobStatus.CANCELLED, message, durable=durable)
            runner = self.runners.get(child.kind)
            if runner is not None:
                try:
                    runner.cancel(child.job_id)
                except Exception:
                    self.log.exception("job %s: the runner failed to cancel", child.job_id)

    def _settle(self, job: JobState) -> None:
        """A job just ended: from the running set to the cache and the snapshot's part."""
        event = self._latest.pop(job.job_id)
        self._jobs.pop(job.job_id, None)
        self._done_children.pop(job.job_id, None)
        self._cache(job)
        if job.parent_id is None:
            self._recent[job.job_id] = event
            while len(self._recent) > self.snapshot_finished:
                self._recent.popitem(last=False)
        elif job.parent_id in self._jobs:
            children = self._done_children.setdefault(job.parent_id, OrderedDict())
            children[job.job_id] = event
            while len(children) > MAX_FINISHED_CHILDREN:
                children.popitem(last=False)

    def _ancestors_of_new_child(self, parent_id: str | None) -> tuple[str, ...]:
        if parent_id is None:
            return ()
        parent = self._find(parent_id)
        if parent is None:
            raise InvalidRequest(f"'parent_id' {parent_id!r} names no job")
        ancestors = (parent.job_id, *parent.ancestors)
        if len(ancestors) > MAX_NESTING_DEPTH:
            raise InvalidRequest(f"jobs nest at most {MAX_NESTING_DEPTH} deep")
        return ancestors

    def _trim_children(self, parent_id: str) -> None:
        """Keep the newest finished children of one parent; forget the older ones."""
        for surplus in self.store.surplus_finished_children(parent_id, MAX_FINISHED_CHILDREN):
            job = self._find(surplus.job_id)
            if job is not None:
                self._remove(job)

    def _remove(self, job: JobState) -> None:
        """Delete a finished job and its finished descendants, and tell every reader."""
        removed = [RemovedJob(job.job_id, job.ancestors)]
        level = [job.job_id]
        while level:
            children = [self._find(child) for child in self.store.child_ids(level)]
            finished = [child for child in children if child is not None and child.is_final]
            removed.extend(RemovedJob(child.job_id, child.ancestors) for child in finished)
            level = [child.job_id for child in finished]
        self.store.delete_jobs([gone.job_id for gone in removed])
        self._forget(removed)

    def _forget(self, removed: Sequence[RemovedJob]) -> None:
        """Jobs deleted from the store: out of memory at once, and a ``job_removed`` event
        each, the first thousand at once and the rest between other work (a bulk delete
        of 100,000 must not hold the event loop while it announces them)."""
        for gone in removed:
            job_id = gone.job_id
            self._finished.pop(job_id, None)
            self._heard_at.pop(job_id, None)
            if self._recent.pop(job_id, None) is not None:
                self._recent_stale = True
            if gone.ancestors:
                children = self._done_children.get(gone.ancestors[0])
                if children is not None:
                    children.pop(job_id, None)
        self._announce_removed(removed[:ANNOUNCE_BATCH])
        rest = removed[ANNOUNCE_BATCH:]
        if not rest:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._announce_in_batches(rest))
        except RuntimeError:  # no event loop (a script using the manager): at once
            self._announce_removed(rest)
            return
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def _announce_in_batches(self, removed: Sequence[RemovedJob]) -> None:
        for start in range(0, len(removed), ANNOUNCE_BATCH):
            await asyncio.sleep(0)
            self._announce_removed(removed[start : start + ANNOUNCE_BATCH])

    def _announce_removed(self, removed: Sequence[RemovedJob]) -> None:
        for gone in removed:
            event_id = self._next_event_id()
            payload = {"type": "job_removed", "data": {"job_id": gone.job_id}}
            frame = format_json_event(event_id, "job_removed", payload)
            self._publish(Event(event_id, gone.job_id, frame, gone.ancestors))
            for listener in self.removed_listeners:
                try:
                    listener(gone.job_id)
                except Exception:
                    self.log.exception("job %s: a listener of its removal failed", gone.job_id)

    def _next_event_id(self) -> int:
        """Strictly increasing, and still so after a restart: microseconds since the epoch."""
        self._last_event_id = max(self._last_event_id + 1, time.time_ns() // 1000)
        return self._last_event_id

    def _job_event(self, event_id: int, job: JobState) -> Event:
        job.event_id = event_id
        return self._stored_event(job)

    def _stored_event(self, job: JobState) -> Event:
        """A job's current frame under its own latest event id (a snapshot's frame)."""
        event_id = job.event_id or self._last_event_id
        payload = {"type": "job_updated", "data": job.to_dict()}
        frame = format_json_event(event_id, "job_updated", payload)
        return Event(event_id, job.job_id, frame, job.ancestors)

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
