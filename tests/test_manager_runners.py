"""The manager owns job state: a runner gives details up front and reports by job id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupyter_progress.broker import EventBroker
from jupyter_progress.manager import JobManager
from jupyter_progress.models import JobKind, JobSpec, JobStatus
from jupyter_progress.store import JobStore


class RecordingRunner:
    """A runner that only records what it is handed."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def validate(self, spec: JobSpec) -> None:
        pass

    def details(self, spec: JobSpec) -> dict[str, Any]:
        return {"where": "nowhere", "target": spec.target}

    def start(self, job_id: str, spec: JobSpec, manager: JobManager) -> None:
        self.started.append(job_id)

    def cancel(self, job_id: str) -> None:
        pass

    async def shutdown(self) -> None:
        pass


def manager_with(runner: RecordingRunner, tmp_path: Path) -> tuple[JobManager, Any]:
    broker = EventBroker()
    manager = JobManager(
        store=JobStore(tmp_path / "jobs.sqlite"), broker=broker, runners={JobKind.PYTHON: runner}
    )
    manager.recover()
    return manager, broker.subscribe()


def job_of(frame: bytes) -> dict[str, Any]:
    data = frame.decode().split("data: ", 1)[1]
    return json.loads(data)["data"]


async def test_details_are_in_the_first_event_and_started_reports_the_total(
    tmp_path: Path,
) -> None:
    runner = RecordingRunner()
    manager, reader = manager_with(runner, tmp_path)
    spec = JobSpec(kind=JobKind.PYTHON, name="x", target="m:f", items=[], total=None)
    job = manager.create(spec)
    assert runner.started == [job.job_id]
    manager.job_started(job.job_id, total=7)
    manager.item_finished(job.job_id, item="a", message="a")
    manager.job_finished(job.job_id, JobStatus.COMPLETED, "done")
    states = [job_of(event.frame) for event in reader.pending]
    assert [state["status"] for state in states] == [
        "pending",
        "processing",
        "processing",
        "completed",
    ]
    assert states[0]["details"] == {"where": "nowhere", "target": "m:f"}
    assert states[1]["progress"]["total"] == 7
    assert states[-1]["progress"] == {
        "processed": 1,
        "total": 7,
        "success": 1,
        "errors": 0,
        "percentage": 14.3,
    }
    manager.store.close()


async def test_a_late_start_changes_nothing_once_the_job_is_final(tmp_path: Path) -> None:
    manager, reader = manager_with(RecordingRunner(), tmp_path)
    job = manager.create(JobSpec(kind=JobKind.PYTHON, name="x", target="m:f", items=[]))
    manager.cancel(job.job_id)
    before = len(reader.pending)
    manager.job_started(job.job_id, total=3)
    assert len(reader.pending) == before
    assert manager.get(job.job_id).total is None
    assert manager.get(job.job_id).status is JobStatus.CANCELLED
    manager.store.close()


async def test_job_progressed_merges_details_and_emits_only_on_change(tmp_path: Path) -> None:
    manager, reader = manager_with(RecordingRunner(), tmp_path)
    job = manager.create(JobSpec(kind=JobKind.PYTHON, name="x", target="m:f", items=[]))
    manager.job_started(job.job_id, total=3)
    before = len(reader.pending)
    manager.job_progressed(job.job_id, details={"cell": 0, "log_tail": "a"}, message="m")
    manager.job_progressed(job.job_id, details={"cell": 0, "log_tail": "a"}, message="m")
    manager.job_progressed(job.job_id, details={"log_tail": "ab"})
    states = [job_of(event.frame) for event in reader.pending[before:]]
    assert [state["details"] for state in states] == [
        {"where": "nowhere", "target": "m:f", "cell": 0, "log_tail": "a"},
        {"where": "nowhere", "target": "m:f", "cell": 0, "log_tail": "ab"},
    ]
    assert states[0]["message"] == "m"
    manager.job_finished(job.job_id, JobStatus.COMPLETED, "done")
    manager.job_progressed(job.job_id, details={"log_tail": "late"})
    assert manager.get(job.job_id).details["log_tail"] == "ab"
    manager.store.close()
