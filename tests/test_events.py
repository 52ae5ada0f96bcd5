"""The Server-Sent Events stream, read over real HTTP from a real Jupyter server."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from helpers.job_helpers import create, report, wait_for
from helpers.sse_reader import StreamReader


@pytest.fixture
def progress_config() -> dict[str, Any]:
    return {"ping_interval": 0.3, "send_timeout": 1.0, "subscriber_queue_bytes": 16 * 1024}


async def test_stream_headers_when_connecting(api: httpx.AsyncClient) -> None:
    async with StreamReader(api) as reader:
        assert reader.response is not None
        headers = reader.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in headers["cache-control"]
        assert headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in headers
        await wait_for(lambda: any(line.startswith("retry:") for line in reader.lines))


async def test_snapshot_first_when_connecting_without_last_event_id(
    api: httpx.AsyncClient,
) -> None:
    first = await create(api, name="first", total=10)
    second = await create(api, name="second", total=10)
    await report(api, first["job_id"], success=3)
    async with StreamReader(api) as reader:
        snapshot = [await reader.next(), await reader.next()]
        by_id = {event.data["job_id"]: event.data for event in snapshot}
        assert set(by_id) == {first["job_id"], second["job_id"]}
        assert by_id[first["job_id"]]["progress"]["processed"] == 3
        ids = [event.event_id or 0 for event in snapshot]
        assert ids == sorted(ids), "each job's newest event, in event order"
        assert [e.data["job_id"] for e in snapshot] == [second["job_id"], first["job_id"]]
        await report(api, second["job_id"], success=1)
        live = await reader.next()
        assert live.type == "job_updated"
        assert live.data["job_id"] == second["job_id"]
        assert live.event_id is not None and live.event_id > max(ids)


async def test_reader_dropped_mid_snapshot_resumes_the_rest(api: httpx.AsyncClient) -> None:
    jobs = [await create(api, name=f"job {i}", total=5) for i in range(4)]
    async with StreamReader(api) as reader:
        first_two = [await reader.next(), await reader.next()]
    resume = {"Last-Event-ID": str(first_two[-1].event_id)}
    async with StreamReader(api, headers=resume) as reader:
        rest = [await reader.next(), await reader.next()]
        assert reader.drain() == []
    seen = [e.data["job_id"] for e in first_two + rest]
    assert seen == [job["job_id"] for job in jobs]


async def test_one_event_per_accepted_report_in_order_when_reader_keeps_up(
    api: httpx.AsyncClient,
) -> None:
    async with StreamReader(api) as reader:
        job = await create(api, name="steps", total=50)
        created = await reader.next()
        assert created.data["progress"]["processed"] == 0
        for done in range(1, 51):
            await report(api, job["job_id"], success=done)
        events = await reader.until(lambda e: e.data["progress"]["processed"] == 50)
        assert [e.data["progress"]["processed"] for e in events] == list(range(1, 51))
        ids = [created.event_id] + [e.event_id for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_job_filter_narrows_the_stream(api: httpx.AsyncClient) -> None:
    wanted = await create(api, name="wanted", total=5)
    other = await create(api, name="other", total=5)
    async with StreamReader(api, params={"job": wanted["job_id"]}) as reader:
        snapshot = await reader.next()
        assert snapshot.data["job_id"] == wanted["job_id"]
        await report(api, other["job_id"], success=1)
        await report(api, wanted["job_id"], success=2)
        event = await reader.next()
        assert event.data["job_id"] == wanted["job_id"]
        assert event.data["progress"]["success"] == 2
        assert reader.drain() == []


@pytest.mark.parametrize("how", ["header", "query"])
async def test_replay_after_last_event_id(api: httpx.AsyncClient, how: str) -> None:
    job = await create(api, name="resume", total=10)
    async with StreamReader(api) as reader:
        await reader.next()
        await report(api, job["job_id"], success=1)
        seen = await reader.next()
    for done in (2, 3, 4):
        await report(api, job["job_id"], success=done)
    resume: dict[str, Any] = (
        {"headers": {"Last-Event-ID": str(seen.event_id)}}
        if how == "header"
        else {"params": {"last_event_id": str(seen.event_id)}}
    )
    async with StreamReader(api, **resume) as reader:
        missed = [await reader.next() for _ in range(3)]
        assert [e.data["progress"]["success"] for e in missed] == [2, 3, 4]
        assert reader.drain() == []


async def test_unknown_last_event_id_gets_the_current_state(api: httpx.AsyncClient) -> None:
    job = await create(api, name="x", total=10)
    await report(api, job["job_id"], success=5)
    async with StreamReader(api, headers={"Last-Event-ID": str(2**62)}) as reader:
        event = await reader.next()
        assert event.data["progress"]["success"] == 5


async def test_job_removed_event_when_deleted(api: httpx.AsyncClient) -> None:
    job = await create(api, name="x", total=1)
    await report(api, job["job_id"], success=1, status="completed")
    async with StreamReader(api, params={"job": job["job_id"]}) as reader:
        await reader.next()
        assert (await api.delete(f"jobs/{job['job_id']}")).status_code == 204
        removed = await reader.next()
        assert removed.type == "job_removed"
        assert removed.data == {"job_id": job["job_id"]}


async def test_ping_comment_when_idle(api: httpx.AsyncClient) -> None:
    async with StreamReader(api) as reader:
        await wait_for(lambda: ": ping" in reader.lines, timeout=5)


@pytest.mark.parametrize(
    "params",
    [{"job": "nope"}, {"last_event_id": "abc"}, {"job": ["a" * 32] * 101}],
)
async def test_bad_stream_queries_are_400(api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await api.get("events", params=params)
    assert response.status_code == 400
    assert response.json()["message"]


async def test_no_subscriber_left_behind_after_1000_connect_drop_cycles(
    api: httpx.AsyncClient, progress_app: Any
) -> None:
    broker = progress_app.broker
    for _ in range(1000):
        async with api.stream("GET", "events") as response:
            assert response.status_code == 200
            async for _chunk in response.aiter_bytes():
                break
    await wait_for(lambda: broker.subscriber_count == 0)


async def test_stalled_client_is_bounded_and_does_not_delay_a_fast_one(
    api: httpx.AsyncClient, api_url: str, jp_auth_header: dict[str, str], progress_app: Any
) -> None:
    broker = progress_app.broker
    url = urlsplit(api_url)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((url.hostname, url.port))
    stalled.sendall(
        (
            f"GET {url.path}events HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: {jp_auth_header['Authorization']}\r\n\r\n"
        ).encode()
    )
    try:
        await wait_for(lambda: broker.subscriber_count == 1)
        (stalled_sub,) = broker._everything
        job = await create(api, name="flood", total=3000)
        peak = 0
        async with StreamReader(api, params={"job": job["job_id"]}) as fast:
            await fast.next()
            message = "m" * 900
            for done in range(1, 3001):
                await report(api, job["job_id"], success=done, message=message)
                peak = max(peak, stalled_sub.pending_bytes)
            events = await fast.until(lambda e: e.data["progress"]["processed"] == 3000)
            assert [e.data["progress"]["processed"] for e in events] == list(range(1, 3001))
        assert peak <= 16 * 1024 + 2048
        assert stalled_sub.coalesced > 0, "the stalled reader's queue was collapsed"
        await wait_for(lambda: broker.subscriber_count == 0, timeout=15)
    finally:
        stalled.close()


async def test_flood_always_delivers_the_final_state_to_a_slow_reader(
    api: httpx.AsyncClient,
) -> None:
    job = await create(api, name="flood", total=500)
    async with StreamReader(api, params={"job": job["job_id"]}) as reader:
        await reader.next()
        for done in range(1, 500):
            await report(api, job["job_id"], success=done, message="x" * 200)
        await report(api, job["job_id"], success=500, status="completed")
        events = await reader.until(lambda e: e.data["status"] == "completed")
        assert events[-1].data["progress"]["processed"] == 500
        processed = [e.data["progress"]["processed"] for e in events]
        assert processed == sorted(processed)
