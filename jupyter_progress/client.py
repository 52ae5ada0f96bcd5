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

As in httpx, ``_BaseClient`` holds everything but the I/O (the server's URL and headers,
each endpoint, the error mapping) and ``_Follow`` the stream's resume, backoff and
failure limit; ``ProgressClient`` and ``AsyncProgressClient`` only send and sleep.
``events()`` is the one follow loop: ``jobs.Job`` and ``jupyter progress watch`` use it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

API_PATH = "jupyter-progress/api/"
STREAM_READ_TIMEOUT = 40.0  # > the server's 15 s ping, so a dead stream is noticed
STREAM_TIMEOUT = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT)
#: Seconds before the 1st, 2nd, … attempt to reopen the event stream; the last repeats.
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
#: A dropped stream (as opposed to a refusal, which is a ``ProgressAPIError``).
STREAM_ERRORS = (httpx.TransportError, httpx.DecodingError)

log = logging.getLogger(__name__)


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


class _Follow:
    """Following the stream without the I/O: where to resume, and when to try again.

    The sync and async ``events()`` only open the stream and sleep; this decides what
    they ask for and how long they wait. Failures count the attempts since the stream
    was last open; after ``max_failures`` of them the last error is raised.
    """

    def __init__(
        self,
        job_ids: list[str] | None,
        last_event_id: int | None,
        *,
        reconnect: bool,
        on_open: Callable[[], Any] | None,
        max_failures: int | None,
    ) -> None:
        self.job_ids = list(job_ids or [])
        self.last_event_id = last_event_id
        self.reconnect = reconnect
        self.on_open = on_open
        self.max_failures = max_failures
        self.failures = 0
        self.parser = SSEParser()

    def params(self) -> dict[str, Any]:
        """The query of the next attempt: the jobs, and the last event seen."""
        params: dict[str, Any] = {}
        if self.job_ids:
            params["job"] = self.job_ids
        if self.last_event_id is not None:
            params["last_event_id"] = str(self.last_event_id)
        return params

    def opened(self, response: httpx.Response) -> None:
        """The stream answered (its body read if not 200): an error status is final."""
        if response.status_code != 200:
            _raise_for_status(response)
        self.failures = 0
        self.parser = SSEParser()
        if self.on_open is not None:
            self.on_open()

    def feed(self, line: str) -> StreamEvent | None:
        event = self.parser.feed(line)
        if event is not None and event.event_id is not None:
            self.last_event_id = event.event_id
        return event

    def retry_delay(self, error: Exception | None, *, closed: bool) -> float | None:
        """Seconds to wait before the next attempt; None to stop; raises ``error`` when
        it is the last straw."""
        if closed:
            return None  # the client was closed to stop following
        self.failures += 1
        if error is not None:
            if not self.reconnect or (
                self.max_failures is not None and self.failures >= self.max_failures
            ):
                raise error
            log.debug("event stream dropped (%s); reconnecting", error)
        if not self.reconnect:
            return None
        return RECONNECT_DELAYS[min(self.failures - 1, len(RECONNECT_DELAYS) - 1)]


def _resolve(server: ServerInfo | None) -> ServerInfo:
    server = server or find_server()
    if server is None:
        raise ServerNotFound(
            "no running Jupyter server found: start one, or set JUPYTER_PROGRESS_URL "
            "and JUPYTER_PROGRESS_TOKEN"
        )
    return server


JobT = TypeVar("JobT")
JobsT = TypeVar("JobsT")
NoneT = TypeVar("NoneT")


