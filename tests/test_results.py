"""Results and every failure of server-run jobs, and functions sent from a notebook.

``ResultStore`` on its own, then a real server: a child ``python`` script that submits a
function defined in its ``__main__`` (pickled by value) on worker processes and on a Dask
``LocalCluster`` of processes; 300 items with 150 failures through the Python API; the
byte limit; deletion with the job.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_progress.exceptions import JobStateConflict
from jupyter_progress.executors import TOO_LARGE, encode_result
from jupyter_progress.jobs import Job, submit
from jupyter_progress.results import ResultStore

from helpers.job_helpers import final_state

TESTS_DIR = Path(__file__).parent

# ----- the store on its own ----------------------------------------------------------------


def test_result_store_keeps_values_in_item_order_with_nulls_and_pages(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.sqlite", max_bytes=1000)
    store.open_job("a")
    for index in (4, 0, 2):
        assert store.add("a", index, json.dumps({"i": index})) is None
    store.add_failure("a", 1, {"x": 1}, "ValueError: one")
    first = store.results("a", total=5, offset=0, limit=3)
    assert first.entries == [{"i": 0}, None, {"i": 2}] and first.next_offset == 3
    rest = store.results("a", total=5, offset=3, limit=3)
    assert rest.entries == [None, {"i": 4}] and rest.next_offset is None
    failures = store.failures("a", offset=0, limit=10)
    assert failures.entries == [{"index": 1, "item": {"x": 1}, "error": "ValueError: one"}]
    store.close_job("a")
    store.close()
    reopened = ResultStore(tmp_path / "r.sqlite", max_bytes=1000)
    assert reopened.results("a", total=5, offset=0, limit=10).entries[4] == {"i": 4}
    assert reopened.prune(lambda job_id: False) == 1
    assert reopened.results("a", total=5, offset=0, limit=10).entries == [None] * 5
    assert reopened.failures("a", offset=0, limit=10).entries == []
    reopened.close()


def test_result_store_drops_a_jobs_values_past_the_limit_and_keeps_its_failures(
    tmp_path: Path,
) -> None:
    store = ResultStore(tmp_path / "r.sqlite", max_bytes=10)
    store.open_job("b")
    assert store.add("b", 0, '"12345"') is None
    store.flush()
    message = store.add("b", 1, '"67890"')
    assert message is not None and "max_result_bytes" in message
    assert store.add("b", 2, "1") is None  # said once; nothing more is kept
    store.add_failure("b", 3, 3, "ValueError: x")
    with pytest.raises(JobStateConflict, match="max_result_bytes"):
        store.results("b", total=4, offset=0, limit=10)
    assert len(store.failures("b", offset=0, limit=10).entries) == 1
    store.open_job("b")  # the id taken again: a fresh start
    assert store.results("b", total=1, offset=0, limit=10).entries == [None]
    store.open_job("c")
    assert store.add("c", 0, TOO_LARGE) is not None  # one value alone over the limit
    store.close()


def test_encode_result_is_json_text_or_repr_and_too_large_past_the_limit() -> None:
    assert encode_result({"a": [1, 2.5]}, 100) == '{"a":[1,2.5]}'
    assert encode_result(None, 100) is None
    assert encode_result(float("nan"), 100) == '"nan"'
    assert json.loads(encode_result({1, 2}, 100) or "") in ("{1, 2}", "{2, 1}")
    assert encode_result("x" * 50, 10) == TOO_LARGE


# ----- through a real server ---------------------------------------------------------------


@pytest.fixture
def server_env(
    api: httpx.AsyncClient,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The server's URL and token in the environment, for this process and its children."""
    env = {
        "JUPYTER_PROGRESS_URL": f"http://127.0.0.1:{jp_http_port}{jp_base_url}",
        "JUPYTER_PROGRESS_TOKEN": jp_auth_header["Authorization"].split()[1],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **env}


SCRIPT = """
import json, math
from jupyter_progress import submit

OFFSET = 100

def transform(item):
    if item == 3:
        raise ValueError("three")
    return {"item": item, "value": math.isqrt(item) + OFFSET}

job = submit(transform, range(10), concurrency=2)
job.wait(timeout=180)
print(json.dumps({
    "status": job.status,
    "target": job.details["target"],
    "executor": job.details["executor"],
    "results": job.results(),
    "failures": job.failures(),
}))
"""


