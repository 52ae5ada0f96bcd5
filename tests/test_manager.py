"""The job manager (manager.py), with a real store and broker."""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_progress.broker import EventBroker
from jupyter_progress.manager import JobManager
from jupyter_progress.models import JobKind, JobSpec, ProgressReport
from jupyter_progress.store import JobStore


def test_manager_serializes_each_change_once_for_all_subscribers(tmp_path: Path) -> None:
    broker = EventBroker(max_pending_bytes=10**9)
    manager = JobManager(store=JobStore(tmp_path / "jobs.sqlite"), broker=broker)
    manager.recover()
    subs = [broker.subscribe() for _ in range(100)]
    job = manager.create(JobSpec(kind=JobKind.REPORTED, name="x", total=3))
    manager.report(job.job_id, ProgressReport(success=1))
    frames = [sub.pending[-1].frame for sub in subs]
    assert all(frame is frames[0] for frame in frames)
    assert sys.getrefcount(frames[0]) > 100
    manager.store.close()
