"""Browser fixtures: a real ``jupyter lab`` subprocess and headless Debian Chromium.

One server per test module (started in a temp root with its own job store, settings,
workspaces and runtime dir, on a free port), one browser per module, a fresh context
and page per test. The lab extension of this package is disabled on this server (a
temp ``labconfig/page_config.json``) so the outputs render with the anywidget front end
under test, not the JupyterLab MIME renderer, which takes precedence where installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API = "jupyter-progress/api/"
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LabServer:
    """A running ``jupyter lab`` and helpers to drive jobs on it from the test."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.url + API,
            headers={"Authorization": f"token {self.token}"},
            timeout=10,
        )

    # ----- jobs, from outside the page (like a script or CI would report them) -------------

    def create_job(self, name: str, total: int | None = None) -> dict[str, Any]:
        response = self.client.post("jobs", json={"kind": "reported", "name": name, "total": total})
        response.raise_for_status()
        return response.json()

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


@pytest.fixture(scope="module")
def lab_extension_enabled() -> bool:
    """Whether this package's JupyterLab extension runs on the module's server (override in a
    test module: the lab extension's tests return True)."""
    return False


@pytest.fixture(scope="module")
def lab_server(
    tmp_path_factory: pytest.TempPathFactory, lab_extension_enabled: bool
) -> Iterator[LabServer]:
    with run_lab_server(
        tmp_path_factory.mktemp("lab"), lab_extension_enabled=lab_extension_enabled
    ) as server:
        yield server


@contextlib.contextmanager
def run_lab_server(base: Path, *, lab_extension_enabled: bool = False) -> Iterator[LabServer]:
    """Start ``jupyter lab`` in ``base`` (also used by ``benchmarks/page_requests.py``)."""
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
    disabled = {} if lab_extension_enabled else {"jupyter-progress": True}
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": disabled})
    )
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
    server = LabServer(url=url, token=token, root=root, process=process, log_path=log_path)
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=CHROMIUM_ARGS,
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


# pytest-jupyter's autouse cleanup runs on an asyncio loop of its own; Playwright's sync
# API keeps its loop current in this thread. These tests use no in-process server, so
# the plugin's loop and cleanup are replaced by no-ops here.
@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None
