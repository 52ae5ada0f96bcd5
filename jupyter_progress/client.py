"""Talk to a Jupyter server's jupyter-progress API from a kernel, a script or the CLI.

Finding the server, in this order:

1. ``JUPYTER_PROGRESS_URL`` (the server's base URL) and ``JUPYTER_PROGRESS_TOKEN``;
2. the server that started this kernel (its pid is our parent's, in Jupyter's runtime
   ``jpserver-*.json`` files);
3. the only running server.

Exceptions::

    ProgressClientError
    ├── ServerNotFound     no server to talk to
    └── ProgressAPIError   the server answered with an error status (``.status``)

Network failures surface as ``httpx.HTTPError``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API_PATH = "jupyter-progress/api/"
STREAM_READ_TIMEOUT = 40.0  # > the server's 15 s ping, so a dead stream is noticed
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class ProgressClientError(Exception):
    """Base of the client's errors."""


class ServerNotFound(ProgressClientError):
    """No running Jupyter server could be found."""


class ProgressAPIError(ProgressClientError):
    """The server refused a request; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ServerInfo:
    """Where a server is and how to authenticate to it."""

    url: str
    token: str = ""

    @property
    def api_url(self) -> str:
        return self.url.rstrip("/") + "/" + API_PATH

    @property
    def verify_tls(self) -> bool:
        """Certificates matter only over https; skipping their loading saves ~80 ms."""
        return self.url.startswith("https:")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_servers(runtime_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The live servers listed in Jupyter's runtime dir, newest first."""
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    found = []
    for path in sorted(
        Path(runtime_dir).glob("jpserver-*.json"), key=lambda p: p.stat().st_mtime, reverse=True
    ):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("url") and _pid_alive(info.get("pid")):
            found.append(info)
    return found


def find_server(
    *, url: str | None = None, token: str | None = None, runtime_dir: str | Path | None = None
) -> ServerInfo | None:
    """The server to report to, or ``None`` (see the module docstring for the order)."""
    url = url or os.environ.get("JUPYTER_PROGRESS_URL")
    if url:
        return ServerInfo(
            url, token if token is not None else os.environ.get("JUPYTER_PROGRESS_TOKEN", "")
        )
    try:
        servers = running_servers(runtime_dir)
    except Exception:
        return None
    parent = os.getppid()
    chosen = next((s for s in servers if s.get("pid") == parent), None)
    if chosen is None and len(servers) == 1:
        chosen = servers[0]
    if chosen is None:
        return None
    return ServerInfo(str(chosen["url"]), token if token is not None else chosen.get("token", ""))


