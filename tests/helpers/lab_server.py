"""A real ``jupyter lab`` in a subprocess, for the browser tests and the browser benchmarks.

Everything lives in one temp folder: root dir, job store, settings, workspaces, runtime and
config dir. Its ``labconfig/page_config.json`` says whether this package's JupyterLab
extension runs: disabled, outputs render with the anywidget front end; enabled, the lab
extension's MIME renderer takes precedence.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .server_process import free_port

API = "jupyter-progress/api/"


@dataclass
class LabServer:
    """A running ``jupyter lab`` and helpers to drive jobs on it from the test."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    page_config: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.url + API,
            headers={"Authorization": f"token {self.token}"},
            timeout=10,
        )

    # ----- jobs, from outside the page (like a script or CI would report them) -------------

    def create_job(self, name: str, total: int | None = None, **fields: Any) -> dict[str, Any]:
        """A ``reported`` job; ``fields``: parent_id, unit, unit_scale, leave …"""
        body = {"kind": "reported", "name": name, "total": total, **fields}
        response = self.client.post("jobs", json=body)
        response.raise_for_status()
        return response.json()

    def create_finished_jobs(self, names: list[str], workers: int = 8) -> list[str]:
        """Many completed jobs at once, through the public API from several clients (a
        history to page through); returns their ids in the order of ``names``."""

        def one(client: httpx.Client, name: str) -> str:
            created = client.post("jobs", json={"kind": "reported", "name": name, "total": 1})
            created.raise_for_status()
            job_id = str(created.json()["job_id"])
            finish = {"success": 1, "status": "completed"}
            done = client.post(f"jobs/{job_id}/progress", json=finish)
            done.raise_for_status()
            return job_id

        clients = [
            httpx.Client(base_url=self.url + API, headers=dict(self.client.headers), timeout=30)
            for _ in range(workers)
        ]
        try:
            with ThreadPoolExecutor(workers) as pool:
                futures = [
                    pool.submit(one, clients[index % workers], name)
                    for index, name in enumerate(names)
                ]
                return [future.result() for future in futures]
        finally:
            for client in clients:
                client.close()

    def forget_all_jobs(self) -> None:
        """Start from a clean server: cancel what runs, then forget every finished job."""
        running = self.client.get(
            "jobs", params={"status": ["pending", "processing"], "limit": 1000}
        ).json()["jobs"]
        for job in running:
            self.client.post(f"jobs/{job['job_id']}/cancel")
        self.client.delete("jobs", params={"status": "finished"}).raise_for_status()

    def report(self, job_id: str, **fields: Any) -> dict[str, Any]:
        response = self.client.post(f"jobs/{job_id}/progress", json=fields)
        response.raise_for_status()
        return response.json()

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"jobs/{job_id}")
        response.raise_for_status()
        return response.json()

    # ----- notebooks ----------------------------------------------------------------------

    def write_notebook(self, cells: list[str], name: str | None = None) -> str:
        name = name or f"nb-{uuid.uuid4().hex[:8]}.ipynb"
        notebook = {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": uuid.uuid4().hex[:8],
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
                for source in cells
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root / name).write_text(json.dumps(notebook))
        return name

    def lab_url(self, notebook: str) -> str:
        return f"{self.url}lab/tree/{notebook}?reset&token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        return f"{self.url}notebooks/{notebook}?token={self.token}"

    # ----- the page's configuration ---------------------------------------------------------

    def set_lab_extension_enabled(self, enabled: bool) -> None:
        """Takes effect on the next page load (the server reads the file per page)."""
        write_page_config(self.page_config, lab_extension_enabled=enabled)


def write_page_config(path: Path, *, lab_extension_enabled: bool) -> None:
    disabled = {} if lab_extension_enabled else {"jupyter-progress": True}
    path.write_text(json.dumps({"disabledExtensions": disabled}))


def _wait_ready(server: LabServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited:\n{server.log_path.read_text()[-3000:]}")
        try:
            response = httpx.get(f"{server.url}api/status", params={"token": server.token})
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"jupyter lab not ready:\n{server.log_path.read_text()[-3000:]}")


@contextlib.contextmanager
def run_lab_server(base: Path, *, lab_extension_enabled: bool = False) -> Iterator[LabServer]:
    """Start ``jupyter lab`` in ``base``, wait until it answers; stop it on exit."""
    root, settings, workspaces, runtime, config = (
        base / name for name in ("root", "settings", "workspaces", "runtime", "config")
    )
    for folder in (root, settings, workspaces, runtime, config / "labconfig"):
        folder.mkdir(parents=True)
    (settings / "overrides.json").write_text(
        json.dumps(
            {
                "@jupyterlab/apputils-extension:notification": {
                    "fetchNews": "false",
                    "checkForUpdates": False,
                }
            }
        )
    )
    page_config = config / "labconfig" / "page_config.json"
    write_page_config(page_config, lab_extension_enabled=lab_extension_enabled)
    port = free_port()
    token = secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ)
    env.update(
        JUPYTER_PROGRESS_URL=url,
        JUPYTER_PROGRESS_TOKEN=token,
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_CONFIG_DIR=str(config),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    log_path = base / "lab.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--JupyterProgress.db_path={base / 'jobs.sqlite'}",
            f"--LabApp.app_settings_dir={settings}",
            f"--LabApp.workspaces_dir={workspaces}",
            "--LabApp.expose_app_in_browser=True",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = LabServer(
        url=url,
        token=token,
        root=root,
        process=process,
        log_path=log_path,
        page_config=page_config,
    )
    try:
        _wait_ready(server)
        yield server
    finally:
        server.client.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
