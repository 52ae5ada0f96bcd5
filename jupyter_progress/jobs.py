"""Start work that the server runs, and follow it: ``submit``, ``run_notebook``, ``Job``.

A ``Job`` is a handle on a server-run job. Its state is pushed by the server's event
stream, read by one background thread per unfinished handle (no polling); ``wait``,
``on_progress`` callbacks and the ``*_async`` variants all feed on it. The handle
holds no work itself: the kernel or script that made it can go away, and the job goes
on in the server (``Job.attach(job_id)`` picks it up again).

Callbacks run on the stream thread, one at a time, in event order: keep them short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .client import (
    ProgressAPIError,
    ProgressClient,
    ProgressClientError,
    ServerInfo,
    find_server,
)
from .contract import JobStatus, describe_job, is_final

__all__ = ["Job", "JobFailed", "run_notebook", "run_notebook_async", "submit", "submit_async"]

log = logging.getLogger(__name__)

#: Seconds to wait for the event stream to open before a job is created without it.
STREAM_OPEN_TIMEOUT = 10.0

ProgressCallback = Callable[["Job"], Any]


class JobFailed(Exception):
    """``Job.wait(raise_on_failure=True)`` found the job failed or cancelled."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.name!r} {job.status}: {job.message}")
        self.job = job


def _server(url: str | None, token: str | None) -> ServerInfo | None:
    return find_server(url=url, token=token) if url else None


