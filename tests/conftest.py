"""Shared fixtures: a real Jupyter server (pytest-jupyter) with the extension enabled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

TESTS_DIR = Path(__file__).parent


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "jobs.sqlite"


@pytest.fixture
def progress_config() -> dict[str, Any]:
    """Extra ``c.JupyterProgress`` settings; override in a test module to change them."""
    return {}


@pytest.fixture
def jp_server_config(db_path: Path, progress_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_progress": True}},
        "JupyterProgress": {"db_path": str(db_path), **progress_config},
    }


@pytest.fixture
def progress_app(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """The running extension, with its background tasks started like a real server does."""
    point = jp_serverapp.extension_manager.extension_points["jupyter_progress"]
    app = point.app
    jp_asyncio_loop.run_until_complete(app._start_jupyter_server_extension(jp_serverapp))
    return app


@pytest.fixture
def api_url(jp_http_port: int, jp_base_url: str) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}jupyter-progress/api/"


@pytest.fixture
def api(
    http_server: Any,
    progress_app: Any,
    api_url: str,
    jp_auth_header: dict[str, str],
    jp_asyncio_loop: Any,
) -> Any:
    """An async httpx client to the real server over loopback HTTP, authenticated."""
    client = httpx.AsyncClient(
        base_url=api_url, headers=jp_auth_header, timeout=10, trust_env=False
    )
    yield client
    jp_asyncio_loop.run_until_complete(client.aclose())


@pytest.fixture
def server_env(
    api: httpx.AsyncClient,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """``JUPYTER_PROGRESS_URL``/``TOKEN`` pointing at the test server, as a user would set."""
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    monkeypatch.setenv("JUPYTER_PROGRESS_URL", url)
    monkeypatch.setenv("JUPYTER_PROGRESS_TOKEN", jp_auth_header["Authorization"].split()[1])
    return url
