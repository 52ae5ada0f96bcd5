"""``track()``: a tqdm-like loop wrapper that reports to the server as a ``reported`` job.

The loop itself only counts, and looks at the clock every ``miniters`` items (adapted so
that happens every few milliseconds); a daemon thread sends the latest absolute counters
at most ten times a second and drops what it could not send in time. Reporting never
raises into the loop and never blocks it: with no server it prints plain text instead.
"""

from __future__ import annotations

import dis
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TextIO, TypeVar

import httpx

from .client import ProgressAPIError, ProgressClient, ServerInfo, find_server
from .contract import (
    MAX_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SAMPLE_ERROR_LENGTH,
    MAX_SAMPLE_ITEM_LENGTH,
    REPORTABLE_STATUSES,
    JobStatus,
    add_error_sample,
    describe_job,
    describe_progress,
    is_final,
    job_document,
)

T = TypeVar("T")

REPORT_INTERVAL = 0.1  # at most ten reports a second
HEARTBEAT_INTERVAL = 30.0  # keeps the server's reporter watchdog quiet during slow items
CLOSE_TIMEOUT = 3.0  # the longest close() waits for the final report
# Instructions at which a frame drops a generator without an exception in flight.
_NORMAL_STOP_PREFIXES = (
    "POP_",
    "FOR_ITER",
    "END_FOR",
    "RETURN_",
    "STORE_",
    "DELETE_",
    "JUMP",
    "NOP",
    "SWAP",
    "COPY",
)


class JobCancelled(Exception):
    """The job was cancelled from elsewhere (the widget, the panel, the CLI)."""


def _describe(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def _clean(text: str, limit: int) -> str:
    """Text the server accepts: no NUL, no lone surrogates, within the limit."""
    text = text[:limit].replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


class _Reporter:
    """Sends the newest state from a daemon thread; the loop only swaps a reference.

    Reports carry absolute counters, so dropping all but the newest is harmless; only
    error samples are incremental (the ones not sent yet), to keep each report small.
    """

    def __init__(
        self,
        server: ServerInfo | None,
        job_id: str,
        create_body: dict[str, Any],
        display: Any,
    ) -> None:
        self.server = server
        self.job_id = job_id
        self.create_body = create_body
        self.display = display
        self.cancelled = False
        self.reachable = server is not None
        self.last_job: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, Any] | None = None
        self._final: dict[str, Any] | None = None
        self._samples_sent = 0
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"jupyter-progress-{job_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def push(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._pending = state
        self._wake.set()

    def close(self, final_state: dict[str, Any]) -> None:
        with self._lock:
            self._final = final_state
        self._wake.set()
        # Wait for the final report, but not on a server that never answered at all.
        self._thread.join(CLOSE_TIMEOUT if self.last_job is not None else 1.0)

    def _take(self) -> tuple[dict[str, Any] | None, bool]:
        """The newest state to send, and whether it is the last one."""
        with self._lock:
            if self._final is not None:
                return self._final, True
            state, self._pending = self._pending, None
            return state, False

    def _run(self) -> None:
        client = None
        if self.server is not None:
            try:
                client = ProgressClient(self.server, timeout=httpx.Timeout(5.0, connect=2.0))
                self.last_job = client.create_job(**self.create_body)
            except Exception:
                self.reachable = False
        # Until the first item is done, heartbeats send an empty report: it tells the
        # server's watchdog the reporter lives, and changes nothing.
        last_sent: dict[str, Any] = {}
        while True:
            self._wake.wait(HEARTBEAT_INTERVAL)
            self._wake.clear()
            state, final = self._take()
            if state is None:
                state = last_sent  # a heartbeat: the same absolute counters again
            started = time.monotonic()
            if client is not None and self.reachable and not self.cancelled:
                self._send(client, state)
            if "_job" in state:
                self._show(state)
            if final:
                break
            last_sent = state
            pause = REPORT_INTERVAL - (time.monotonic() - started)  # ≤ 10 reports a second
            if pause > 0 and self._final is None:
                time.sleep(pause)
        if client is not None:
            client.close()

    def _send(self, client: ProgressClient, state: dict[str, Any]) -> None:
        body = {key: value for key, value in state.items() if not key.startswith("_")}
        samples = body.pop("error_samples", [])
        if len(samples) > self._samples_sent:
            body["error_samples"] = samples[self._samples_sent :]
        try:
            try:
                self.last_job = client.report(self.job_id, **body)
            except ProgressAPIError as error:
                if error.status != 400 or "error_samples" not in body:
                    raise
                del body["error_samples"]  # never let a refused sample block the counters
                self.last_job = client.report(self.job_id, **body)
            self._samples_sent = len(samples)
        except ProgressAPIError as error:
            if error.status == 409:
                self._learn_final_status(client)
            elif error.status in (403, 404):
                self.reachable = False
        except Exception:
            self.reachable = False

    def _learn_final_status(self, client: ProgressClient) -> None:
        """A 409: the job ended elsewhere (cancelled, or failed by the watchdog)."""
        try:
            self.last_job = client.get_job(self.job_id)
        except Exception:
            return
        if self.last_job.get("status") == JobStatus.CANCELLED:
            self.cancelled = True
        elif is_final(self.last_job.get("status")):
            self.reachable = False  # nothing more will be accepted

    def _show(self, state: dict[str, Any]) -> None:
        if self.display is None:
            return
        try:
            job = self.last_job if self.reachable and self.last_job else state["_job"]
            self.display.update(job)
        except Exception:
            self.display = None