class _BaseClient(Generic[JobT, JobsT, NoneT]):
    """Everything but the I/O, as httpx's ``BaseClient``: the server, the options of the
    HTTP client, the endpoints, the error mapping and the stream's resume and backoff.

    Each endpoint is written once here; ``_send`` is the subclass's I/O and returns the
    value (sync) or an awaitable of it (async), hence the type parameters.
    """

    def __init__(self, server: ServerInfo | None, timeout: float | httpx.Timeout) -> None:
        self.server = _resolve(server)
        self._options: dict[str, Any] = {
            "base_url": self.server.api_url,
            "headers": self.server.headers,
            "timeout": timeout,
            "trust_env": False,
            "verify": self.server.verify_tls,
        }

    def _send(self, method: str, path: str, *, pick: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def create_job(self, **body: Any) -> JobT:
        return self._send("POST", "jobs", json=body)

    def get_job(self, job_id: str) -> JobT:
        return self._send("GET", f"jobs/{job_id}")

    def list_jobs(self, status: str | None = None) -> JobsT:
        params = {"status": status} if status else None
        return self._send("GET", "jobs", params=params, pick="jobs")

    def list_page(self, params: Sequence[tuple[str, str]] = ()) -> Any:
        """One page of ``GET jobs``: ``{"jobs": [...], "next": cursor or None}``."""
        return self._send("GET", "jobs", params=list(params))

    def report(self, job_id: str, **body: Any) -> JobT:
        return self._send("POST", f"jobs/{job_id}/progress", json=body)

    def cancel(self, job_id: str) -> JobT:
        return self._send("POST", f"jobs/{job_id}/cancel")

    def delete(self, job_id: str) -> NoneT:
        return self._send("DELETE", f"jobs/{job_id}")


def _answer(response: httpx.Response, pick: str | None) -> Any:
    value = _raise_for_status(response)
    return value[pick] if pick is not None else value


_JobDoc = dict[str, Any]


class ProgressClient(_BaseClient[_JobDoc, list[_JobDoc], None]):
    """Synchronous client of the jupyter-progress HTTP API."""

    def __init__(
        self,
        server: ServerInfo | None = None,
        *,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(server, timeout)
        self._http = httpx.Client(transport=transport, **self._options)

    def __enter__(self) -> ProgressClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, *, pick: str | None = None, **kwargs: Any) -> Any:
        return _answer(self._http.request(method, path, **kwargs), pick)

    def events(
        self,
        job_ids: list[str] | None = None,
        *,
        last_event_id: int | None = None,
        reconnect: bool = True,
        on_open: Callable[[], Any] | None = None,
        max_failures: int | None = None,
    ) -> Generator[StreamEvent, None, None]:
        """Events as they come; reconnects and resumes after a drop, until closed.

        ``on_open()`` is called each time the stream is open (subscribed on the server,
        before its first event), so a caller can create a job without missing an event.
        After ``max_failures`` failed attempts in a row the last error is raised.
        """
        follow = _Follow(
            job_ids, last_event_id, reconnect=reconnect, on_open=on_open, max_failures=max_failures
        )
        while not self._http.is_closed:  # closing the client stops following
            error = None
            try:
                with self._http.stream(
                    "GET", "events", params=follow.params(), timeout=STREAM_TIMEOUT
                ) as response:
                    if response.status_code != 200:
                        response.read()
                    follow.opened(response)
                    for line in response.iter_lines():
                        event = follow.feed(line)
                        if event is not None:
                            yield event
            except STREAM_ERRORS as dropped:
                error = dropped
            delay = follow.retry_delay(error, closed=self._http.is_closed)
            if delay is None:
                return
            time.sleep(delay)


class AsyncProgressClient(
    _BaseClient[Awaitable[_JobDoc], Awaitable[list[_JobDoc]], Awaitable[None]]
):
    """The asyncio mirror of ``ProgressClient``: the same methods, awaited."""

    def __init__(
        self,
        server: ServerInfo | None = None,
        *,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(server, timeout)
        self._http = httpx.AsyncClient(transport=transport, **self._options)

    async def __aenter__(self) -> AsyncProgressClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, *, pick: str | None = None, **kwargs: Any) -> Any:
        return _answer(await self._http.request(method, path, **kwargs), pick)

    async def events(
        self,
        job_ids: list[str] | None = None,
        *,
        last_event_id: int | None = None,
        reconnect: bool = True,
        on_open: Callable[[], Any] | None = None,
        max_failures: int | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Events as they come; reconnects and resumes after a drop, until closed."""
        follow = _Follow(
            job_ids, last_event_id, reconnect=reconnect, on_open=on_open, max_failures=max_failures
        )
        while not self._http.is_closed:  # closing the client stops following
            error = None
            try:
                async with self._http.stream(
                    "GET", "events", params=follow.params(), timeout=STREAM_TIMEOUT
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                    follow.opened(response)
                    async for line in response.aiter_lines():
                        event = follow.feed(line)
                        if event is not None:
                            yield event
            except STREAM_ERRORS as dropped:
                error = dropped
            delay = follow.retry_delay(error, closed=self._http.is_closed)
            if delay is None:
                return
            await asyncio.sleep(delay)
