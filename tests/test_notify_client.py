"""The Python and terminal ends of notifications: ``Job.on_final`` and ``watch --bell``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jupyter_progress import Job, submit

from helpers.server_process import ServerProcess

CLI = str(Path(sys.executable).parent / "jupyter-progress")


async def test_on_final_is_called_once_with_the_final_state(server_env: str) -> None:
    calls: list[tuple[str, int, str]] = []
    ended = threading.Event()

    def record(job: Job) -> None:
        calls.append((job.status, job.progress["processed"], threading.current_thread().name))
        ended.set()

    job = await asyncio.to_thread(submit, "progress_tasks:square", range(20), name="squares")
    job.on_final(record)
    await job.wait_async(timeout=90)
    assert await asyncio.to_thread(ended.wait, 30)
    await asyncio.sleep(0.2)  # a second call, if there were one, would land by now
    assert [(status, processed) for status, processed, _ in calls] == [("completed", 20)]
    late: list[str] = []
    job.on_final(lambda job: late.append(job.status))  # already ended: called at once
    assert late == ["completed"]


async def test_on_final_callback_that_raises_does_not_stop_the_others(server_env: str) -> None:
    seen: list[str] = []

    def broken(job: Job) -> None:
        raise RuntimeError("a user's bug")

    job = await asyncio.to_thread(submit, "progress_tasks:square", range(3), name="three")
    job.on_final(broken)
    job.on_final(lambda job: seen.append(job.status))
    await job.wait_async(timeout=90)
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.05)
    assert seen == ["completed"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("bell")
    process = ServerProcess(base / "root", base / "state" / "jobs.sqlite")
    try:
        process.start()
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize("bell", [True, False])
def test_watch_rings_the_bell_when_the_job_ends_only_when_asked(
    server: ServerProcess, bell: bool
) -> None:
    with httpx.Client(headers=server.headers, timeout=30) as api:
        job = api.post(server.api_url + "jobs", json={"name": "bell", "total": 2}).json()
        env = dict(os.environ, JUPYTER_PROGRESS_URL=server.url, JUPYTER_PROGRESS_TOKEN=server.token)
        args = [CLI, "watch", job["job_id"], *(["--bell"] if bell else [])]
        watcher = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            progress = server.api_url + f"jobs/{job['job_id']}/progress"
            api.post(progress, json={"success": 2, "status": "completed"}).raise_for_status()
            _, stderr = watcher.communicate(timeout=60)
        finally:
            watcher.kill()
    assert watcher.returncode == 0
    assert stderr.count(b"\a") == (1 if bell else 0)
