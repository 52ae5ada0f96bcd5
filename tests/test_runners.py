"""Server-run jobs: the executors on their own, then python and notebook jobs over HTTP.

Everything is real: worker processes (forkserver), a Dask ``LocalCluster``, nbclient with
an ipykernel, a Jupyter server. Assertions are about counts and states, never timings.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from jupyter_progress.executors import (
    DaskExecutor,
    ItemExecutor,
    ProcessExecutor,
    TargetError,
    ThreadExecutor,
)
from jupyter_progress.runners import inject_parameters, python_literal

from helpers.job_helpers import (
    events_until_final,
    final_state,
    hold_items,
    pid_alive,
    wait_for_files,
    wait_until_dead,
    write_notebook,
)

Results = list[tuple[int, "str | None"]]


# ----- the executors on their own --------------------------------------------------------


@pytest.fixture(params=["process", "thread"])
def local_executor(request: pytest.FixtureRequest) -> ItemExecutor:
    return ProcessExecutor() if request.param == "process" else ThreadExecutor()


async def test_executor_counts_each_failing_item_as_an_error(local_executor: ItemExecutor) -> None:
    results: Results = []
    await local_executor.run(
        "j" * 32, "progress_tasks:fail_on_odd", list(range(40)), 3, results.extend
    )
    assert sorted(index for index, _ in results) == list(range(40))
    errors = dict(results)
    assert errors[0] is None
    assert errors[7] == "ValueError: odd item 7"
    assert sum(error is not None for error in errors.values()) == 20


async def test_executor_raises_target_error_when_the_target_cannot_load(
    local_executor: ItemExecutor,
) -> None:
    with pytest.raises(TargetError, match="no_such_module"):
        await local_executor.run("j" * 32, "no_such_module:f", [1, 2], 2, lambda batch: None)


async def test_process_executor_replaces_a_worker_killed_mid_item(tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    items = [{"n": n, "die": n == 5, "marker": str(marker)} for n in range(30)]
    results: Results = []
    await ProcessExecutor().run("k" * 32, "progress_tasks:die_on", items, 2, results.extend)
    assert marker.exists(), "the worker never ran the item that kills it"
    assert not pid_alive(int(marker.read_text()))
    errors = dict(results)
    assert sorted(errors) == list(range(30))
    assert errors[5] is not None and errors[5].startswith("WorkerCrashed:")
    assert "-9" in errors[5]
    assert [i for i, error in errors.items() if error is not None] == [5]


async def test_process_executor_cancel_terminates_running_workers(tmp_path: Path) -> None:
    executor = ProcessExecutor()
    results: Results = []
    run = asyncio.ensure_future(
        executor.run(
            "c" * 32, "progress_tasks:wait_for_file", hold_items(tmp_path, 10), 2, results.extend
        )
    )
    started = await wait_for_files(tmp_path / "started", "item.*", 2)
    pids = {int(path.read_text()) for path in started}
    assert len(pids) == 2
    executor.cancel("c" * 32)
    await asyncio.wait_for(run, 30)
    for pid in pids:
        await wait_until_dead(pid)
    (tmp_path / "go").touch()
    assert results == []
    assert len(list((tmp_path / "started").glob("item.*"))) == 2


async def test_thread_executor_cancel_starts_no_new_item(tmp_path: Path) -> None:
    executor = ThreadExecutor()
    results: Results = []
    run = asyncio.ensure_future(
        executor.run(
            "t" * 32, "progress_tasks:wait_for_file", hold_items(tmp_path, 10), 2, results.extend
        )
    )
    await wait_for_files(tmp_path / "started", "item.*", 2)
    executor.cancel("t" * 32)
    (tmp_path / "go").touch()  # threads cannot be killed: the two running items finish
    await asyncio.wait_for(run, 30)
    assert len(results) == 2
    assert len(list((tmp_path / "started").glob("item.*"))) == 2


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    )
    try:
        yield cluster
    finally:
        cluster.close()


async def test_dask_executor_runs_items_and_counts_errors(dask_cluster: Any) -> None:
    executor = DaskExecutor(dask_cluster.scheduler_address)
    try:
        results: Results = []
        await executor.run(
            "d" * 32, "progress_tasks:fail_on_odd", list(range(25)), 4, results.extend
        )
    finally:
        await executor.shutdown()
    errors = dict(results)
    assert sorted(errors) == list(range(25))
    assert errors[3] == "ValueError: odd item 3"
    assert sum(error is not None for error in errors.values()) == 12


async def test_dask_executor_cancel_submits_nothing_more(dask_cluster: Any, tmp_path: Path) -> None:
    executor = DaskExecutor(dask_cluster.scheduler_address)
    results: Results = []
    try:
        run = asyncio.ensure_future(
            executor.run(
                "e" * 32,
                "progress_tasks:wait_for_file",
                hold_items(tmp_path, 10),
                2,
                results.extend,
            )
        )
        await wait_for_files(tmp_path / "started", "item.*", 2)
        executor.cancel("e" * 32)
        await asyncio.wait_for(run, 30)
        (tmp_path / "go").touch()
    finally:
        await executor.shutdown()
    assert len(list((tmp_path / "started").glob("item.*"))) == 2
    assert results == []


# ----- parameters --------------------------------------------------------------------------


def test_python_literal_round_trips_json_values() -> None:
    value = {"a": [1, 2.5, None, True, "x'\"y"], "b": {"c": False}}
    assert eval(python_literal(value)) == value
    assert python_literal(float("nan")) == "float('nan')"


def test_inject_parameters_goes_after_the_parameters_cell_like_papermill() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("day = 'x'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(day)"),
    ]
    inject_parameters(nb, {"day": "2026-11-28"})
    inject_parameters(nb, {"day": "2026-11-29"})  # re-running replaces, never stacks
    sources = [cell.source for cell in nb.cells]
    assert sources[2] == "# Parameters\nday = '2026-11-29'"
    assert nb.cells[2].metadata.tags == ["injected-parameters"]
    assert len(nb.cells) == 4


# ----- python jobs through the server ----------------------------------------------------


async def create(api: httpx.AsyncClient, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.post("jobs", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def test_python_job_counts_errors_and_completes(api: httpx.AsyncClient) -> None:
    job = await create(
        api,
        {
            "kind": "python",
            "name": "odd",
            "target": "progress_tasks:fail_on_odd",
            "items": list(range(20)),
            "concurrency": 2,
        },
    )
    assert job["details"]["executor"] == "process"
    states = await events_until_final(api, job["job_id"])
    final = states[-1]
    assert final["status"] == "completed"
    assert final["progress"] == {
        "processed": 20,
        "total": 20,
        "success": 10,
        "errors": 10,
        "percentage": 100.0,
    }
    assert {"item": "1", "error": "ValueError: odd item 1"} in final["error_samples"]
    assert all("Traceback" not in sample["error"] for sample in final["error_samples"])
    processed = [state["progress"]["processed"] for state in states]
    assert processed == sorted(processed)


async def test_python_job_counts_every_item_when_results_come_in_big_batches(
    api: httpx.AsyncClient,
) -> None:
    """Regression: results delivered in chunks must all land before the job completes."""
    job = await create(
        api,
        {"kind": "python", "target": "operator:abs", "items": list(range(5000)), "concurrency": 2},
    )
    final = await final_state(api, job["job_id"])
    assert final["status"] == "completed"
    assert final["progress"]["success"] == 5000
    assert final["message"] == "5000 succeeded, 0 failed"


async def test_python_job_goes_on_when_a_worker_is_killed(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    items = [{"n": n, "die": n == 3, "marker": str(marker)} for n in range(12)]
    job = await create(
        api, {"kind": "python", "target": "progress_tasks:die_on", "items": items, "concurrency": 2}
    )
    final = await final_state(api, job["job_id"])
    assert marker.exists()
    assert final["status"] == "completed"
    assert final["progress"]["success"] == 11
    assert final["progress"]["errors"] == 1
    [sample] = final["error_samples"]
    assert sample["error"].startswith("WorkerCrashed:")
    assert '"n":3' in sample["item"]


async def test_python_job_cancel_mid_run_stops_workers_and_keeps_counters(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    job = await create(
        api,
        {
            "kind": "python",
            "target": "progress_tasks:wait_for_file",
            "items": hold_items(tmp_path, 8),
            "concurrency": 2,
        },
    )
    started = await wait_for_files(tmp_path / "started", "item.*", 2)
    pids = {int(path.read_text()) for path in started}
    response = await api.post(f"jobs/{job['job_id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    for pid in pids:
        await wait_until_dead(pid)
    again = await api.post(f"jobs/{job['job_id']}/cancel")
    assert again.status_code == 200
    (tmp_path / "go").touch()
    final = (await api.get(f"jobs/{job['job_id']}")).json()
    assert final["status"] == "cancelled"
    assert final["progress"]["processed"] == 0
    assert len(list((tmp_path / "started").glob("item.*"))) == 2


async def test_python_job_with_unknown_module_is_400(api: httpx.AsyncClient) -> None:
    body = await create(
        api, {"kind": "python", "target": "no_such_pkg.tasks:f", "items": [1]}, status=400
    )
    assert "no_such_pkg" in body["message"]
    assert (await api.get("jobs")).json()["jobs"] == []


async def test_python_job_with_missing_function_fails_with_reason(api: httpx.AsyncClient) -> None:
    job = await create(api, {"kind": "python", "target": "progress_tasks:nope", "items": [1, 2]})
    final = await final_state(api, job["job_id"])
    assert final["status"] == "failed"
    assert "progress_tasks:nope" in final["message"]
    assert "AttributeError" in final["message"]


async def test_python_job_with_no_items_completes(api: httpx.AsyncClient) -> None:
    job = await create(api, {"kind": "python", "target": "progress_tasks:square", "items": []})
    final = await final_state(api, job["job_id"])
    assert final["status"] == "completed"
    assert final["progress"]["total"] == 0


class TestThreadExecutorConfig:
    @pytest.fixture
    def progress_config(self) -> dict[str, Any]:
        return {"executor": "thread"}

    async def test_python_job_runs_on_threads_when_configured(self, api: httpx.AsyncClient) -> None:
        job = await create(
            api,
            {
                "kind": "python",
                "target": "progress_tasks:fail_on_odd",
                "items": list(range(9)),
                "concurrency": 3,
            },
        )
        assert job["details"]["executor"] == "thread"
        final = await final_state(api, job["job_id"])
        assert (final["status"], final["progress"]["success"], final["progress"]["errors"]) == (
            "completed",
            5,
            4,
        )


class TestCustomExecutorClass:
    @pytest.fixture
    def progress_config(self) -> dict[str, Any]:
        return {"executor_class": "progress_tasks.InlineExecutor", "executor": "thread"}

    async def test_executor_class_overrides_the_executor(self, api: httpx.AsyncClient) -> None:
        job = await create(
            api, {"kind": "python", "target": "progress_tasks:square", "items": [1, 2, 3]}
        )
        assert job["details"]["executor"] == "inline"
        final = await final_state(api, job["job_id"])
        assert (final["status"], final["progress"]["success"]) == ("completed", 3)


class TestDaskExecutorConfig:
    @pytest.fixture
    def progress_config(self, dask_cluster: Any) -> dict[str, Any]:
        return {"dask_address": dask_cluster.scheduler_address}

    async def test_python_job_runs_on_dask_by_configuration_alone(
        self, api: httpx.AsyncClient
    ) -> None:
        job = await create(
            api,
            {
                "kind": "python",
                "target": "progress_tasks:fail_on_odd",
                "items": list(range(30)),
                "concurrency": 4,
            },
        )
        assert job["details"]["executor"] == "dask"
        states = await events_until_final(api, job["job_id"])
        final = states[-1]
        assert (final["status"], final["progress"]["success"], final["progress"]["errors"]) == (
            "completed",
            15,
            15,
        )
        assert {"item": "5", "error": "ValueError: odd item 5"} in final["error_samples"]


# ----- notebook jobs ---------------------------------------------------------------------


async def test_notebook_job_injects_parameters_and_writes_the_executed_copy(
    api: httpx.AsyncClient, jp_root_dir: Path
) -> None:
    write_notebook(
        jp_root_dir / "reports" / "daily.ipynb",
        "total = sum(range(n))",
        "print(f'{day}: {total}')",
        parameters="day = 'never'\nn = 1",
    )
    job = await create(
        api,
        {
            "kind": "notebook",
            "path": "reports/daily.ipynb",
            "parameters": {"day": "2026-11-28", "n": 5},
        },
    )
    assert job["details"]["output_path"] == "reports/daily.executed.ipynb"
    states = await events_until_final(api, job["job_id"])
    final = states[-1]
    assert final["status"] == "completed", final
    assert final["progress"]["total"] == 4  # parameters, injected parameters, two cells
    assert final["progress"]["success"] == 4
    seen = {state["progress"]["processed"] for state in states}
    assert {1, 2, 3, 4} <= seen, "a broadcast after every cell"
    executed = nbformat.read(jp_root_dir / "reports" / "daily.executed.ipynb", as_version=4)
    assert executed.cells[1].metadata.tags == ["injected-parameters"]
    assert executed.metadata.language_info.name == "python"
    assert executed.cells[3].outputs[0]["text"] == "2026-11-28: 10\n"
    source = nbformat.read(jp_root_dir / "reports" / "daily.ipynb", as_version=4)
    assert len(source.cells) == 3 and not source.cells[2].outputs


async def test_notebook_job_fails_on_a_failing_cell_and_keeps_partial_output(
    api: httpx.AsyncClient, jp_root_dir: Path
) -> None:
    write_notebook(
        jp_root_dir / "broken.ipynb",
        "print('first')",
        "raise ValueError('boom')",
        "print('never')",
    )
    job = await create(
        api, {"kind": "notebook", "path": "broken.ipynb", "output_path": "out/broken-run.ipynb"}
    )
    final = await final_state(api, job["job_id"])
    assert final["status"] == "failed"
    assert final["progress"] == {
        "processed": 2,
        "total": 3,
        "success": 1,
        "errors": 1,
        "percentage": 66.7,
    }
    assert final["error_samples"] == [{"item": "cell 2", "error": "ValueError: boom"}]
    assert "cell 2" in final["message"]
    executed = nbformat.read(jp_root_dir / "out" / "broken-run.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "first\n"
    assert executed.cells[1].outputs[0]["ename"] == "ValueError"
    assert executed.cells[2].outputs == []
    assert final["details"]["output_path"] == "out/broken-run.ipynb"


@pytest.mark.parametrize(
    "body",
    [
        {"path": "../outside.ipynb"},
        {"path": "/etc/passwd.ipynb"},
        {"path": "inside.ipynb", "output_path": "../../escape.ipynb"},
        {"path": "inside.ipynb", "output_path": "/tmp/escape.ipynb"},
    ],
)
async def test_notebook_path_outside_the_root_dir_is_400(
    api: httpx.AsyncClient, jp_root_dir: Path, body: dict[str, str]
) -> None:
    write_notebook(jp_root_dir / "inside.ipynb", "1")
    write_notebook(jp_root_dir.parent / "outside.ipynb", "1")
    response = await create(api, {"kind": "notebook", **body}, status=400)
    assert "root directory" in response["message"]
    assert not Path("/tmp/escape.ipynb").exists()


async def test_notebook_missing_or_unreadable_is_400(
    api: httpx.AsyncClient, jp_root_dir: Path
) -> None:
    missing = await create(api, {"kind": "notebook", "path": "nope.ipynb"}, status=400)
    assert "no notebook" in missing["message"]
    (jp_root_dir / "bad.ipynb").write_text("{not json")
    bad = await create(api, {"kind": "notebook", "path": "bad.ipynb"}, status=400)
    assert "not a readable notebook" in bad["message"]
    assert json.dumps(bad).count("Traceback") == 0


async def test_notebook_job_cancel_stops_the_kernel(
    api: httpx.AsyncClient, jp_root_dir: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "kernel.pid"
    write_notebook(
        jp_root_dir / "slow.ipynb",
        f"import os, pathlib\npartial = pathlib.Path({str(pid_file)!r} + '.partial')\n"
        f"partial.write_text(str(os.getpid()))\npartial.rename({str(pid_file)!r})",
        "import time\nfor _ in range(600): time.sleep(0.1)",
        "print('never')",
    )
    job = await create(api, {"kind": "notebook", "path": "slow.ipynb"})
    await wait_for_files(tmp_path, "kernel.pid", 1, timeout=90)
    kernel_pid = int(pid_file.read_text())
    response = await api.post(f"jobs/{job['job_id']}/cancel")
    assert response.status_code == 202
    await wait_until_dead(kernel_pid)
    final = (await api.get(f"jobs/{job['job_id']}")).json()
    assert final["status"] == "cancelled"
    assert final["progress"]["processed"] <= 1


async def test_dask_job_goes_on_when_a_worker_process_is_killed(tmp_path: Path) -> None:
    """A real worker process dies mid-item: Dask restarts it and retries; no item is lost."""
    distributed = pytest.importorskip("distributed")
    marker = tmp_path / "killed"
    items = [{"n": n, "die": n == 4, "marker": str(marker)} for n in range(12)]
    async with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
        asynchronous=True,
    ) as cluster:  # fmt: skip
        executor = DaskExecutor(cluster.scheduler_address)
        results: Results = []
        try:
            await asyncio.wait_for(
                executor.run("w" * 32, "progress_tasks:die_on", items, 3, results.extend), 120
            )
        finally:
            await executor.shutdown()
    assert marker.exists(), "the item that kills its worker never ran"
    assert not pid_alive(int(marker.read_text()))
    errors = dict(results)
    assert sorted(errors) == list(range(12))
    assert all(error is None for error in errors.values()), errors
