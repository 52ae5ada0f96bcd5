"""Thin HTTP handlers: check auth and size, parse, call the manager, write JSON.

Domain errors become status codes in one place (``_STATUS_OF``); anything else is
jupyter_server's generic "Unhandled error", so no traceback ever reaches a client.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from asyncio import Future
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.iostream import StreamClosedError

from .broker import EventBroker, Subscriber
from .exceptions import InvalidRequest, JobNotFound, JobStateConflict, ProgressError
from .manager import JobManager
from .models import (
    JobKind,
    parse_finished_deletion,
    parse_job_id,
    parse_job_page,
    parse_job_spec,
    parse_progress_report,
)
from .sse import PING, Event, format_retry

AUTH_RESOURCE = "jupyter_progress"
MAX_JOB_FILTERS = 100

_STATUS_OF: dict[type[ProgressError], int] = {
    InvalidRequest: 400,
    JobNotFound: 404,
    JobStateConflict: 409,
}

Method = TypeVar("Method", bound=Callable[..., Awaitable[Any] | Any])


class ProgressApp(Protocol):
    """What the handlers need of the extension (``settings["jupyter_progress"]``).

    A protocol rather than the extension class itself, which imports the handlers.
    """

    manager: JobManager
    broker: EventBroker
    max_body_bytes: int
    max_concurrency: int
    retry_ms: int
    ping_interval: float
    send_timeout: float

    def job_url(self, job_id: str) -> str: ...


def maps_domain_errors(method: Method) -> Method:
    """Turn the job logic's own exceptions into JSON errors with the right status."""

    @functools.wraps(method)
    async def wrapper(self: ProgressHandler, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        except ProgressError as error:
            status = next(
                (code for kind, code in _STATUS_OF.items() if isinstance(error, kind)), 400
            )
            raise web.HTTPError(status, str(error)) from None

    return wrapper  # type: ignore[return-value]


@web.stream_request_body
class ProgressHandler(APIHandler):
    """Base of every endpoint: one auth resource, body limit, JSON helpers.

    The body is streamed in, so an oversized one is refused (413) from its
    ``Content-Length`` before it is read, or as soon as a chunked one passes the limit.
    """

    auth_resource = AUTH_RESOURCE
    _body: bytearray

    @property
    def app(self) -> ProgressApp:
        return self.settings["jupyter_progress"]

    @property
    def manager(self) -> JobManager:
        return self.app.manager

    async def prepare(self) -> None:  # type: ignore[override]
        self._body = bytearray()
        declared = self.request.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.app.max_body_bytes:
            self._refuse_too_large()
        await super().prepare()

    def data_received(self, chunk: bytes) -> None:
        self._body += chunk
        if len(self._body) > self.app.max_body_bytes:
            self._body = bytearray()
            self._refuse_too_large()

    def _refuse_too_large(self) -> None:
        raise web.HTTPError(413, f"the request body is larger than {self.app.max_body_bytes} bytes")

    def json_body(self) -> Any:
        if not self._body:
            return {}
        try:
            body = json.loads(self._body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidRequest("the request body is not valid JSON") from None
        try:  # lone surrogates (from "\ud800" escapes) would break logs, files and clients
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(
                "the request body holds invalid Unicode (a lone surrogate)"
            ) from None
        except RecursionError:
            raise InvalidRequest("the request body is nested too deeply") from None
        return body

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def job_id_arg(self, job_id: str) -> str:
        parse_job_id(job_id)
        return job_id


class JobsHandler(ProgressHandler):
    @web.authenticated
    @authorized
    @maps_domain_errors
    def get(self) -> None:
        page = parse_job_page(
            statuses=self.get_query_arguments("status"),
            q=self.get_query_argument("q", None),
            parent=self.get_query_argument("parent", None),
            limit=self.get_query_argument("limit", None),
            before=self.get_query_argument("before", None),
        )
        jobs, cursor = self.manager.list_jobs(page)
        now = time.time()
        self.write_json({"jobs": [job.to_dict(now) for job in jobs], "next": cursor})

    @web.authenticated
    @authorized
    @maps_domain_errors
    def delete(self) -> None:
        statuses, finished_before = parse_finished_deletion(
            self.get_query_arguments("status"), self.get_query_argument("before", None)
        )
        self.write_json({"deleted": self.manager.delete_finished(statuses, finished_before)})

    @web.authenticated
    @authorized
    @maps_domain_errors
    async def post(self) -> None:
        spec = parse_job_spec(self.json_body(), max_concurrency=self.app.max_concurrency)
        # Awaited as jupyter_server does: an authorizer may be async, and an unawaited
        # coroutine is truthy (it would allow everything).
        if spec.kind is not JobKind.REPORTED and not await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", "kernels")
        ):
            # A server-run job runs code: it needs the same right as running a kernel.
            raise web.HTTPError(403, "running code in the server needs execute on kernels")
        job = self.manager.create(spec)
        self.set_header("Location", self.app.job_url(job.job_id))
        self.write_json(job.to_dict(), status=201)


class JobHandler(ProgressHandler):
    @web.authenticated
    @authorized
    @maps_domain_errors
    def get(self, job_id: str) -> None:
        self.write_json(self.manager.get(self.job_id_arg(job_id)).to_dict())

    @web.authenticated
    @authorized
    @maps_domain_errors
    def delete(self, job_id: str) -> None:
        self.manager.delete(self.job_id_arg(job_id))
        self.set_status(204)
        self.finish()


class ProgressReportHandler(ProgressHandler):
    @web.authenticated
    @authorized
    @maps_domain_errors
    def post(self, job_id: str) -> None:
        job_id = self.job_id_arg(job_id)
        self.manager.get(job_id)
        report = parse_progress_report(self.json_body())
        self.write_json(self.manager.report(job_id, report).to_dict())


class CancelHandler(ProgressHandler):
    @web.authenticated
    @authorized
    @maps_domain_errors
    def post(self, job_id: str) -> None:
        job, changed = self.manager.cancel(self.job_id_arg(job_id))
        self.write_json(job.to_dict(), status=202 if changed else 200)


class EventsHandler(ProgressHandler):
    """``GET events``: the Server-Sent Events stream of job updates."""

    _subscriber: Subscriber | None = None
    _in_flight: Future[None] | None = None

    def parse_filters(self) -> tuple[frozenset[str] | None, int | None]:
        job_ids = self.get_query_arguments("job")
        if len(job_ids) > MAX_JOB_FILTERS:
            raise InvalidRequest(f"at most {MAX_JOB_FILTERS} 'job' filters per stream")
        for job_id in job_ids:
            parse_job_id(job_id)
        raw_last = self.request.headers.get("Last-Event-ID") or self.get_query_argument(
            "last_event_id", None
        )
        last_event_id = None
        if raw_last:
            raw_last = raw_last.strip()
            if not (raw_last.isascii() and raw_last.isdigit()) or len(raw_last) > 20:
                raise InvalidRequest("Last-Event-ID must be a non-negative integer")
            last_event_id = int(raw_last)
        return (frozenset(job_ids) or None), last_event_id

    @web.authenticated
    @authorized
    @maps_domain_errors
    async def get(self) -> None:
        job_ids, last_event_id = self.parse_filters()
        broker: EventBroker = self.app.broker
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache, no-store, no-transform")
        self.set_header("X-Accel-Buffering", "no")
        self.set_header("Connection", "keep-alive")
        # Small frames must leave at once: without this, Nagle's algorithm holds a frame
        # until the reader's delayed ACK of the previous one (up to 40 ms).
        stream = self.request.connection.stream  # type: ignore[union-attr]
        stream.set_nodelay(True)
        subscriber = self._subscriber = broker.subscribe(job_ids)
        try:
            frames, sent_up_to = self.manager.initial_frames(job_ids, last_event_id)
            self.write(format_retry(self.app.retry_ms))
            for frame in frames:
                self.write(frame)
            await self._flush()
            subscriber.sink = self._deliver
            while not subscriber.closed:
                if self._in_flight is not None:  # a write the socket has not taken yet
                    await self._wait_in_flight()
                batch = await subscriber.next_batch(timeout=self.app.ping_interval)
                if subscriber.closed:
                    break
                if batch is None:
                    self.write(PING)
                else:
                    fresh = [event.frame for event in batch if event.event_id > sent_up_to]
                    if not fresh:
                        continue
                    sent_up_to = batch[-1].event_id
                    self.write(b"".join(fresh))
                await self._flush()
        except StreamClosedError:
            self.log.debug("an event stream reader left")
        except asyncio.TimeoutError:
            # The reader stopped reading: drop it rather than buffer for it.
            self.log.info("dropping an event stream reader that stalled")
            stream.close()
        finally:
            subscriber.sink = None
            broker.unsubscribe(subscriber)
            self._subscriber = None
        if not stream.closed():
            self.finish()  # the server is stopping: end the response cleanly

    def _deliver(self, events: list[Event]) -> bool:
        """The broker's fast path: write the round's frames at once, in one write, while
        nothing is in flight.

        Declining (False) leaves them queued for the coroutine, which keeps the order. A
        closed connection raises, and the subscriber closes.
        """
        if self._in_flight is not None:
            return False
        self.write(events[0].frame if len(events) == 1 else b"".join(e.frame for e in events))
        flushed = self.flush()
        if flushed.done():
            flushed.result()
        else:
            self._in_flight = flushed
            if self._subscriber is not None:
                self._subscriber.kick()  # the coroutine times the reader's pace
        return True

    async def _flush(self) -> None:
        """A flush that a reader who stopped reading cannot hold forever."""
        flushed = self.flush()
        if flushed.done():  # usually at once: the socket took it all (or it is closed)
            flushed.result()
        else:
            self._in_flight = flushed
            await self._wait_in_flight()

    async def _wait_in_flight(self) -> None:
        in_flight = self._in_flight
        if in_flight is not None:
            await asyncio.wait_for(in_flight, timeout=self.app.send_timeout)
            self._in_flight = None

    def on_connection_close(self) -> None:
        if self._subscriber is not None:
            self._subscriber.close()
        super().on_connection_close()
