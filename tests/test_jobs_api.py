"""The Python API (``submit``, ``run_notebook``, ``Job``) against a real server.

The server runs on the test's event loop, so blocking calls go through
``asyncio.to_thread``; the ``Job`` handle's own stream thread does the rest.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from jupyter_progress.client import ServerNotFound
from jupyter_progress.jobs import (
    Job,
    JobFailed,
    run_notebook,
    submit,
    submit_async,
)

import progress_tasks
from helpers.job_helpers import hold_items, wait_for_files, write_notebook


async def test_on_progress_given_to_submit_sees_every_item(server_env: str) -> None:
    seen: list[tuple[str, int]] = []
    threads: set[str] = set()

    def record(job: Job) -> None:
        seen.append((job.status, job.progress["processed"]))
        threads.add(threading.current_thread().name)

    job = await asyncio.to_thread(
        submit,
        "progress_tasks:square",
        range(30),
        name="squares",
        concurrency=2,
        on_progress=record,
    )
    assert job.name == "squares"
    await job.wait_async(timeout=90)
    assert job.status == "completed"
    assert job.progress["success"] == 30
    processed = [count for _, count in seen]
    assert set(range(1, 31)) <= set(processed), "one callback per item"
    assert processed == sorted(processed)
    assert seen[-1] == ("completed", 30)
    assert threading.current_thread().name not in threads


async def test_on_progress_registered_later_gets_the_remaining_events(
    server_env: str, tmp_path: Path
) -> None:
    job = await asyncio.to_thread(submit, "progress_tasks:wait_for_file", hold_items(tmp_path, 4))
    final_seen = asyncio.Event()
    loop = asyncio.get_running_loop()

    @job.on_progress
    def record(job: Job) -> None:
        if job.done:
            loop.call_soon_threadsafe(final_seen.set)

    await wait_for_files(tmp_path / "started", "item.*", 1)
    (tmp_path / "go").touch()
    await asyncio.wait_for(final_seen.wait(), 90)
    assert job.status == "completed"
    assert job.progress["processed"] == 4


async def test_wait_times_out_then_cancel_ends_the_job(server_env: str, tmp_path: Path) -> None:
    job = await asyncio.to_thread(
        submit, "progress_tasks:wait_for_file", hold_items(tmp_path, 6), concurrency=2
    )
    await wait_for_files(tmp_path / "started", "item.*", 2)
    with pytest.raises(TimeoutError):
        await asyncio.to_thread(job.wait, 0.2)
    assert job.status == "processing"
    await job.cancel_async()
    assert job.status == "cancelled"
    await asyncio.to_thread(job.cancel)  # a second cancel is harmless
    await asyncio.to_thread(job.wait, 30)
    with pytest.raises(JobFailed, match="cancelled"):
        await job.wait_async(raise_on_failure=True)
    (tmp_path / "go").touch()
    assert job.progress["processed"] == 0


async def test_submit_async_and_a_module_function_target(server_env: str) -> None:
    job = await submit_async(progress_tasks.fail_on_odd, [1, 2, 3], name="odd")
    await job.wait_async(timeout=90)
    assert job.data["details"]["target"] == "progress_tasks:fail_on_odd"
    assert (job.progress["success"], job.progress["errors"]) == (1, 2)
    assert job.error_samples[0]["error"] == "ValueError: odd item 1"


def test_submit_refuses_a_function_the_server_cannot_import() -> None:
    def local(item: Any) -> Any:
        return item

    with pytest.raises(ValueError, match="imports the target by name"):
        submit(local, [1])


async def test_submit_with_bad_target_raises_the_servers_400(server_env: str) -> None:
    from jupyter_progress.client import ProgressAPIError

    with pytest.raises(ProgressAPIError) as caught:
        await asyncio.to_thread(submit, "no_such_module:f", [1])
    assert caught.value.status == 400


async def test_run_notebook_with_parameters(server_env: str, jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "nb.ipynb", "print(greeting * 2)", parameters="greeting = 'x'")
    job = await asyncio.to_thread(run_notebook, "nb.ipynb", parameters={"greeting": "hi"})
    await job.wait_async(timeout=120, raise_on_failure=True)
    assert job.progress["processed"] == 3
    assert job.details["output_path"] == "nb.executed.ipynb"
    assert "hihi" in (jp_root_dir / "nb.executed.ipynb").read_text()


async def test_run_notebook_failure_raises_job_failed(server_env: str, jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "bad.ipynb", "1 / 0")
    job = await asyncio.to_thread(run_notebook, "bad.ipynb", output_path="runs/bad-out.ipynb")
    with pytest.raises(JobFailed) as caught:
        await job.wait_async(timeout=120, raise_on_failure=True)
    assert caught.value.job.error_samples == [
        {"item": "cell 1", "error": "ZeroDivisionError: division by zero"}
    ]
    assert (jp_root_dir / "runs" / "bad-out.ipynb").exists()


async def test_attach_follows_a_job_made_elsewhere(server_env: str, api: httpx.AsyncClient) -> None:
    created = (
        await api.post(
            "jobs",
            json={
                "kind": "python",
                "target": "progress_tasks:square",
                "items": [1, 2, 3],
                "name": "elsewhere",
            },
        )
    ).json()
    job = await asyncio.to_thread(Job.attach, created["job_id"])
    await job.wait_async(timeout=90)
    assert (job.name, job.status, job.progress["processed"]) == ("elsewhere", "completed", 3)


async def test_display_is_a_widget_with_truthful_text(server_env: str) -> None:
    job = await asyncio.to_thread(submit, "progress_tasks:square", [1, 2], name="shown")
    await job.wait_async(timeout=90)
    bundle = job._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["text/plain"] == "shown: 2/2 (100.0%), completed"
    assert data["application/vnd.jupyter-progress.job+json"]["job_id"] == job.job_id
    assert "shown" in repr(job) and "completed" in repr(job)


def test_no_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JUPYTER_PROGRESS_URL", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(ServerNotFound, match="no running Jupyter server"):
        submit("progress_tasks:square", [1])


def test_unreachable_server_fails_fast() -> None:
    with pytest.raises(httpx.ConnectError):
        submit("progress_tasks:square", [1], url="http://127.0.0.1:9/")


async def test_submit_from_a_kernel_returns_at_once_and_displays_the_job(
    server_env: str, jp_root_dir: Path, api: httpx.AsyncClient
) -> None:
    """The issue's "done when": a cell submits work to the server and shows its widget."""
    write_notebook(
        jp_root_dir / "kernel_submits.ipynb",
        "from jupyter_progress import submit\n"
        "job = submit('progress_tasks:square', range(50), name='from a kernel', concurrency=2)",
        "job.wait(90)\nprint(job.status, job.progress['success'])",
        "job",
    )
    notebook_job = await asyncio.to_thread(run_notebook, "kernel_submits.ipynb")
    await notebook_job.wait_async(timeout=120, raise_on_failure=True)
    executed = nbformat.read(jp_root_dir / "kernel_submits.executed.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "completed 50\n"
    display = executed.cells[2].outputs[0]["data"]
    assert display["text/plain"] == "from a kernel: 50/50 (100.0%), completed"
    assert display["application/vnd.jupyter-progress.job+json"]["job"]["status"] == "completed"
    jobs = (await api.get("jobs", params={"status": "completed"})).json()["jobs"]
    assert {job["name"] for job in jobs} == {"from a kernel", "kernel_submits.ipynb"}
