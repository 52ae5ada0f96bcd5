"""Live notebook jobs: the executed copy after every cell, the running cell's title and
log tail in ``details``, and the kernel that knows its job. A real server, nbclient and
ipykernel; assertions follow the job's events, never the clock."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any

import httpx
import nbformat

from jupyter_progress.runners import MAX_LOG_TAIL_BYTES, LiveCopy, LogTail, cell_title

from helpers.job_helpers import FINAL, final_state, write_notebook

SLOW_CELL = (
    "# Print for a while\n"
    "import time\n"
    "for i in range(16):\n"
    "    print(f'line {i}', flush=True)\n"
    "    time.sleep(0.5)"
)


def test_cell_title_is_the_first_comment_else_the_first_line() -> None:
    assert cell_title("import os\n# Load the data\nx = 1") == "Load the data"
    assert cell_title("\n\nx = compute(1)\ny = 2") == "x = compute(1)"
    assert cell_title("#\nprint(1)") == "#"
    assert cell_title("") == ""
    long = cell_title("# " + "word " * 50)
    assert len(long) == 80 and long.endswith("…")


def test_log_tail_keeps_the_last_bytes_and_folds_carriage_returns() -> None:
    tail = LogTail()
    tail.add("start\n 10%|#\r 50%|#####")
    tail.add("\r100%|##########\n")
    assert tail.text == "start\n100%|##########\n"
    tail.add("é" * 5000)
    assert len(tail.text.encode("utf-8")) <= MAX_LOG_TAIL_BYTES
    assert tail.text.endswith("é")
    tail.clear()
    assert tail.text == ""


def test_live_copy_is_a_valid_notebook_after_each_cell_and_canonical_at_the_end(
    tmp_path: Path,
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('é')"), nbformat.v4.new_code_cell("2")]
    path = tmp_path / "out" / "copy.ipynb"
    copy = LiveCopy(nb, path, logging.getLogger("test"))
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="é\n")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="not yet\n")]
    written = threading.Event()
    copy.cell_done(0, on_written=written.set)
    copy.wait()
    assert written.is_set()
    mid_run = nbformat.read(path, as_version=4)
    nbformat.validate(mid_run)
    assert mid_run.cells[0].outputs[0]["text"] == "é\n"
    assert mid_run.cells[1].outputs == []  # a cell not run yet is as it was
    copy.write_final()
    assert nbformat.read(path, as_version=4) == nb
    assert [p.name for p in path.parent.iterdir()] == ["copy.ipynb"]  # no temporary left


async def test_notebook_job_is_live_copy_title_and_log_tail_move(
    api: httpx.AsyncClient, jp_root_dir: Path
) -> None:
    write_notebook(
        jp_root_dir / "live.ipynb",
        "print('first cell done')",
        SLOW_CELL,
        "import os\nprint(os.environ['JUPYTER_PROGRESS_PARENT'])\n"
        "print(os.environ['JUPYTER_PROGRESS_URL'])",
    )
    response = await api.post("jobs", json={"kind": "notebook", "path": "live.ipynb"})
    assert response.status_code == 201, response.text
    job_id = response.json()["job_id"]
    output = jp_root_dir / "live.executed.ipynb"
    tails: list[str] = []
    copy_mid_run: Any = None
    states: list[dict[str, Any]] = []

    async def follow() -> None:
        nonlocal copy_mid_run
        timeout = httpx.Timeout(10.0, read=120.0)
        async with api.stream("GET", "events", params={"job": job_id}, timeout=timeout) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                state = json.loads(line[len("data: ") :])["data"]
                states.append(state)
                details = state.get("details", {})
                if details.get("cell") == 1 and details.get("log_tail"):
                    tails.append(details["log_tail"])
                    # Cell 1 is counted once the copy holding it is on disk.
                    counted = state["progress"]["processed"] >= 1
                    if copy_mid_run is None and counted and state["status"] == "processing":
                        copy_mid_run = nbformat.read(output, as_version=4)
                if state["status"] in FINAL:
                    return

    await asyncio.wait_for(follow(), 120)
    final = states[-1]
    assert final["status"] == "completed", final
    # Mid-run, while cell 2 printed, the copy on disk already held cell 1's output.
    assert copy_mid_run is not None
    assert copy_mid_run.cells[0].outputs[0]["text"] == "first cell done\n"
    # The running cell's title, and a log tail that moved while it ran.
    running = [s["details"] for s in states if s["details"].get("cell") == 1]
    assert running and all(d["cell_title"] == "Print for a while" for d in running)
    assert all(d["cell_count"] == 3 for d in running)
    assert len(set(tails)) >= 3, tails
    assert tails[0].startswith("line 0\n")
    assert "line 15" in tails[-1]
    assert all(len(t.encode("utf-8")) <= MAX_LOG_TAIL_BYTES for t in tails)
    # The kernel knew its job and its server.
    executed = nbformat.read(output, as_version=4)
    lines = executed.cells[2].outputs[0]["text"].splitlines()
    assert lines[0] == job_id
    assert lines[1].startswith("http://")
    assert final["details"]["cell"] == 2
    assert final["details"]["output_path"] == "live.executed.ipynb"


async def test_track_inside_a_notebook_job_is_its_child_on_the_jobs_stream(
    api: httpx.AsyncClient, jp_root_dir: Path
) -> None:
    write_notebook(
        jp_root_dir / "nested.ipynb",
        "# Inner loop\nimport time\nfrom jupyter_progress import track\n"
        "for _ in track(range(5), name='inner bar'):\n    time.sleep(0.1)",
    )
    response = await api.post("jobs", json={"kind": "notebook", "path": "nested.ipynb"})
    job_id = response.json()["job_id"]
    children: list[dict[str, Any]] = []
    final: dict[str, Any] = {}

    async def follow() -> None:
        timeout = httpx.Timeout(10.0, read=120.0)
        async with api.stream("GET", "events", params={"job": job_id}, timeout=timeout) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                payload = json.loads(line[len("data: ") :])
                state = payload["data"]
                if payload["type"] != "job_updated":
                    continue
                if state["job_id"] == job_id:
                    if state["status"] in FINAL:
                        final.update(state)
                        return
                else:
                    children.append(state)

    await asyncio.wait_for(follow(), 120)
    assert final["status"] == "completed", final
    assert children, "the inner bar never reached the notebook job's stream"
    assert {child["parent_id"] for child in children} == {job_id}
    assert {child["name"] for child in children} == {"inner bar"}
    listed = (await api.get("jobs", params={"parent": job_id})).json()["jobs"]
    assert [child["name"] for child in listed] == ["inner bar"]
    assert listed[0]["status"] == "completed"
    assert listed[0]["progress"]["processed"] == 5


async def test_a_failing_cell_is_an_error_sample_and_a_failure_with_its_cell_number(
    api: httpx.AsyncClient, jp_root_dir: Path
) -> None:
    write_notebook(
        jp_root_dir / "breaks.ipynb",
        "print('fine')",
        "# Break it\nprint('about to fail')\nraise ValueError('boom')",
        "print('never')",
    )
    response = await api.post("jobs", json={"kind": "notebook", "path": "breaks.ipynb"})
    job_id = response.json()["job_id"]
    final = await final_state(api, job_id)
    assert final["status"] == "failed"
    assert final["error_samples"] == [{"item": "cell 2", "error": "ValueError: boom"}]
    assert final["details"]["cell"] == 1
    assert final["details"]["cell_title"] == "Break it"
    assert final["details"]["log_tail"] == "about to fail\n"
    failures = (await api.get(f"jobs/{job_id}/failures")).json()
    assert failures == {
        "failures": [{"index": 1, "item": "cell 2", "error": "ValueError: boom"}],
        "next_offset": None,
    }
    assert (await api.get(f"jobs/{job_id}/results")).json()["results"] == []
