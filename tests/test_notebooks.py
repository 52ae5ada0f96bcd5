"""The example notebooks in notebooks/ run top to bottom in a real kernel against a real
server, and leave the jobs they promise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.server_process import ServerProcess, running_server

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("notebook-server")) as process:
        yield process


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_example_notebook_runs(
    path: Path, server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PROGRESS_URL", server.url)
    monkeypatch.setenv("JUPYTER_PROGRESS_TOKEN", server.token)
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "notebooks are committed without outputs"
    )
    NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        store_widget_state=False,
    ).execute()
    with server.client() as http:
        jobs = {job["name"]: job for job in http.get("jobs").json()["jobs"]}
    if path.name == "demo.ipynb":
        assert jobs["convert files"]["status"] == "completed"
        assert jobs["convert files"]["progress"]["processed"] == 40
        api = jobs["call an API per row"]
        assert (api["status"], api["progress"]["success"], api["progress"]["errors"]) == (
            "completed",
            27,
            3,
        )
        epochs = jobs["epochs"]
        assert (epochs["status"], epochs["progress"]["processed"]) == ("completed", 3)
        assert "batches" not in jobs, "nested bars are children, not top-level jobs"
        cubes = jobs["cubes"]
        assert (cubes["status"], cubes["progress"]["success"]) == ("completed", 10)
        squares = jobs["squares"]
        assert squares["status"] == "completed"
        assert squares["progress"]["processed"] == 24
        assert squares["progress"]["errors"] == 3
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
