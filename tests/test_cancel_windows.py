"""Cancels that come before the executor holds the job, and children of a job that ends.

A cancel must never be lost: not while the target loads (a slow import in the thread
executor), not before the job's task first runs, not right after the worker cap admits it.
A server-run job that ends cancelled or failed ends its still-running descendants (a tqdm
bar in a notebook job's kernel gets no final report once the kernel is gone).

Real parts: a Jupyter server, worker processes or threads, marker files the items write.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_progress.executors import ThreadExecutor
from jupyter_progress.models import JobKind, JobSpec

from helpers.job_helpers import hold_items, wait_for_files

SLOW_MODULE = '''
"""Imported slowly: blocks until {release!r} exists (at most 60 s)."""
import time
from pathlib import Path

Path({importing!r}).write_text("importing")
_deadline = time.monotonic() + 60
while not Path({release!r}).exists() and time.monotonic() < _deadline:
    time.sleep(0.02)


def work(item):
    Path({ran!r}).mkdir(exist_ok=True)
    (Path({ran!r}) / f"item.{{item}}").write_text("ran")
    return item
'''


def slow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh module (its own name: imported once per process) that imports slowly."""
    name = f"slow_import_{uuid.uuid4().hex[:12]}"
    source = SLOW_MODULE.format(
        importing=str(tmp_path / "importing"),
        release=str(tmp_path / "go"),
        ran=str(tmp_path / "ran"),
    )
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def items_run(tmp_path: Path) -> int:
    return len(list((tmp_path / "ran").glob("item.*")))


async def task_gone(runner: Any, job_id: str) -> None:
    """Until the runner's task for the job has returned (or 60 s)."""
    deadline = time.monotonic() + 60
    while job_id in runner._tasks:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id}'s task still runs")
        await asyncio.sleep(0.05)


async def test_thread_executor_keeps_a_cancel_that_comes_while_the_target_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = slow_module(tmp_path, monkeypatch)
    executor = ThreadExecutor()
    results: list[Any] = []
    run = asyncio.ensure_future(
        executor.run("s" * 32, f"{module}:work", list(range(50)), 2, results.extend)
    )
    await wait_for_files(tmp_path, "importing", 1)
    executor.cancel("s" * 32)
    (tmp_path / "go").touch()
    await asyncio.wait_for(run, 60)
    assert results == []
    assert items_run(tmp_path) == 0


class TestThreadServer:
    @pytest.fixture
    def progress_config(self) -> dict[str, Any]:
        return {"executor": "thread"}

    async def test_cancel_while_the_target_imports_runs_no_item(
        self,
        api: httpx.AsyncClient,
        progress_app: Any,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        module = slow_module(tmp_path, monkeypatch)
        body = {"kind": "python", "target": f"{module}:work", "items": list(range(50))}
        response = await api.post("jobs", json={**body, "concurrency": 2})
        assert response.status_code == 201, response.text
        job_id = response.json()["job_id"]
        await wait_for_files(tmp_path, "importing", 1)
        cancelled = await api.post(f"jobs/{job_id}/cancel")
        assert cancelled.status_code == 202
        assert cancelled.json()["status"] == "cancelled"
        (tmp_path / "go").touch()
        await task_gone(progress_app.manager.runners[JobKind.PYTHON], job_id)
        assert items_run(tmp_path) == 0
        final = (await api.get(f"jobs/{job_id}")).json()
        assert (final["status"], final["progress"]["processed"]) == ("cancelled", 0)


async def test_cancel_before_the_task_first_runs_starts_no_worker(
    api: httpx.AsyncClient, progress_app: Any, tmp_path: Path
) -> None:
    """Created and cancelled in one step of the loop: the job's task has not run yet."""
    manager = progress_app.manager
    spec = JobSpec(
        kind=JobKind.PYTHON,
        name="cancelled at once",
        target="progress_tasks:wait_for_file",
        items=hold_items(tmp_path, 6),
        concurrency=2,
        total=6,
    )
    job = manager.create(spec)
    manager.cancel(job.job_id)
    (tmp_path / "go").touch()  # were an item to start, it would not hold the task
    await task_gone(manager.runners[JobKind.PYTHON], job.job_id)
    assert not (tmp_path / "started").exists()
    assert manager.get(job.job_id).status.value == "cancelled"