async def run_script(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    script = tmp_path / "submit_from_main.py"
    script.write_text(textwrap.dedent(SCRIPT))
    child_env = {key: value for key, value in env.items() if key != "PYTHONPATH"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=tmp_path,  # nothing of the tests is importable: the function must travel
        env=child_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


def expected_results() -> list[Any]:
    import math

    return [
        None if item == 3 else {"item": item, "value": math.isqrt(item) + 100} for item in range(10)
    ]


async def test_a_script_submits_a_function_from_main_to_worker_processes(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    outcome = await run_script(tmp_path, server_env)
    assert outcome["status"] == "completed"
    assert outcome["executor"] == "process"
    assert outcome["target"] == "(a pickled function)"
    assert outcome["results"] == expected_results()
    assert outcome["failures"] == [{"index": 3, "item": 3, "error": "ValueError: three"}]


@pytest.fixture(scope="module")
def process_cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
    )
    try:
        yield cluster
    finally:
        cluster.close()


class TestOnDask:
    @pytest.fixture
    def progress_config(self, process_cluster: Any) -> dict[str, Any]:
        return {"dask_address": process_cluster.scheduler_address}

    async def test_a_script_submits_a_function_from_main_to_a_dask_cluster(
        self, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        outcome = await run_script(tmp_path, server_env)
        assert outcome["status"] == "completed"
        assert outcome["executor"] == "dask"
        assert outcome["results"] == expected_results()
        assert outcome["failures"] == [{"index": 3, "item": 3, "error": "ValueError: three"}]


async def test_every_failure_is_listed_results_hold_null_and_retry_runs_exactly_those(
    server_env: dict[str, str], api: httpx.AsyncClient, progress_app: Any
) -> None:
    job = await asyncio.to_thread(
        submit, "progress_tasks:fail_on_odd", range(300), concurrency=4, name="half fail"
    )
    await job.wait_async(timeout=180)
    assert (job.progress["success"], job.progress["errors"]) == (150, 150)
    assert len(job.error_samples) < 150  # samples are bounded; failures are not
    failures = await asyncio.to_thread(job.failures)
    assert [f["index"] for f in failures] == list(range(1, 300, 2))
    assert all(f["item"] == f["index"] for f in failures)
    assert failures[0]["error"] == "ValueError: odd item 1"
    results = await asyncio.to_thread(job.results)
    assert results == [None if item % 2 else item for item in range(300)]
    page = (await api.get(f"jobs/{job.job_id}/failures", params={"offset": 140})).json()
    assert [f["index"] for f in page["failures"]] == list(range(281, 300, 2))
    assert page["next_offset"] is None
    paged = (await api.get(f"jobs/{job.job_id}/results", params={"limit": 7})).json()
    assert paged == {"results": [0, None, 2, None, 4, None, 6], "next_offset": 7}

    retry = await asyncio.to_thread(job.retry_failed)
    await retry.wait_async(timeout=180)
    assert retry.name == "half fail (retry)"
    assert retry.progress["total"] == 150
    assert (retry.progress["success"], retry.progress["errors"]) == (0, 150)
    again = await asyncio.to_thread(retry.failures)
    assert [f["item"] for f in again] == list(range(1, 300, 2))

    attached = await asyncio.to_thread(Job.attach, job.job_id)
    assert attached.details["target"] == "progress_tasks:fail_on_odd"
    assert (await api.delete(f"jobs/{job.job_id}")).status_code == 204
    assert progress_app.results.failures(job.job_id, offset=0, limit=10).entries == []
    assert (await api.get(f"jobs/{job.job_id}/failures")).status_code == 404


@pytest.mark.parametrize("query", ["offset=-1", "limit=0", "limit=10001", "offset=x", "limit=1.5"])
async def test_bad_paging_is_400(api: httpx.AsyncClient, query: str) -> None:
    response = await api.post("jobs", json={"kind": "reported", "name": "r"})
    job_id = response.json()["job_id"]
    for what in ("results", "failures"):
        answer = await api.get(f"jobs/{job_id}/{what}?{query}")
        assert answer.status_code == 400, answer.text
        assert "message" in answer.json()


class TestResultLimit:
    @pytest.fixture
    def progress_config(self) -> dict[str, Any]:
        return {"max_result_bytes": 1000}

    async def test_results_past_the_limit_stop_cleanly_and_the_job_goes_on(
        self, api: httpx.AsyncClient
    ) -> None:
        body = {"kind": "python", "target": "progress_tasks:square", "items": list(range(600))}
        created = await api.post("jobs", json=body)
        job_id = created.json()["job_id"]
        final = await final_state(api, job_id)
        assert final["status"] == "completed"
        assert final["progress"]["success"] == 600
        assert "max_result_bytes" in final["details"]["results_dropped"]
        response = await api.get(f"jobs/{job_id}/results")
        assert response.status_code == 409
        assert "max_result_bytes" in response.json()["message"]
        assert (await api.get(f"jobs/{job_id}/failures")).json()["failures"] == []
