"""Server-wide caps (``max_workers``, ``max_running_notebooks``) and the honoured concurrency
of long items.

A real Jupyter server runs real worker processes and kernels; a sampler thread counts them
in ``/proc`` while jobs are submitted, so "never more than the cap" is about processes, not
about the server's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_progress.caps import Slots
from jupyter_progress.executors import ProcessExecutor

from helpers.job_helpers import final_state, hold_items, wait_for_files, write_notebook

# ----- the queue on its own ----------------------------------------------------------------


async def test_slots_are_first_come_first_served() -> None:
    slots = Slots(3, unit="worker")
    told: list[tuple[str, str]] = []
    notice = lambda job_id, message: told.append((job_id, message))  # noqa: E731
    await slots.acquire("a", 2)
    big = asyncio.ensure_future(slots.acquire("b", 2, notice))
    small = asyncio.ensure_future(slots.acquire("c", 1, notice))
    await asyncio.sleep(0)
    # One worker is free, and c needs one, but b came first: c waits behind it.
    assert not big.done() and not small.done()
    assert slots.waiting == ["b", "c"]
    assert told == [
        ("b", "waiting for 2 workers (2 of 3 in use)"),
        ("c", "waiting for a worker (2 of 3 in use; 1 job ahead)"),
    ]
    slots.release("a")
    await asyncio.sleep(0)
    assert big.done() and small.done()
    assert slots.in_use == 3 and slots.waiting == []


async def test_slots_drop_ends_the_wait_at_once() -> None:
    slots = Slots(1, unit="kernel")
    await slots.acquire("a", 1)
    waiting = asyncio.ensure_future(slots.acquire("b", 1))
    behind = asyncio.ensure_future(slots.acquire("c", 1))
    await asyncio.sleep(0)
    slots.drop("b")
    with pytest.raises(asyncio.CancelledError):
        await waiting
    slots.release("a")
    await behind
    assert slots.holds("c") == 1 and slots.in_use == 1


def test_a_job_share_is_its_own_bound_inside_the_cap() -> None:
    slots = Slots(4, unit="worker")
    assert slots.share(2) == 2
    assert slots.share(32) == 4
    with pytest.raises(ValueError):
        Slots(0, unit="worker")


# ----- real processes and kernels ---------------------------------------------------------


def _descendants(root: int) -> dict[int, str]:
    """pid → command line of every process below ``root`` (from /proc)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] == b"Z":  # a zombie is already gone, only not reaped yet
            continue
        parents[int(entry)] = int(fields[1])
        commands[int(entry)] = command
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = commands[pid]
                frontier.append(pid)
    return found


def count_workers(root: int) -> int:
    """Worker processes: the children of the multiprocessing forkserver."""
    procs = _descendants(root)
    servers = {pid for pid, command in procs.items() if "forkserver" in command}
    servers = {pid for pid in servers if _parent(pid) == root}  # not its forked workers
    return sum(1 for pid in procs if _parent(pid) in servers)


def count_kernels(root: int) -> int:
    """Kernel processes; not a kernel's own short-lived children (a fork of the kernel
    keeps its command line until it execs)."""
    kernels = {pid for pid, command in _descendants(root).items() if "ipykernel" in command}
    return sum(1 for pid in kernels if _parent(pid) not in kernels)


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except OSError:
        return -1


class Sampler:
    """Counts processes in a thread every few milliseconds and keeps the largest count."""

    def __init__(self, count: Any) -> None:
        self.count = count
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count(os.getpid()))
            self.samples += 1
            self._stop.wait(0.01)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def progress_config() -> dict[str, Any]:
    return {"max_workers": 3, "max_running_notebooks": 1}


