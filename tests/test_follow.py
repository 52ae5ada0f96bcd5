"""The one follow loop of the clients: resume from the last id, back off, give up, stop.

A real server process; the connection drops are real ``httpx.ReadError``s, raised by a
transport wrapped around the real one that cuts each stream after its first event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_progress.client import (
    AsyncProgressClient,
    ProgressAPIError,
    ProgressClient,
    ServerInfo,
    StreamEvent,
)

from helpers.server_process import ServerProcess, running_server

UNREACHABLE = ServerInfo("http://127.0.0.1:9/")  # the discard port: nothing listens


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("follow-server")) as server:
        yield server


@pytest.fixture
def info(live_server: ServerProcess) -> ServerInfo:
    return ServerInfo(live_server.url, live_server.token)


def _first_event(buffer: bytes) -> int:
    """Where the first event with data ends in ``buffer`` (0: not yet whole)."""
    start = buffer.find(b"data:")
    end = buffer.find(b"\n\n", start) if start >= 0 else -1
    return end + 2 if end >= 0 else 0


class _CutStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.inner:
            buffer += chunk
            if end := _first_event(buffer):
                yield buffer[:end]
                raise httpx.ReadError("cut by the test after one event")

    def close(self) -> None:
        self.inner.close()


class _AsyncCutStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self.inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        buffer = b""
        async for chunk in self.inner:
            buffer += chunk
            if end := _first_event(buffer):
                yield buffer[:end]
                raise httpx.ReadError("cut by the test after one event")

    async def aclose(self) -> None:
        await self.inner.aclose()


class CuttingTransport(httpx.BaseTransport):
    """The real transport; every event stream it opens drops after its first event."""

    def __init__(self, on_request: Any = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.URL] = []
        self.on_request = on_request

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        if self.on_request is not None:
            self.on_request()
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/events") or response.status_code != 200:
            return response
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code, headers=response.headers, stream=_CutStream(response.stream)
        )

    def close(self) -> None:
        self.inner.close()


class AsyncCuttingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/events") or response.status_code != 200:
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code, headers=response.headers, stream=_AsyncCutStream(response.stream)
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def check_resumed(
    seen: list[StreamEvent], opens: int, requests: list[httpx.URL], job_id: str
) -> None:
    """Every change once, in order, over one connection per event, each resuming."""
    assert [event.data["progress"]["processed"] for event in seen] == [0, 1, 2, 3]
    assert seen[-1].data["status"] == "completed"
    streams = [url for url in requests if url.path.endswith("/events")]
    assert opens == len(streams) == 4
    assert "last_event_id" not in streams[0].params
    for before, url in zip(seen, streams[1:], strict=False):
        assert url.params["last_event_id"] == str(before.event_id)
        assert url.params.get_list("job") == [job_id]


def test_sync_events_resume_after_each_drop_without_loss_or_repeat(info: ServerInfo) -> None:
    transport = CuttingTransport()
    opens: list[int] = []
    seen: list[StreamEvent] = []
    with ProgressClient(info) as reporter, ProgressClient(info, transport=transport) as follower:
        job_id = reporter.create_job(name="followed", total=3)["job_id"]
        events = follower.events([job_id], on_open=lambda: opens.append(1))
        for event in events:
            seen.append(event)
            processed = event.data["progress"]["processed"]
            if processed == 3:
                break
            # Sent while the follower is cut off: the resume must replay it.
            status = "completed" if processed == 2 else "processing"
            reporter.report(job_id, success=processed + 1, status=status)
        events.close()
    check_resumed(seen, len(opens), transport.requests, job_id)


def test_async_events_resume_after_each_drop_without_loss_or_repeat(info: ServerInfo) -> None:
    transport = AsyncCuttingTransport()
    opens: list[int] = []
    seen: list[StreamEvent] = []

    async def follow() -> str:
        async with (
            AsyncProgressClient(info) as reporter,
            AsyncProgressClient(info, transport=transport) as follower,
        ):
            job_id = (await reporter.create_job(name="followed", total=3))["job_id"]
            events = follower.events([job_id], on_open=lambda: opens.append(1))
            async for event in events:
                seen.append(event)
                processed = event.data["progress"]["processed"]
                if processed == 3:
                    break
                status = "completed" if processed == 2 else "processing"
                await reporter.report(job_id, success=processed + 1, status=status)
            await events.aclose()
            return str(job_id)

    job_id = asyncio.run(follow())
    check_resumed(seen, len(opens), transport.requests, job_id)


def test_events_give_up_after_max_failures_in_a_row() -> None:
    transport = CuttingTransport()
    opens: list[int] = []
    with (
        ProgressClient(UNREACHABLE, transport=transport) as client,
        pytest.raises(httpx.ConnectError),
    ):
        next(client.events(max_failures=3, on_open=lambda: opens.append(1)))
    assert len(transport.requests) == 3
    assert opens == []


def test_events_without_reconnect_raise_the_first_drop() -> None:
    transport = CuttingTransport()
    with (
        ProgressClient(UNREACHABLE, transport=transport) as client,
        pytest.raises(httpx.ConnectError),
    ):
        next(client.events(reconnect=False))
    assert len(transport.requests) == 1


def test_closing_the_client_stops_following_quietly() -> None:
    client: ProgressClient

    def close_on_second_attempt() -> None:
        if len(transport.requests) == 2:
            client.close()

    transport = CuttingTransport(on_request=close_on_second_attempt)
    client = ProgressClient(UNREACHABLE, transport=transport)
    assert list(client.events()) == []
    assert len(transport.requests) == 2


def test_a_refused_stream_is_an_error_at_once(live_server: ServerProcess, tmp_path: Path) -> None:
    transport = CuttingTransport()
    wrong = ServerInfo(live_server.url, "not-the-token")
    with (
        ProgressClient(wrong, transport=transport) as client,
        pytest.raises(ProgressAPIError) as refused,
    ):
        next(client.events())
    assert refused.value.status == 403
    assert len(transport.requests) == 1
