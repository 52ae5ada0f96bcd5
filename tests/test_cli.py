"""``jupyter progress`` as a user runs it: a subprocess against a real server subprocess.

The server writes its runtime file into a temporary ``JUPYTER_RUNTIME_DIR``, so the CLI
finds it the way ``jupyter server list`` does, without ``--url``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from helpers.job_helpers import hold_items, write_notebook
from helpers.server_process import ServerProcess

TESTS_DIR = Path(__file__).parent
BIN = Path(sys.executable).parent
CLI = str(BIN / "jupyter-progress")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("cli")
    runtime = base / "runtime"
    saved = {key: os.environ.get(key) for key in ("JUPYTER_RUNTIME_DIR", "PYTHONPATH")}
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), saved["PYTHONPATH"]]))
    process = ServerProcess(base / "root", base / "state" / "jobs.sqlite")
    try:
        process.start()
        deadline = time.monotonic() + 30
        while not list(runtime.glob("jpserver-*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield process
    finally:
        process.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def env(server: ServerProcess) -> dict[str, str]:
    """The CLI's environment: no URL given, the server's runtime dir to discover it."""
    environment = dict(os.environ)
    environment.pop("JUPYTER_PROGRESS_URL", None)
    environment.pop("JUPYTER_PROGRESS_TOKEN", None)
    environment["COLUMNS"] = "100"
    return environment


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def create_held_job(api: httpx.Client, tmp_path: Path, name: str, count: int = 5) -> str:
    response = api.post(
        "jobs",
        json={"kind": "python", "name": name, "target": "progress_tasks:wait_for_file",
              "items": hold_items(tmp_path, count), "concurrency": 2},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["job_id"])


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jupyter progress: error:")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_list_finds_the_server_like_jupyter_server_list(
    env: dict[str, str], api: httpx.Client
) -> None:
    api.post("jobs", json={"kind": "reported", "name": "listed job", "total": 10})
    result = cli(env, "list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "PROGRESS", "ERRORS", "KIND", "NAME"]
    assert any(row.endswith("listed job") and "processing" in row for row in rows)


def test_jupyter_progress_subcommand_dispatches(env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(BIN / "jupyter"), "progress", "list", "--json"],
        env={**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().startswith("[")


def test_watch_follows_a_live_job_until_it_completes(
    env: dict[str, str], api: httpx.Client, tmp_path: Path
) -> None:
    job_id = create_held_job(api, tmp_path, "held job")
    watcher = subprocess.Popen(
        [CLI, "watch", job_id[:10]], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: len(list((tmp_path / "started").glob("item.*"))) >= 2, "items to start")
        assert watcher.poll() is None, "watch must not end while the job runs"
        (tmp_path / "go").touch()
        stdout, stderr = watcher.communicate(timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, stderr
    assert "held job: completed, 5 succeeded, 0 failed" in stdout
    assert "5/5" in stderr  # the tqdm bar's last state
    assert "Traceback" not in stderr


def test_watch_exits_non_zero_when_the_job_is_cancelled(
    env: dict[str, str], api: httpx.Client, tmp_path: Path
) -> None:
    job_id = create_held_job(api, tmp_path, "to cancel")
    watcher = subprocess.Popen(
        [CLI, "watch", job_id], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: len(list((tmp_path / "started").glob("item.*"))) >= 2, "items to start")
        cancelled = cli(env, "cancel", job_id[:12])
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.startswith("to cancel: cancelled")
        stdout, _ = watcher.communicate(timeout=120)
    finally:
        (tmp_path / "go").touch()
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 1
    assert "to cancel: cancelled" in stdout


def test_run_notebook_with_parameters_watches_to_the_end(
    env: dict[str, str], server: ServerProcess
) -> None:
    write_notebook(
        server.root_dir / "cli" / "report.ipynb",
        "print(f'{day}: {n * 2}')",
        parameters="day = 'x'\nn = 0",
    )
    result = cli(env, "run", "cli/report.ipynb", "-p", "n", "21", "-r", "day", "2026-11-28")
    assert result.returncode == 0, result.stderr
    assert "report.ipynb: completed, 3 succeeded, 0 failed" in result.stdout
    assert "cli/report.executed.ipynb" in result.stdout
    executed = nbformat.read(server.root_dir / "cli" / "report.executed.ipynb", as_version=4)
    assert executed.cells[2].outputs[0]["text"] == "2026-11-28: 42\n"


def test_run_failing_notebook_exits_1_and_shows_the_cell_error(
    env: dict[str, str], server: ServerProcess
) -> None:
    path = write_notebook(server.root_dir / "cli" / "fails.ipynb", "raise ValueError('boom')")
    result = cli(env, "run", str(path), "-o", str(server.root_dir / "cli" / "fails-out.ipynb"))
    assert result.returncode == 1, result.stderr
    assert "fails.ipynb: failed" in result.stdout
    assert "cell 1: ValueError: boom" in result.stdout
    assert (server.root_dir / "cli" / "fails-out.ipynb").exists()
    assert "Traceback" not in result.stderr


def test_unknown_job_is_a_one_line_error(env: dict[str, str]) -> None:
    assert_one_line_error(cli(env, "watch", "ffffffffffff"), "no job matches 'ffffffffffff'")
    assert_one_line_error(cli(env, "cancel", "f" * 32), "no job matches")


def test_cancel_of_a_finished_job_is_a_one_line_error(
    env: dict[str, str], api: httpx.Client
) -> None:
    job = api.post("jobs", json={"kind": "reported", "name": "done", "total": 1}).json()
    api.post(f"jobs/{job['job_id']}/progress", json={"success": 1, "status": "completed"})
    assert_one_line_error(cli(env, "cancel", job["job_id"]), "409", "completed")


def test_notebook_outside_the_root_is_a_one_line_error(env: dict[str, str]) -> None:
    assert_one_line_error(cli(env, "run", "../../etc/x.ipynb"), "400", "root directory")


def test_unreachable_server_and_bad_token_are_one_line_errors(
    env: dict[str, str], server: ServerProcess
) -> None:
    assert_one_line_error(cli(env, "--url", "http://127.0.0.1:9/", "list"), "cannot talk to")
    assert_one_line_error(
        cli(env, "list", "--url", server.url, "--token", "wrong"), "the server refused (403)"
    )


def test_no_server_found_is_a_one_line_error(env: dict[str, str], tmp_path: Path) -> None:
    result = cli({**env, "JUPYTER_RUNTIME_DIR": str(tmp_path)}, "list")
    assert_one_line_error(result, "no running Jupyter server found")


def test_list_limit_status_search_and_all_pages_through(
    env: dict[str, str], api: httpx.Client
) -> None:
    ids = []
    for number in range(7):
        job = api.post("jobs", json={"kind": "reported", "name": f"paged {number}"}).json()
        if number % 2:
            api.post(f"jobs/{job['job_id']}/progress", json={"status": "failed"})
        ids.append(job["job_id"])
    result = cli(env, "list", "--search", "PAGED", "--limit", "3")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    assert [row.split()[-1] for row in rows] == ["6", "5", "4"]
    assert "--all" in result.stderr  # says there are more
    every = cli(env, "list", "--search", "paged", "--all", "--limit", "2", "--json")
    assert every.returncode == 0, every.stderr
    assert [job["job_id"] for job in json.loads(every.stdout)] == ids[::-1]
    failed = cli(env, "list", "--search", "paged", "--status", "failed", "--json")
    assert [job["name"] for job in json.loads(failed.stdout)] == ["paged 5", "paged 3", "paged 1"]
    both = cli(env, "list", "--search", "paged", "--status", "finished", "--status", "processing")
    assert len(both.stdout.splitlines()) == 8
    assert_one_line_error(cli(env, "list", "--limit", "0"), "--limit")