async def _job(api: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await api.get(f"jobs/{job_id}")
    assert response.status_code == 200
    return response.json()


async def _until(api: httpx.AsyncClient, job_id: str, status: str) -> dict[str, Any]:
    for _ in range(1200):
        job = await _job(api, job_id)
        if job["status"] == status:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never became {status}: {job}")


async def test_python_jobs_never_run_more_workers_than_max_workers(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    async def submit(name: str, count: int) -> str:
        body = {
            "kind": "python",
            "name": name,
            "target": "progress_tasks:wait_for_file",
            "items": hold_items(tmp_path / name, count),
            "concurrency": count,
        }
        response = await api.post("jobs", json=body)
        assert response.status_code == 201
        return str(response.json()["job_id"])

    with Sampler(count_workers) as sampler:
        first = await submit("first", 2)
        await wait_for_files(tmp_path / "first" / "started", "item.*", 2)
        second = await submit("second", 2)  # needs 2 of the 3: waits
        third = await submit("third", 1)  # 1 would fit, but second came first: waits
        doomed = await submit("doomed", 1)
        for job_id in (second, third, doomed):
            assert (await _job(api, job_id))["status"] == "pending"
        assert (await _job(api, second))["message"] == "waiting for 2 workers (2 of 3 in use)"
        assert (await _job(api, third))["message"].endswith("1 job ahead)")

        cancelled = await api.post(f"jobs/{doomed}/cancel")
        assert cancelled.status_code == 202
        assert (await _job(api, doomed))["status"] == "cancelled"  # at once: it never ran

        (tmp_path / "first" / "go").touch()
        await _until(api, first, "completed")
        await wait_for_files(tmp_path / "second" / "started", "item.*", 2)
        assert (await _job(api, second))["message"] == ""  # no longer waiting
        await wait_for_files(tmp_path / "third" / "started", "item.*", 1)
        for name in ("second", "third"):
            (tmp_path / name / "go").touch()
        ends = [await final_state(api, job_id) for job_id in (first, second, third)]
    assert [job["status"] for job in ends] == ["completed"] * 3
    starts = [job["started_at"] for job in ends]
    assert starts == sorted(starts), "jobs started out of arrival order"
    assert not (tmp_path / "doomed" / "started").exists()
    assert sampler.samples > 10
    assert 2 <= sampler.peak <= 3


async def test_notebook_jobs_never_run_more_kernels_than_the_cap(
    api: httpx.AsyncClient, jp_root_dir: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    cell = (
        f"import pathlib, time\nwhile not pathlib.Path({str(go)!r}).exists():\n    time.sleep(0.05)"
    )
    write_notebook(jp_root_dir / "hold.ipynb", cell)
    ids = []
    with Sampler(count_kernels) as sampler:
        for n in range(2):
            body = {"kind": "notebook", "path": "hold.ipynb", "output_path": f"out{n}.ipynb"}
            response = await api.post("jobs", json=body)
            assert response.status_code == 201
            ids.append(response.json()["job_id"])
        await _until(api, ids[0], "processing")
        waiting = await _job(api, ids[1])
        assert waiting["status"] == "pending"
        assert waiting["message"] == "waiting for a kernel (1 of 1 in use)"
        go.touch()
        ends = [await final_state(api, job_id) for job_id in ids]
    assert [job["status"] for job in ends] == ["completed", "completed"]
    assert sampler.peak == 1


# ----- honoured concurrency for long items -------------------------------------------------


async def test_long_items_all_run_at_once(tmp_path: Path) -> None:
    """4 items of 2.5 s at concurrency 4: no worker takes a second item while one waits."""
    items = [{"n": n, "dir": str(tmp_path), "seconds": 2.5} for n in range(4)]
    results: list[tuple[int, str | None]] = []
    await ProcessExecutor().run(
        "l" * 32, "progress_tasks:record_and_sleep", items, 4, results.extend
    )
    assert sorted(results) == [(n, None) for n in range(4)]
    starts = [float((tmp_path / f"start.{n}").read_text()) for n in range(4)]
    ends = [float((tmp_path / f"end.{n}").read_text()) for n in range(4)]
    assert max(starts) < min(ends), "an item waited for another to finish"
