"""An async authorizer (jupyter_server awaits every ``is_authorized``) is obeyed too.

A coroutine that is never awaited is truthy: without awaiting it, the check that a
server-run job needs ``execute`` on ``kernels`` would let everything through.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from jupyter_server.auth.authorizer import Authorizer


class AsyncNoKernels(Authorizer):
    """Allows everything but running kernels, and answers asynchronously."""

    async def is_authorized(  # type: ignore[override]
        self, handler: Any, user: Any, action: str, resource: str
    ) -> bool:
        await asyncio.sleep(0)
        return not (resource == "kernels" and action == "execute")


@pytest.fixture
def jp_server_config(db_path: Any) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_progress": True},
            "authorizer_class": AsyncNoKernels,
        },
        "JupyterProgress": {"db_path": str(db_path)},
    }


async def test_an_async_authorizer_refuses_server_run_jobs(api: httpx.AsyncClient) -> None:
    for body in (
        {"kind": "python", "target": "math:sqrt", "items": [1, 4]},
        {"kind": "notebook", "path": "missing.ipynb"},
    ):
        refused = await api.post("jobs", json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"]
    reported = await api.post("jobs", json={"kind": "reported", "name": "x"})
    assert reported.status_code == 201
    listed = (await api.get("jobs")).json()["jobs"]
    assert [job["kind"] for job in listed] == ["reported"]