class Job:
    """A job the server runs; its state follows the server's event stream.

    ``status``, ``progress``, ``message``, ``error_samples`` and ``details`` are the
    latest known values (see the contract's Job shape). Displaying the handle in a
    notebook shows its live widget.
    """

    def __init__(
        self,
        job_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        server: ServerInfo | None = None,
        on_progress: ProgressCallback | None = None,
        _stream_ready: threading.Event | None = None,
    ) -> None:
        self.job_id = job_id
        self._client = ProgressClient(server)
        self.server = self._client.server
        self._lock = threading.Lock()
        self._data: dict[str, Any] = dict(data or {})
        self._final = threading.Event()
        self._callbacks: list[ProgressCallback] = [on_progress] if on_progress else []
        self._final_callbacks: list[ProgressCallback] = []
        self._final_seen = is_final(self._data.get("status"))
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._stream_error: BaseException | None = None
        self._stream_ready = _stream_ready or threading.Event()
        self._thread: threading.Thread | None = None
        self._stream_client: ProgressClient | None = None
        if is_final(self._data.get("status")):
            self._final.set()

    # ----- creating and attaching --------------------------------------------------------

    @classmethod
    def attach(cls, job_id: str, *, url: str | None = None, token: str | None = None) -> Job:
        """A handle on an existing job (one made earlier, elsewhere, or by the CLI)."""
        job = cls(job_id, server=_server(url, token))
        job._apply(job._client.get_job(job_id))
        job._follow()
        return job

    @classmethod
    def _create(
        cls,
        body: dict[str, Any],
        *,
        url: str | None,
        token: str | None,
        on_progress: ProgressCallback | None,
    ) -> Job:
        """Open the job's stream first, then create it: no event is missed, not even one."""
        job_id = uuid.uuid4().hex
        job = cls(job_id, server=_server(url, token), on_progress=on_progress)
        job._check_server()
        job._follow()
        if not job._stream_ready.wait(STREAM_OPEN_TIMEOUT):
            log.debug("the event stream for job %s is slow to open", job_id)
        try:
            job._apply(job._client.create_job(job_id=job_id, **body))
        except BaseException:
            job._stop_stream()
            raise
        return job

    def _check_server(self) -> None:
        """Fail fast (unreachable server, bad token) before a stream thread is started."""
        try:
            self._client.get_job(self.job_id)
        except ProgressAPIError as error:
            if error.status != 404:
                raise

    # ----- state -------------------------------------------------------------------------

    @property
    def data(self) -> dict[str, Any]:
        """The latest Job document from the server."""
        with self._lock:
            return dict(self._data)

    @property
    def name(self) -> str:
        return str(self._data.get("name", ""))

    @property
    def status(self) -> str:
        return str(self._data.get("status", "pending"))

    @property
    def progress(self) -> dict[str, Any]:
        return dict(self._data.get("progress") or {})

    @property
    def message(self) -> str:
        return str(self._data.get("message", ""))

    @property
    def error_samples(self) -> list[dict[str, str]]:
        return list(self._data.get("error_samples") or [])

    @property
    def details(self) -> dict[str, Any]:
        return dict(self._data.get("details") or {})

    @property
    def done(self) -> bool:
        """The job is final (completed, failed or cancelled)."""
        return is_final(self.status)

    def refresh(self) -> Job:
        """Ask the server now (the stream keeps the handle current without this)."""
        self._apply(self._client.get_job(self.job_id))
        return self

    # ----- commands ----------------------------------------------------------------------

    def wait(self, timeout: float | None = None, *, raise_on_failure: bool = False) -> Job:
        """Block until the job is final; ``TimeoutError`` after ``timeout`` seconds."""
        if not self._final.wait(timeout):
            raise TimeoutError(f"job {self.name!r} is still {self.status} after {timeout} s")
        self._check_stream()
        if raise_on_failure and self.status != JobStatus.COMPLETED:
            raise JobFailed(self)
        return self

    def cancel(self) -> Job:
        """Ask the server to cancel (harmless on a cancelled job; 409 if it finished)."""
        try:
            self._apply(self._client.cancel(self.job_id))
        except ProgressAPIError as error:
            if error.status != 409:
                raise
            self.refresh()
        return self

    def on_progress(self, callback: ProgressCallback) -> ProgressCallback:
        """Call ``callback(job)`` after each update from the server (usable as a decorator).

        To see every event from the very first, pass ``on_progress=`` to ``submit``.
        """
        with self._lock:
            self._callbacks.append(callback)
        return callback

    def on_final(self, callback: ProgressCallback) -> ProgressCallback:
        """Call ``callback(job)`` once, when the job completes, fails or is cancelled.

        Pushed from the job's event stream (no polling); called at once if the job has
        already ended. Usable as a decorator.
        """
        with self._lock:
            if not self._final_seen:
                self._final_callbacks.append(callback)
                return callback
        self._call(callback, "on_final")
        return callback

    # ----- asyncio -----------------------------------------------------------------------

    async def wait_async(
        self, timeout: float | None = None, *, raise_on_failure: bool = False
    ) -> Job:
        """``await`` the job's end without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._final.is_set():
                future.set_result(None)
            else:
                self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"job {self.name!r} is still {self.status} after {timeout} s"
            ) from None
        return self.wait(0, raise_on_failure=raise_on_failure)

    async def cancel_async(self) -> Job:
        return await asyncio.to_thread(self.cancel)

    async def refresh_async(self) -> Job:
        return await asyncio.to_thread(self.refresh)

    # ----- the stream --------------------------------------------------------------------

    def _follow(self) -> None:
        if self._final.is_set() or self._thread is not None:
            self._stream_ready.set()
            return
        self._thread = threading.Thread(
            target=self._stream, name=f"jupyter-progress-job-{self.job_id[:8]}", daemon=True
        )
        self._thread.start()

    def _stream(self) -> None:
        """Follow the job's events until it is final (the client resumes after a drop)."""
        client = self._stream_client = ProgressClient(self.server)
        events = client.events([self.job_id], on_open=self._stream_ready.set)
        try:
            with contextlib.closing(events):
                for event in events:
                    if event.type == "job_removed":
                        self._finish_stream()
                    elif event.data.get("job_id") == self.job_id:
                        self._apply(event.data, notify=True)
                    if self._final.is_set():
                        return
        except Exception as error:
            if not self._final.is_set():
                log.warning("jupyter-progress: lost the events of job %s: %s", self.job_id, error)
                self._stream_error = error
                self._finish_stream()
        finally:
            self._stream_ready.set()
            client.close()

    def _stop_stream(self) -> None:
        """Stop following (the job was never created): end the stream thread now."""
        self._final.set()
        if self._stream_client is not None:
            with contextlib.suppress(Exception):
                self._stream_client.close()

    def _check_stream(self) -> None:
        if self._stream_error is not None and not is_final(self.status):
            raise ProgressClientError(f"lost the job's event stream: {self._stream_error}")

    def _apply(self, data: Mapping[str, Any], *, notify: bool = False) -> None:
        """Take a state unless it is older than the one known (a reply racing the stream)."""
        with self._lock:
            if self._data and _age(data) < _age(self._data):
                return
            self._data = dict(data)
            callbacks = list(self._callbacks) if notify else []
            final_callbacks: list[ProgressCallback] = []
            if not self._final_seen and is_final(self._data.get("status")):
                self._final_seen = True
                final_callbacks, self._final_callbacks = self._final_callbacks, []
        for callback in callbacks:
            self._call(callback, "on_progress")
        for callback in final_callbacks:
            self._call(callback, "on_final")
        if is_final(self._data.get("status")):
            self._finish_stream()

    def _call(self, callback: ProgressCallback, kind: str) -> None:
        """A user's callback never breaks the stream that feeds every other one."""
        try:
            callback(self)
        except Exception:
            log.exception("jupyter-progress: an %s callback failed", kind)

    def _finish_stream(self) -> None:
        with self._lock:
            self._final.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)

    # ----- display -----------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Job {self.job_id[:8]} {self._describe()}>"

    def _describe(self) -> str:
        return describe_job(self.data, self.job_id)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget in a notebook; a truthful line of text everywhere else."""
        try:
            from .widget import JobProgress

            return JobProgress(self.job_id, job=self.data)._repr_mimebundle_(**kwargs)
        except Exception:
            return {"text/plain": self._describe()}


def _age(data: Mapping[str, Any]) -> tuple[int, int]:
    """How far a job state is: its stage, then its count (both only ever go up)."""
    status = data.get("status")
    stage = 2 if is_final(status) else 1 if status == JobStatus.PROCESSING else 0
    return stage, int((data.get("progress") or {}).get("processed") or 0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# ----- the public functions ----------------------------------------------------------------


def submit(
    target: str | Callable[..., Any],
    items: Iterable[Any],
    *,
    name: str | None = None,
    concurrency: int = 1,
    on_progress: ProgressCallback | None = None,
    url: str | None = None,
    token: str | None = None,
) -> Job:
    """Run ``target(item)`` for every item in the server; returns at once with a ``Job``.

    ``target`` is ``"package.module:function"`` (or such a function itself) importable in
    the server's environment; items must be JSON values. ``on_progress`` given here
    sees every event of the job from its creation on.
    """
    body: dict[str, Any] = {
        "kind": "python",
        "target": _target_name(target),
        "items": list(items),
        "concurrency": concurrency,
    }
    if name is not None:
        body["name"] = name
    return Job._create(body, url=url, token=token, on_progress=on_progress)


def run_notebook(
    path: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    output_path: str | None = None,
    name: str | None = None,
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
    url: str | None = None,
    token: str | None = None,
) -> Job:
    """Execute a notebook in the server (paths relative to its root dir); returns a ``Job``.

    ``parameters`` go into a new cell after the cell tagged ``parameters`` (as with
    papermill); the executed copy is written beside the notebook or to ``output_path``.
    """
    body: dict[str, Any] = {"kind": "notebook", "path": path}
    if parameters:
        body["parameters"] = dict(parameters)
    if output_path is not None:
        body["output_path"] = output_path
    if name is not None:
        body["name"] = name
    if timeout is not None:
        body["timeout"] = timeout
    return Job._create(body, url=url, token=token, on_progress=on_progress)


async def submit_async(
    target: str | Callable[..., Any], items: Iterable[Any], **kwargs: Any
) -> Job:
    """``submit`` for asyncio code: the request runs off the event loop."""
    items = list(items)
    return await asyncio.to_thread(lambda: submit(target, items, **kwargs))


async def run_notebook_async(path: str, **kwargs: Any) -> Job:
    """``run_notebook`` for asyncio code: the request runs off the event loop."""
    return await asyncio.to_thread(lambda: run_notebook(path, **kwargs))


def _target_name(target: str | Callable[..., Any]) -> str:
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", "")
    if not module or module == "__main__" or "." in qualname or "<" in qualname:
        raise ValueError(
            "the server imports the target by name: pass 'package.module:function', or a "
            "function defined at the top of an importable module (not in a notebook)"
        )
    return f"{module}:{qualname}"
