"""Fan-out under overload: a reader far slower than the updates falls behind, gets the
latest state per job in few writes, and still gets every final state."""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from helpers.job_helpers import create, report, wait_for


@pytest.fixture
def progress_config() -> dict[str, Any]:
    return {"send_timeout": 30.0, "subscriber_queue_bytes": 64 * 1024}


async def test_a_slow_reader_of_many_jobs_gets_every_final_state(
    api: httpx.AsyncClient, api_url: str, jp_auth_header: dict[str, str], progress_app: Any
) -> None:
    """A reader that reads far slower than updates come falls behind: its queue holds the
    latest state per job (several frames per write), and it still gets every final state."""
    broker = progress_app.broker
    url = urlsplit(api_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    writer.write(
        (
            f"GET {url.path}events HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: {jp_auth_header['Authorization']}\r\n\r\n"
        ).encode()
    )
    received = bytearray()
    finals: set[str] = set()

    flooding = True

    async def read_slowly() -> None:
        while True:
            chunk = await reader.read(512)
            if not chunk:
                return
            received.extend(chunk)
            if flooding:
                await asyncio.sleep(0.02)  # ~25 KB/s, a fraction of what the flood offers

    slow = asyncio.ensure_future(read_slowly())
    try:
        await wait_for(lambda: broker.subscriber_count == 1)
        (subscriber,) = broker._everything
        jobs = [(await create(api, name=f"flood {n}", total=30))["job_id"] for n in range(10)]
        for done in range(1, 31):
            for job_id in jobs:
                status = {"status": "completed"} if done == 30 else {}
                # Error samples (kept up to 16,000 characters) make each frame ~17 KB, so
                # the flood outgrows what the sockets' buffers absorb.
                sample = {"item": f"item {done}", "error": "E" * 900}
                await report(api, job_id, success=done, error_samples=[sample], **status)
        flooding = False
        for _ in range(1500):
            frames = received.decode(errors="replace").split("\n\n")
            finals = {
                job_id
                for job_id in jobs
                for frame in frames
                if f'"job_id":"{job_id}"' in frame and '"status":"completed"' in frame
            }
            if finals == set(jobs):
                break
            await asyncio.sleep(0.02)
        assert finals == set(jobs), "a final state was not delivered to the slow reader"
        assert subscriber.coalesced > 0, "the reader never fell behind: the test proves nothing"
    finally:
        slow.cancel()
        writer.close()
