"""A real ``jupyter server`` in a subprocess on 127.0.0.1, for tests that need one outside
the test's own event loop (blocking clients, kill -9, restarts)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """Starts, kills and restarts one Jupyter server with the extension."""

    def __init__(self, root_dir: Path, db_path: Path, *, extra_args: list[str] | None = None):
        self.root_dir = root_dir
        self.db_path = db_path
        self.extra_args = extra_args or []
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        return self.url + "jupyter-progress/api/"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until it answers; returns the monotonic time it was started."""
        self.root_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "JUPYTER_PLATFORM_DIRS": "1"}
        env.pop("JUPYTER_PROGRESS_URL", None)
        command = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--IdentityProvider.token={self.token}",
            f"--JupyterProgress.db_path={self.db_path}",
            *self.extra_args,
        ]
        started = time.monotonic()
        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                response = httpx.get(
                    self.api_url + "jobs", headers=self.headers, timeout=1, trust_env=False
                )
                if response.status_code == 200:
                    return started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """``kill -9``: no cleanup, no flush."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers=self.headers, timeout=10, trust_env=False
        )


@contextlib.contextmanager
def running_server(base: Path, *, extra_args: list[str] | None = None) -> Iterator[ServerProcess]:
    """A started server in ``base`` (root dir and SQLite file inside), stopped afterwards."""
    server = ServerProcess(base / "root", base / "jobs.sqlite", extra_args=extra_args)
    server.start()
    try:
        yield server
    finally:
        server.stop()