def _raise_for_status(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json().get("message") or response.reason_phrase
        except ValueError:
            message = response.reason_phrase
        raise ProgressAPIError(response.status_code, str(message))
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


@dataclass(frozen=True)
class StreamEvent:
    """One event read from the stream: ``job_updated`` or ``job_removed``."""

    event_id: int | None
    type: str
    data: dict[str, Any]


class SSEParser:
    """Turns the lines of an event stream into ``StreamEvent`` objects."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = "message"
        self._id: int | None = None

    def feed(self, line: str) -> StreamEvent | None:
        if line == "":
            if not self._data:
                return None
            try:
                payload = json.loads("\n".join(self._data))
            except ValueError:
                payload = None
            event = None
            if isinstance(payload, dict):
                event = StreamEvent(self._id, self._event, payload.get("data") or {})
            self._data, self._event = [], "message"
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and value.isascii() and value.isdigit():
            self._id = int(value)
        return None


def _stream_params(job_ids: list[str] | None, last_event_id: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if job_ids:
        params["job"] = list(job_ids)
    if last_event_id is not None:
        params["last_event_id"] = str(last_event_id)
    return params


def _resolve(server: ServerInfo | None) -> ServerInfo:
    server = server or find_server()
    if server is None:
        raise ServerNotFound(
            "no running Jupyter server found: start one, or set JUPYTER_PROGRESS_URL "
            "and JUPYTER_PROGRESS_TOKEN"
        )
    return server


class ProgressClient:
    """Synchronous client of the jupyter-progress HTTP API."""

    def __init__(
        self,
        server: ServerInfo | None = None,
        *,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = _resolve(server)
        self._http = httpx.Client(
            base_url=self.server.api_url,
            headers=self.server.headers,
            timeout=timeout,
            transport=transport,
            trust_env=False,
            verify=self.server.verify_tls,
        )

    def __enter__(self) -> ProgressClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _raise_for_status(self._http.request(method, path, **kwargs))

    def create_job(self, **body: Any) -> dict[str, Any]:
        return self._call("POST", "jobs", json=body)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"jobs/{job_id}")

    def list_jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else None
        return self._call("GET", "jobs", params=params)["jobs"]

    def report(self, job_id: str, **body: Any) -> dict[str, Any]:
        return self._call("POST", f"jobs/{job_id}/progress", json=body)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"jobs/{job_id}/cancel")

    def delete(self, job_id: str) -> None:
        self._call("DELETE", f"jobs/{job_id}")

    def events(
        self,
        job_ids: list[str] | None = None,
        *,
        last_event_id: int | None = None,
        reconnect: bool = True,
        on_open: Callable[[], Any] | None = None,
    ) -> Iterator[StreamEvent]:
        """Events as they come; reconnects and resumes after a drop, until closed.

        ``on_open()`` is called each time the stream is open (subscribed on the server,
        before its first event), so a caller can create a job without missing an event.
        """
        failures = 0
        timeout = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT)
        while True:
            try:
                params = _stream_params(job_ids, last_event_id)
                with self._http.stream("GET", "events", params=params, timeout=timeout) as resp:
                    if resp.status_code != 200:
                        resp.read()
                        _raise_for_status(resp)
                    failures = 0
                    if on_open is not None:
                        on_open()
                    parser = SSEParser()
                    for line in resp.iter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            if event.event_id is not None:
                                last_event_id = event.event_id
                            yield event
            except (httpx.TransportError, httpx.DecodingError):
                if not reconnect:
                    raise
            if not reconnect:
                return
            time.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1


class AsyncProgressClient:
    """The asyncio mirror of ``ProgressClient``."""

    def __init__(
        self,
        server: ServerInfo | None = None,
        *,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = _resolve(server)
        self._http = httpx.AsyncClient(
            base_url=self.server.api_url,
            headers=self.server.headers,
            timeout=timeout,
            transport=transport,
            trust_env=False,
            verify=self.server.verify_tls,
        )

    async def __aenter__(self) -> AsyncProgressClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _raise_for_status(await self._http.request(method, path, **kwargs))

    async def create_job(self, **body: Any) -> dict[str, Any]:
        return await self._call("POST", "jobs", json=body)

    async def get_job(self, job_id: str) -> dict[str, Any]:
        return await self._call("GET", f"jobs/{job_id}")

    async def list_jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else None
        return (await self._call("GET", "jobs", params=params))["jobs"]

    async def report(self, job_id: str, **body: Any) -> dict[str, Any]:
        return await self._call("POST", f"jobs/{job_id}/progress", json=body)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._call("POST", f"jobs/{job_id}/cancel")

    async def delete(self, job_id: str) -> None:
        await self._call("DELETE", f"jobs/{job_id}")

    async def events(
        self,
        job_ids: list[str] | None = None,
        *,
        last_event_id: int | None = None,
        reconnect: bool = True,
        on_open: Callable[[], Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Events as they come; reconnects and resumes after a drop, until closed."""
        failures = 0
        timeout = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT)
        while True:
            try:
                params = _stream_params(job_ids, last_event_id)
                async with self._http.stream(
                    "GET", "events", params=params, timeout=timeout
                ) as resp:
                    if resp.status_code != 200:
                        await resp.aread()
                        _raise_for_status(resp)
                    failures = 0
                    if on_open is not None:
                        on_open()
                    parser = SSEParser()
                    async for line in resp.aiter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            if event.event_id is not None:
                                last_event_id = event.event_id
                            yield event
            except (httpx.TransportError, httpx.DecodingError):
                if not reconnect:
                    raise
            if not reconnect:
                return
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1
