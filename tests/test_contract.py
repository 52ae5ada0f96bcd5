"""The shared contract module: one status set, one Job document, one line of text.

And the promise of ``jupyter_progress/__init__.py``: the client side loads no server code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jupyter_progress import models
from jupyter_progress.contract import (
    FINAL_STATUSES,
    JobStatus,
    describe_job,
    describe_outcome,
    describe_progress,
    job_document,
)
from jupyter_progress.tracking import track

JOB_ID = "c" * 32


def test_server_and_clients_share_one_status_set() -> None:
    assert models.JobStatus is JobStatus
    assert models.FINAL_STATUSES is FINAL_STATUSES
    assert {str(status) for status in FINAL_STATUSES} == {"completed", "failed", "cancelled"}
    assert "failed" in FINAL_STATUSES and "processing" not in FINAL_STATUSES


def test_server_job_document_is_the_shared_builder_when_running() -> None:
    job = models.JobState(JOB_ID, "convert", models.JobKind.REPORTED, total=10, created_at=1000.0)
    job.status, job.started_at, job.success, job.errors = JobStatus.PROCESSING, 1000.0, 4, 1
    document = job.to_dict(now=1002.0)
    assert document["progress"] == {
        "processed": 5,
        "total": 10,
        "success": 4,
        "errors": 1,
        "percentage": 50.0,
    }
    assert document["rate"] == 2.5
    assert document["eta_seconds"] == 2.0
    assert document["started_at"] == "1970-01-01T00:16:40.000Z"
    assert json.loads(json.dumps(document)) == document  # plain JSON values only


def test_track_as_job_uses_the_same_formulas_as_the_server() -> None:
    bar: track[int] = track(range(10), name="local", disable=True)
    bar.status, bar.started_at, bar.finished_at = "completed", 1000.0, 1004.0
    bar.update(8)
    mine = bar.as_job()
    server = models.JobState(
        bar.job_id,
        "local",
        models.JobKind.REPORTED,
        status=JobStatus.COMPLETED,
        total=10,
        success=8,
        created_at=1000.0,
        started_at=1000.0,
        finished_at=1004.0,
    ).to_dict()
    assert mine == server
    assert mine["rate"] == 2.0 and mine["eta_seconds"] is None


def test_an_empty_job_that_ended_is_complete() -> None:
    document = job_document(
        job_id=JOB_ID, name="n", kind="reported", status="completed", total=0,
        success=0, errors=0, now=0.0,
    )  # fmt: skip
    assert document["progress"]["percentage"] == 100.0
    assert describe_job(document) == "n: 0/0 (100.0%), completed"


def test_job_texts() -> None:
    document = job_document(
        job_id=JOB_ID, name="convert", kind="python", status="failed", total=4,
        success=2, errors=1, now=10.0, started_at=7.0, finished_at=10.0, message="boom",
        details={"output_path": "out.ipynb"},
    )  # fmt: skip
    assert describe_job(document) == "convert: 3/4 (75.0%), failed, 1 error"
    assert describe_progress(document) == "convert: 3/4 75.0% 1.0 it/s 1 error [failed]"
    assert describe_outcome(document) == (
        "convert: failed, 2 succeeded, 1 failed - boom (output: out.ipynb)"
    )
    assert describe_job(None, JOB_ID) == f"job {JOB_ID}: no progress known yet"


@pytest.mark.parametrize(
    "code",
    [
        "import jupyter_progress.contract",
        "import jupyter_progress.client",
        "import jupyter_progress.jobs",
        "import jupyter_progress.tracking",
        # A whole loop in a plain script, with a server that does not answer.
        "from jupyter_progress import track\nfor _ in track(range(3), name='plain'): pass",
    ],
)
def test_client_side_loads_no_server_code(code: str) -> None:
    probe = (
        f"{code}\n"
        "import sys\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jupyter_server', 'tornado'}))\n"
    )
    env = {**os.environ, "JUPYTER_PROGRESS_URL": "http://127.0.0.1:9/"}  # nothing listens
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_contract_is_stdlib_only() -> None:
    probe = (
        "import sys; before = set(sys.modules)\n"
        "import jupyter_progress.contract\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'jupyter_progress'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
