"""``jupyter_progress.tqdm`` in real kernels: a nested loop is one output; ``%load_ext``;
``c.JupyterProgress.patch_tqdm_in_kernels`` in a kernel the server starts (as JupyterLab
starts them, through ``POST /api/kernels``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.blocking import BlockingKernelClient
from nbclient import NotebookClient

from jupyter_progress.widget import JOB_MIMETYPE

from helpers.server_process import ServerProcess, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("tqdm-kernel-server")) as live:
        yield live


def execute(cells: list[str], tmp_path: Path) -> list[list[dict[str, Any]]]:
    """Run ``cells`` in a fresh kernel; each cell's outputs."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        store_widget_state=False,
    ).execute()
    return [list(cell.outputs) for cell in notebook.cells]


def job_outputs(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in outputs if JOB_MIMETYPE in o.get("data", {})]


@pytest.mark.timeout(240)
def test_a_nested_loop_in_a_kernel_is_one_output(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PROGRESS_URL", server.url)
    monkeypatch.setenv("JUPYTER_PROGRESS_TOKEN", server.token)
    loop, flush = execute(
        [
            "from jupyter_progress import tqdm\n"
            "inner_ids = []\n"
            "outer = tqdm(range(3), desc='epochs')\n"
            "for epoch in outer:\n"
            "    inner = tqdm(range(4), desc=f'batches {epoch}')\n"
            "    for batch in inner:\n"
            "        pass\n"
            "    inner_ids.append(inner.job_id)",
            "from jupyter_progress.tracking import flush\n"
            "assert flush(20)\n"
            "print(outer.job_id, *inner_ids)",
        ],
        tmp_path,
    )
    (shown,) = job_outputs(loop)  # exactly one output with the job mimetype
    assert not [o for o in loop if o["output_type"] == "stream"], loop  # and no text bars
    outer_id, *inner_ids = flush[-1]["text"].split()
    assert shown["data"][JOB_MIMETYPE]["job_id"] == outer_id
    assert shown["data"][JOB_MIMETYPE]["job"]["status"] == "completed"
    with server.client() as http:
        children = http.get("jobs", params={"parent": outer_id}).json()["jobs"]
        outer = http.get(f"jobs/{outer_id}").json()
    assert sorted(child["job_id"] for child in children) == sorted(inner_ids)
    assert outer["status"] == "completed" and outer["progress"]["processed"] == 3


@pytest.mark.timeout(240)
def test_load_ext_patches_tqdm_auto(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PROGRESS_URL", server.url)
    monkeypatch.setenv("JUPYTER_PROGRESS_TOKEN", server.token)
    _, loop = execute(
        [
            "%load_ext jupyter_progress",
            "from tqdm.auto import tqdm\nfor _ in tqdm(range(5), desc='auto in a kernel'):\n"
            "    pass",
        ],
        tmp_path,
    )
    (shown,) = job_outputs(loop)
    assert shown["data"][JOB_MIMETYPE]["job"]["name"] == "auto in a kernel"
    assert not [o for o in loop if o["output_type"] == "stream"]


@pytest.fixture
def patching_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    connections = tmp_path / "connections"
    connections.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(connections))  # kernels' connection files
    args = ["--JupyterProgress.patch_tqdm_in_kernels=True"]
    with running_server(tmp_path, extra_args=args) as live:
        yield live


@pytest.mark.timeout(240)
def test_patch_tqdm_in_kernels_reaches_kernels_the_server_starts(
    patching_server: ServerProcess, tmp_path: Path
) -> None:
    server = patching_server
    with server.client() as http:
        base = server.url + "api/kernels"
        kernel = http.post(base, json={"name": "python3"}).json()
        try:
            client = BlockingKernelClient()
            client.load_connection_file(
                str(tmp_path / "connections" / f"kernel-{kernel['id']}.json")
            )
            client.start_channels()
            try:
                client.wait_for_ready(timeout=60)
                texts: list[str] = []
                client.execute_interactive(
                    "import tqdm.auto, jupyter_progress\n"
                    "print(tqdm.auto.tqdm is jupyter_progress.tqdm)",
                    timeout=60,
                    output_hook=lambda m: texts.append(m["content"].get("text", "")),
                )
            finally:
                client.stop_channels()
        finally:
            http.delete(f"{base}/{kernel['id']}")
            time.sleep(0.2)
    assert "True" in "".join(texts)
