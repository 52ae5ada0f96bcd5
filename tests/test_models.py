"""The server's job model (models.py): derived figures, bounds, its stored record."""

from __future__ import annotations

from pathlib import Path

from jupyter_progress.models import JobKind, JobState, JobStatus


def test_percentage_rate_and_eta() -> None:
    job = JobState(job_id="a" * 32, name="x", kind=JobKind.REPORTED, total=200)
    job.started_at = 1000.0
    job.success, job.errors = 99, 1
    assert job.percentage == 50.0
    assert job.rate(now=1010.0) == 10.0
    assert job.eta_seconds(now=1010.0) == 10.0
    job.total = None
    assert job.percentage is None and job.eta_seconds(now=1010.0) is None
    job.status = JobStatus.COMPLETED
    job.total = 0
    job.success = job.errors = 0
    assert job.percentage == 100.0


def test_error_samples_are_bounded_and_truncated() -> None:
    job = JobState(job_id="a" * 32, name="x", kind=JobKind.REPORTED)
    for i in range(150):
        job.add_error_sample(f"item {i}", "E" * 5000)
    assert len(job.error_samples[0]["error"]) == 2000
    assert sum(len(s["item"]) + len(s["error"]) for s in job.error_samples) <= 16_000
    short = JobState(job_id="c" * 32, name="x", kind=JobKind.REPORTED)
    for i in range(150):
        short.add_error_sample(f"item {i}", "ValueError")
    assert len(short.error_samples) == 100


def test_job_record_round_trips(tmp_path: Path) -> None:
    job = JobState(job_id="b" * 32, name="round trip", kind=JobKind.PYTHON, total=5, success=2)
    job.add_error_sample("x", "ValueError: y")
    job.details = {"target": "m:f"}
    assert JobState.from_record(job.to_record()).to_dict(now=1.0) == job.to_dict(now=1.0)
