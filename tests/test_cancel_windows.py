"""Cancels that come before the executor holds the job, and children of a job that ends.

A cancel must never be lost: not while the target loads (a slow import in the thread
executor), not before the job's task first runs, not right after the worker cap admits it.
A server-run job that ends cancelled or failed ends its still-running descendants (a tqdm
bar in a notebook job's kernel gets no final report once the kernel is gone).

Real parts: a Jupyter server, worker processes or threads, marker files the items write.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_progress.executors import ThreadExecutor
from jupyter_progress.models import JobKind, JobSpec

from helpers.job_helpers import final_state, hold_items, wait_for_files

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


# ----- children of a server-run job --------------------------------------------------------


async def child_events(api: httpx.AsyncClient, parent_id: str, child_id: str) -> Any:
    """A reader of the parent's stream that returns the child's states up to its final one."""
    states: list[dict[str, Any]] = []
    ready = asyncio.Event()

    async def read() -> list[dict[str, Any]]:
        timeout = httpx.Timeout(10.0, read=60.0)
        async with api.stream("GET", "events", params={"job": parent_id}, timeout=timeout) as r:
            assert r.status_code == 200
            ready.set()
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                payload = json.loads(line[len("data: ") :])
                if payload["type"] != "job_updated" or payload["data"]["job_id"] != child_id:
                    continue
                states.append(payload["data"])
                if payload["data"]["status"] in {"completed", "failed", "cancelled"}:
                    return states
        return states

    task = asyncio.ensure_future(asyncio.wait_for(read(), 60))
    await asyncio.wait_for(ready.wait(), 30)
    return task


async def running_parent_with_child(api: httpx.AsyncClient, tmp_path: Path) -> tuple[str, str, str]:
    parent = await api.post(
        "jobs",
        json={
            "kind": "python",
            "target": "progress_tasks:wait_for_file",
            "items": hold_items(tmp_path, 2),
            "concurrency": 1,
        },
    )
    assert parent.status_code == 201, parent.text
    parent_id = parent.json()["job_id"]
    await wait_for_files(tmp_path / "started", "item.*", 1)
    child = await api.post(
        "jobs", json={"kind": "reported", "name": "bar", "total": 10, "parent_id": parent_id}
    )
    grandchild = await api.post(
        "jobs",
        json={"kind": "reported", "name": "inner", "parent_id": child.json()["job_id"]},
    )
    return parent_id, child.json()["job_id"], grandchild.json()["job_id"]


async def test_cancelling_a_server_job_cancels_its_running_children(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    parent_id, child_id, grandchild_id = await running_parent_with_child(api, tmp_path)
    done = await api.post("jobs", json={"kind": "reported", "name": "done", "parent_id": parent_id})
    finished = await api.post(
        f"jobs/{done.json()['job_id']}/progress", json={"status": "completed"}
    )
    assert finished.json()["status"] == "completed"
    reading = await child_events(api, parent_id, child_id)
    response = await api.post(f"jobs/{parent_id}/cancel")
    assert response.status_code == 202
    states = await reading
    assert states[-1]["status"] == "cancelled"
    assert states[-1]["message"] == "the parent job was cancelled"
    for job_id in (child_id, grandchild_id):
        job = (await api.get(f"jobs/{job_id}")).json()
        assert (job["status"], job["message"]) == ("cancelled", "the parent job was cancelled")
    late = await api.post(f"jobs/{child_id}/progress", json={"success": 3})
    assert late.status_code == 409
    kept = (await api.get(f"jobs/{done.json()['job_id']}")).json()
    assert kept["status"] == "completed"  # an ended child keeps its own end
    (tmp_path / "go").touch()


async def test_a_completed_server_job_leaves_running_children_alone(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    parent_id, child_id, _ = await running_parent_with_child(api, tmp_path)
    (tmp_path / "go").touch()
    assert (await final_state(api, parent_id))["status"] == "completed"
    child = (await api.get(f"jobs/{child_id}")).json()
    assert child["status"] == "processing"
    report = await api.post(f"jobs/{child_id}/progress", json={"success": 10})
    assert report.status_code == 200
    assert report.json()["progress"]["processed"] == 10


async def test_stopping_the_server_cancels_children_of_its_jobs(
    api: httpx.AsyncClient, progress_app: Any, tmp_path: Path
) -> None:
    parent_id, child_id, _ = await running_parent_with_child(api, tmp_path)
    reading = await child_events(api, parent_id, child_id)
    progress_app.manager.cancel_server_jobs("the server stopped")
    states = await reading
    assert (states[-1]["status"], states[-1]["message"]) == ("cancelled", "the server stopped")
    (tmp_path / "go").touch()
