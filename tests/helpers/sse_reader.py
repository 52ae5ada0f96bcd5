"""A test-side reader of the real event stream over HTTP (httpx, asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx

from jupyter_progress.client import SSEParser, StreamEvent


class StreamReader:
    """Reads ``GET events`` in a task; events and raw lines land in queues."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.params = params or {}
        self.headers = headers or {}
        self.events: asyncio.Queue[StreamEvent] = asyncio.Queue()
        self.lines: list[str] = []
        self.response: httpx.Response | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> StreamReader:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._task
            self._task = None

    async def _read(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)
        async with self.client.stream(
            "GET", "events", params=self.params, headers=self.headers, timeout=timeout
        ) as response:
            self.response = response
            self._ready.set()
            parser = SSEParser()
            async for line in response.aiter_lines():
                self.lines.append(line)
                event = parser.feed(line)
                if event is not None:
                    self.events.put_nowait(event)

    async def next(self, timeout: float = 10.0) -> StreamEvent:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def until(self, predicate: Any, timeout: float = 10.0) -> list[StreamEvent]:
        """Events up to and including the first that matches ``predicate``."""
        seen = []
        while True:
            event = await self.next(timeout)
            seen.append(event)
            if predicate(event):
                return seen

    def drain(self) -> list[StreamEvent]:
        drained = []
        while not self.events.empty():
            drained.append(self.events.get_nowait())
        return drained
