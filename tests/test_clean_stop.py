"""A clean stop (SIGTERM) of a real server while a python job and a notebook job run.

The server's own jobs end ``cancelled`` ("the server stopped") and are written before it
exits; its worker processes and the notebook's kernel are gone; a ``reported`` job keeps
running (its reporter may outlive the server).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from jupyter_progress.manager import STOP_MESSAGE

from helpers.job_helpers import hold_items, write_notebook
from helpers.server_process import ServerProcess

TESTS_DIR = Path(__file__).parent


def descendants(root: int) -> set[int]:
    """Every live (not zombie) process below ``root``, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            state = _stat(int(entry))
            if state is not None and state[0] != "Z":
                parents[int(entry)] = state[1]
    found: set[int] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = {pid for pid, ppid in parents.items() if ppid == parent} - found
        found |= children
        frontier.extend(children)
    return found


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def alive(pid: int) -> bool:
    state = _stat(pid)
    return state is not None and state[0] != "Z"


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sigterm_cancels_and_writes_running_jobs_and_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    )
    root = tmp_path / "root"
    marker = tmp_path / "cell-running"
    never = tmp_path / "never"
    write_notebook(
        root / "hold.ipynb",
        f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\n"
        f"while not pathlib.Path({str(never)!r}).exists():\n    time.sleep(0.05)",
    )
    server = ServerProcess(root, tmp_path / "db" / "jobs.sqlite")
    server.start()
    try:
        with server.client() as http:
            python = http.post(
                "jobs",
                json={
                    "kind": "python",
                    "name": "held",
                    "target": "progress_tasks:wait_for_file",
                    "items": hold_items(tmp_path / "py", 2),
                    "concurrency": 2,
                },
            ).json()
            notebook = http.post("jobs", json={"kind": "notebook", "path": "hold.ipynb"}).json()
            reported = http.post("jobs", json={"name": "elsewhere", "total": 10}).json()
            http.post(f"jobs/{reported['job_id']}/progress", json={"success": 3})
        started = tmp_path / "py" / "started"
        wait_for(lambda: len(list(started.glob("item.*"))) == 2, "both python items to start")
        wait_for(marker.exists, "the notebook's cell to run")
        assert server.process is not None
        children = descendants(server.process.pid)
        workers = {int(path.read_text()) for path in started.glob("item.*")}
        assert workers <= children
        assert len(children) >= 4  # forkserver, 2 workers, the kernel (and its helpers)
    except BaseException:
        server.kill()
        raise

    server.process.terminate()  # SIGTERM: a clean stop
    server.process.wait(30)
    assert server.process.returncode is not None
    wait_for(lambda: not any(alive(pid) for pid in children), "the server's children to exit", 5)

    server.start()
    try:
        with server.client() as http:
            jobs = {job["job_id"]: job for job in http.get("jobs").json()["jobs"]}
    finally:
        server.stop()
    for job_id in (python["job_id"], notebook["job_id"]):
        assert jobs[job_id]["status"] == "cancelled"
        assert jobs[job_id]["message"] == STOP_MESSAGE
        assert jobs[job_id]["finished_at"] is not None
    kept = jobs[reported["job_id"]]
    assert kept["status"] == "processing"  # judged by the reporter timeout, as before
    assert kept["progress"]["success"] == 3
