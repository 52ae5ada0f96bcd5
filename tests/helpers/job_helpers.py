"""Small test helpers shared by the runner, jobs API and CLI tests."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import nbformat

FINAL = {"completed", "failed", "cancelled"}


async def events_until_final(
    api: httpx.AsyncClient, job_id: str, timeout: float = 90.0
) -> list[dict[str, Any]]:
    """Every Job state the event stream sends for ``job_id``, up to its final one."""
    states: list[dict[str, Any]] = []

    async def read() -> None:
        stream_timeout = httpx.Timeout(10.0, read=timeout)
        async with api.stream(
            "GET", "events", params={"job": job_id}, timeout=stream_timeout
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                payload = json.loads(line[len("data: ") :])
                if payload["type"] != "job_updated":
                    continue
                states.append(payload["data"])
                if payload["data"]["status"] in FINAL:
                    return

    await asyncio.wait_for(read(), timeout)
    return states


async def final_state(api: httpx.AsyncClient, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    return (await events_until_final(api, job_id, timeout))[-1]


async def wait_for_files(
    directory: Path, pattern: str, count: int, timeout: float = 60.0
) -> list[Path]:
    """The files matching ``pattern`` once there are ``count`` of them (async: the server runs)."""
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(directory.glob(pattern))
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(found)} of {count} {pattern} files in {directory}")
        await asyncio.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_until_dead(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} is still alive")
        await asyncio.sleep(0.05)


def hold_items(tmp_path: Path, count: int) -> list[dict[str, Any]]:
    """Items of ``progress_tasks:wait_for_file`` that each wait until ``tmp_path/go`` exists
    (each leaves a ``started/item.<n>`` file when it begins)."""
    return [
        {"n": n, "started": str(tmp_path / "started" / "item"), "release": str(tmp_path / "go")}
        for n in range(count)
    ]


def write_notebook(path: Path, *cells: str, parameters: str | None = None) -> Path:
    """A notebook of code cells; ``parameters`` becomes a cell tagged ``parameters`` first."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


async def create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """Create a job through the API (``reported`` unless ``kind`` says otherwise)."""
    response = await api.post("jobs", json={"kind": "reported", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def report(api: httpx.AsyncClient, job_id: str, **body: Any) -> dict[str, Any]:
    """Send a progress report that must be accepted."""
    response = await api.post(f"jobs/{job_id}/progress", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def wait_for(condition: Any, timeout: float = 15.0) -> None:
    """Poll ``condition()`` on the test's loop until it holds (a bound, not a timing)."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")
