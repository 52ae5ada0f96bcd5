"""Start a real jupyter server with the extension for a benchmark (shared by the scripts)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.server_process import ServerProcess


def start_server(*extra_args: str) -> ServerProcess:
    base = Path(tempfile.mkdtemp(prefix="jp-bench-"))
    server = ServerProcess(
        base / "root",
        base / "jobs.sqlite",
        extra_args=["--ServerApp.log_level=WARN", *extra_args],
    )
    server.start()
    return server