class _TextBar:
    """Plain-text progress on stderr: one rewritten line on a terminal, sparse lines in logs."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.interactive else 10.0
        self.shown_at = 0.0

    def show(self, job: dict[str, Any], *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown_at < self.interval:
            return
        self.shown_at = now
        line = describe_progress(job)
        try:
            if self.interactive:
                self.stream.write("\r" + line + ("\n" if final else ""))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        except Exception:
            pass


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


class track(Generic[T]):
    """Iterate like ``tqdm``, with the progress kept and broadcast by the Jupyter server.

    ``for x in track(items, name="convert"): ...`` counts each item as a success. For
    per-item success/error counting, use ``with bar.item(x):`` (an exception inside is
    counted as an error and suppressed), or ``bar.update()`` / ``bar.error(x, exc)``.
    """

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        *,
        total: int | None = None,
        name: str | None = None,
        disable: bool | None = None,
        server: ServerInfo | None = None,
        display: bool = True,
        file: TextIO | None = None,
    ) -> None:
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        if disable is None:
            disable = os.environ.get("JUPYTER_PROGRESS_DISABLE", "").lower() in {"1", "true"}
        self.iterable = iterable
        self.total = total
        self.name = _clean(name or "track", MAX_NAME_LENGTH)
        self.disable = disable
        self.job_id = uuid.uuid4().hex
        self.status = "processing"
        self.message = ""
        self.started_at = time.time()
        self.finished_at: float | None = None
        self._yielded = 0
        self._success = 0
        self._errors = 0
        self._sent_success = 0
        self._explicit = False
        self._samples: list[dict[str, str]] = []
        self._miniters = 1
        self._checked_at = time.perf_counter()
        self._pushed_at = 0.0
        self._closed = False
        self._reporter: _Reporter | None = None
        self._display: Any = None
        self._text: _TextBar | None = None
        if not disable:
            self._open(server, display, file)

    # ----- setup -------------------------------------------------------------------------

    def _open(self, server: ServerInfo | None, display: bool, file: TextIO | None) -> None:
        try:
            server = server or find_server()
        except Exception:
            server = None
        if display and _in_kernel():
            try:
                from .widget import show_job

                self._display = show_job(self.job_id, self.name)
            except Exception:
                self._display = None
        if self._display is None:
            self._text = _TextBar(file)
        body: dict[str, Any] = {
            "kind": "reported",
            "name": self.name,
            "total": self.total,
            "job_id": self.job_id,
        }
        if os.environ.get("JUPYTER_PROGRESS_PARENT"):  # in a notebook job's kernel: its child
            body["parent_id"] = os.environ["JUPYTER_PROGRESS_PARENT"]
        self._reporter = _Reporter(server, self.job_id, body, self._display)
        self._reporter.start()

    # ----- counting ------------------------------------------------------------------------

    @property
    def success(self) -> int:
        if self._explicit:
            return self._success
        self._sent_success = max(self._sent_success, self._yielded - self._errors)
        return self._sent_success

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def n(self) -> int:
        return self.success + self._errors

    def update(self, n: int = 1) -> None:
        """Count ``n`` more successful items (switches off counting by iteration)."""
        self._explicit = True
        self._success += n
        self._tick()

    def error(self, item: Any, error: BaseException | str) -> None:
        """Count one failed item and keep a sample of its error."""
        self._errors += 1
        text = error if isinstance(error, str) else _describe(error)
        add_error_sample(
            self._samples,
            _clean(repr(item), MAX_SAMPLE_ITEM_LENGTH),
            _clean(text, MAX_SAMPLE_ERROR_LENGTH),
        )
        self._tick(force=True)

    def item(self, item: Any = None) -> _ItemScope:
        """``with bar.item(x): work(x)``: success, or an error counted and suppressed."""
        self._explicit = True
        return _ItemScope(self, item)

    def set_message(self, message: str) -> None:
        self.message = _clean(str(message), MAX_MESSAGE_LENGTH)

    # ----- iteration -------------------------------------------------------------------

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("track() needs an iterable to iterate over")
        if self.disable:
            yield from self.iterable
            return
        n = self._yielded
        next_check = n + self._miniters
        try:
            for obj in self.iterable:
                yield obj
                n += 1
                if n >= next_check:
                    self._yielded = n
                    next_check = n + self._check()
        except GeneratorExit:
            self._yielded = n
            self._left_early()
            raise
        except JobCancelled:
            self._yielded = n
            self._close("cancelled", "cancelled")
            raise
        except BaseException as error:
            self._yielded = n
            self._close("failed", _describe(error))
            raise
        self._yielded = n
        self._close("completed")

    def _check(self) -> int:
        """Called every ``miniters`` items: adapt ``miniters``, report, notice cancels."""
        now = time.perf_counter()
        elapsed = now - self._checked_at
        self._checked_at = now
        if elapsed < 0.005:
            self._miniters = min(self._miniters * 2, 1 << 20)
        elif elapsed > 0.05 and self._miniters > 1:
            self._miniters //= 2
        self._tick(now)
        return self._miniters

    def _tick(self, now: float | None = None, *, force: bool = False) -> None:
        reporter = self._reporter
        if reporter is None:
            return
        if reporter.cancelled and not self._closed:
            raise JobCancelled(f"the job {self.name!r} was cancelled")
        now = now if now is not None else time.perf_counter()
        if force or now - self._pushed_at >= REPORT_INTERVAL:
            self._pushed_at = now
            self._push()

    def _left_early(self) -> None:
        """The loop stopped before the end: ``break``/``return`` or an exception in its body.

        Python closes the generator in both cases without saying which. The instruction the
        loop's frame stopped at tells: one that drops, stores or returns the iterator
        (``break``, ``return``, ``del``, a ``zip`` that ran out) is a normal stop; any other
        is the one that raised, and the exception is unwinding the frame.
        """
        try:
            frame = sys._getframe(2)
            opname = dis.opname[frame.f_code.co_code[frame.f_lasti]]
        except (ValueError, IndexError):
            opname = "POP_TOP"  # closed by the garbage collector, far from any loop
        if opname.startswith(_NORMAL_STOP_PREFIXES):
            self._close("completed", f"stopped early after {self.n} items")
        else:
            self._close("failed", "the loop raised an exception")

    # ----- context manager and closing -------------------------------------------------

    def __enter__(self) -> track[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self._close("completed")
        elif isinstance(exc, JobCancelled):
            self._close("cancelled", "cancelled")
        else:
            self._close("failed", _describe(exc))

    def close(self) -> None:
        """End the job as completed (if not ended already)."""
        self._close("completed")

    def _state(self) -> dict[str, Any]:
        success, errors = self.success, self._errors
        total = self.total
        if total is not None and success + errors > total:
            total = success + errors
        state: dict[str, Any] = {"success": success, "errors": errors, "total": total}
        if self.message:
            state["message"] = self.message
        if self._samples:
            state["error_samples"] = list(self._samples)
        if is_final(self.status) and self.status in REPORTABLE_STATUSES:  # the server ends it
            state["status"] = self.status
        state["_job"] = self.as_job(success, errors, total)
        return state

    def _push(self) -> None:
        state = self._state()
        if self._reporter is not None:
            self._reporter.push(state)
        if self._text is not None:
            self._text.show(state["_job"])

    def _close(self, status: str, message: str = "") -> None:
        if self._closed or self.disable:
            return
        self._closed = True
        self.status = status
        self.message = _clean(message, MAX_MESSAGE_LENGTH) if message else self.message
        self.finished_at = time.time()
        state = self._state()
        reporter = self._reporter
        if reporter is not None:
            reporter.close(state)
            if self._display is not None:
                try:
                    final = reporter.last_job if reporter.reachable else None
                    self._display.finish(final or state["_job"])
                except Exception:
                    pass
        if self._text is not None:
            self._text.show(state["_job"], final=True)

    # ----- what a reader sees ----------------------------------------------------------

    def as_job(
        self, success: int | None = None, errors: int | None = None, total: int | None = None
    ) -> dict[str, Any]:
        """The job as this process knows it, in the server's Job shape."""
        return job_document(
            job_id=self.job_id,
            name=self.name,
            kind="reported",
            status=self.status,
            total=self.total if total is None else total,
            success=self.success if success is None else success,
            errors=self._errors if errors is None else errors,
            now=time.time(),
            message=self.message,
            error_samples=self._samples,
            created_at=self.started_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )

    @property
    def job(self) -> dict[str, Any]:
        """The server's latest view of the job if it has one, else this process's."""
        reporter = self._reporter
        if reporter is not None and reporter.reachable and reporter.last_job:
            return reporter.last_job
        return self.as_job()

    @property
    def reported(self) -> bool:
        """Whether the server has the job (False: no server, or it was unreachable)."""
        reporter = self._reporter
        return reporter is not None and reporter.reachable and reporter.last_job is not None

    def __repr__(self) -> str:
        return describe_job(self.as_job())


class _ItemScope:
    """One item of ``bar.item(x)``: counts success, or an error it suppresses."""

    def __init__(self, bar: track[Any], item: Any) -> None:
        self.bar = bar
        self.item = item

    def __enter__(self) -> Any:
        return self.item

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self.bar.update()
            return False
        if not isinstance(exc, Exception) or isinstance(exc, JobCancelled):
            return False  # KeyboardInterrupt and friends still stop the loop
        self.bar.error(self.item, exc)
        return True
