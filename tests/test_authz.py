"""Fine-grained authorization: a server-run job needs the right to run code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jupyter_server.auth.authorizer import Authorizer


class NoKernels(Authorizer):
    """Allows everything but running kernels (like a read-mostly JupyterHub role)."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "kernels" and action == "execute")


class ReadOnly(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action == "read"


@pytest.fixture(params=["no-kernels", "read-only"])
def jp_server_config(request: pytest.FixtureRequest, db_path: Any) -> dict[str, Any]:
    authorizer = NoKernels if request.param == "no-kernels" else ReadOnly
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_progress": True},
            "authorizer_class": authorizer,
        },
        "JupyterProgress": {"db_path": str(db_path)},
    }


async def test_server_run_jobs_need_execute_on_kernels(
    api: httpx.AsyncClient, jp_server_config: dict[str, Any]
) -> None:
    python_job = {"kind": "python", "target": "math:sqrt", "items": [1, 4]}
    refused = await api.post("jobs", json=python_job)
    assert refused.status_code == 403
    assert refused.json()["message"]
    reported = await api.post("jobs", json={"kind": "reported", "name": "x"})
    read_only = jp_server_config["ServerApp"]["authorizer_class"] is ReadOnly
    assert reported.status_code == (403 if read_only else 201)
    assert (await api.get("jobs")).status_code == 200
    listed = (await api.get("jobs")).json()["jobs"]
    assert all(job["kind"] == "reported" for job in listed)
