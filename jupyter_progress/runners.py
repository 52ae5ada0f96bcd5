"""The runners of server-run job kinds: ``python`` (an executor) and ``notebook`` (nbclient).

A runner turns a validated ``JobSpec`` into work in the background and reports back to
the ``JobManager`` on the server's event loop; it never blocks that loop. Which
executor ``python`` jobs use is configuration (``c.JupyterProgress.executor``,
``c.JupyterProgress.dask_address``), so the same job runs on worker processes, threads
or a Dask cluster without a change to the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .caps import Slots
from .exceptions import InvalidRequest, JobNotFound
from .executors import (
    ItemExecutor,
    ResultBatch,
    Target,
    TargetError,
    describe_error,
    make_executor,
)
from .models import JobKind, JobStatus

if TYPE_CHECKING:
    from .manager import JobManager, JobRunner
    from .models import JobSpec
    from .results import ResultStore

MAX_LABEL_LENGTH = 200
#: A python job's ``details.target`` when its function came pickled.
PICKLED_TARGET = "(a pickled function)"
#: Seconds a stopping server waits for a job's workers to be reaped (they get SIGTERM,
#: then SIGKILL after ``executors.TERMINATE_GRACE``).
SHUTDOWN_WAIT = 5.0
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
MAX_TITLE_LENGTH = 80
#: The environment of a notebook job's kernel: its job, and the server to report to.
PARENT_ENV, URL_ENV, TOKEN_ENV = (
    "JUPYTER_PROGRESS_PARENT",
    "JUPYTER_PROGRESS_URL",
    "JUPYTER_PROGRESS_TOKEN",
)
#: Seconds between two writes of a notebook job's executed copy, at least: cells that end
#: sooner share one write (a cell is counted once the copy holding it is on disk).
COPY_WRITE_INTERVAL = 0.2
#: Bytes of a running cell's output kept in a notebook job's ``details.log_tail``.
MAX_LOG_TAIL_BYTES = 4096
KERNEL_FLUSH_SECONDS = 5
# Run silently in a notebook job's kernel after its last cell: send what its bars queued.
FLUSH_KERNEL_REPORTS = f"""
import sys as _jp_sys
_jp_tracking = _jp_sys.modules.get("jupyter_progress.tracking")
if _jp_tracking is not None:
    _jp_tracking.flush({KERNEL_FLUSH_SECONDS})
del _jp_sys, _jp_tracking
"""
#: Most log-tail updates a notebook job sends per second.
LOG_TAIL_PUSHES = 4


def item_label(item: Any) -> str:
    """How an item shows in a job's message and error samples: short, one line."""
    text = item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_LABEL_LENGTH else text[: MAX_LABEL_LENGTH - 1] + "…"


def make_runners(
    *,
    root_dir: str,
    executor: str | None = None,
    dask_address: str = "",
    executor_class: type[ItemExecutor] | None = None,
    max_workers: int = 32,
    max_running_notebooks: int = 2,
    server_address: Callable[[], tuple[str, str]] | None = None,
    results: ResultStore | None = None,
    log: logging.Logger,
) -> dict[JobKind, JobRunner]:
    """The runners of server-run kinds, from the values of ``c.JupyterProgress``.

    ``executor_class`` wins over ``executor``; without either, ``dask`` when a
    ``dask_address`` is given, else ``process``. ``max_workers`` caps the workers of all
    python jobs together (not on Dask: the cluster bounds those), ``max_running_notebooks``
    the kernels of notebook jobs. ``server_address`` gives the server's URL and token
    (asked when a notebook starts: the port is known only once it listens), for the
    kernels of notebook jobs. ``results`` keeps return values and failures.
    """
    runs_items: ItemExecutor
    if executor_class is not None:
        runs_items = executor_class(log=log)
    else:
        kind = executor or ("dask" if dask_address else "process")
        runs_items = make_executor(kind, dask_address=dask_address or None, log=log)
    log.info("jupyter-progress runs python jobs on the %s executor", runs_items.name)
    return {
        JobKind.PYTHON: PythonRunner(runs_items, max_workers=max_workers, results=results, log=log),
        JobKind.NOTEBOOK: NotebookRunner(
            root_dir,
            max_running=max_running_notebooks,
            server_address=server_address,
            results=results,
            log=log,
        ),
    }


class PythonRunner:
    """``python`` jobs: ``target(item)`` for every item, on the configured executor.

    With a ``ResultStore``, every failed item is kept, and return values too (unless its
    ``max_bytes`` is 0).
    """

    def __init__(
        self,
        executor: ItemExecutor,
        *,
        max_workers: int = 32,
        results: ResultStore | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.executor = executor
        self.results = results
        self.log = log or logging.getLogger(__name__)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Jobs cancelled while their task runs: a cancel that comes before the executor
        #: knows the job (its task not yet started, or just admitted) is not lost.
        self._cancelled: set[str] = set()
        #: The server-wide budget of workers; ``None`` where the executor's workers are not
        #: this server's (a Dask cluster bounds its own).
        self.workers = Slots(max_workers, unit="worker") if executor.local_workers else None

    def validate(self, spec: JobSpec) -> None:
        """Refuse a target whose module the server cannot find (a 400, not a failed job).

        A pickled function is loaded only where the items run (unpickling runs code)."""
        if spec.function is not None:
            return
        module = (spec.target or "").partition(":")[0]
        try:
            found = importlib.util.find_spec(module)
        except Exception:
            found = None
        if found is None:
            raise InvalidRequest(f"no module named {module!r} is importable on the server")

    def details(self, spec: JobSpec) -> dict[str, Any]:
        return {
            "executor": self.executor.name,
            "target": spec.target if spec.function is None else PICKLED_TARGET,
            "concurrency": spec.concurrency,
        }

    def start(self, job_id: str, spec: JobSpec, manager: JobManager) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(job_id, spec, manager), name=f"jupyter-progress-job-{job_id}"
        )
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._forget(job_id))

    def _forget(self, job_id: str) -> None:
        self._tasks.pop(job_id, None)
        self._cancelled.discard(job_id)

    async def _run(self, job_id: str, spec: JobSpec, manager: JobManager) -> None:
        if job_id in self._cancelled:
            return  # cancelled before its task first ran
        items = spec.items or []
        concurrency = spec.concurrency
        if self.workers is None or not items:
            await self._run_admitted(job_id, spec, manager, concurrency)
            return
        concurrency = self.workers.share(min(concurrency, len(items)))
        try:
            await self.workers.acquire(job_id, concurrency, manager.job_waiting)
        except asyncio.CancelledError:
            return  # cancelled while it waited: the manager has already ended it
        if job_id in self._cancelled:  # admitted, then cancelled before it could resume
            self.workers.release(job_id)
            return
        try:
            await self._run_admitted(job_id, spec, manager, concurrency)
        finally:
            self.workers.release(job_id)  # the executor has reaped the job's workers

    async def _run_admitted(
        self, job_id: str, spec: JobSpec, manager: JobManager, concurrency: int
    ) -> None:
        items = spec.items or []
        results = self.results
        keep = results is not None and results.keeps_results
        failed_writes = 0  # a results store that fails is logged once; the job goes on

        def results_failed(error: Exception) -> None:
            nonlocal failed_writes
            failed_writes += 1
            if failed_writes == 1:
                self.log.warning(
                    "job %s: its results could not be written (%s); the job goes on",
                    job_id,
                    describe_error(error),
                )

        if results is not None:
            try:
                results.open_job(job_id)
            except Exception as error:
                results_failed(error)
        ref = spec.function if spec.function is not None else spec.target or ""
        target = Target(ref, result_limit=results.max_bytes if results and keep else 0)
        manager.job_started(job_id)

        def on_results(batch: ResultBatch) -> None:
            if results is not None:
                try:
                    keep_batch(results, batch)
                except Exception as error:  # the items still count, the job still ends
                    results_failed(error)
            for entry in batch:
                label = item_label(items[entry[0]])
                manager.item_finished(job_id, error=entry[1], item=label, message=label)

        def keep_batch(results: ResultStore, batch: ResultBatch) -> None:
            """Failures one by one (rare); values in one call per batch (P9)."""
            for index, error, *_ in batch:
                if error is not None:
                    results.add_failure(job_id, index, items[index], error)
            if keep:
                values = [(entry[0], entry[2]) for entry in batch if len(entry) > 2]
                dropped = results.add_values(job_id, values)
                if dropped is not None:
                    self.log.warning("job %s: %s", job_id, dropped)
                    manager.job_progressed(job_id, details={"results_dropped": dropped})

        try:
            await self.executor.run(job_id, target, items, concurrency, on_results)
        except TargetError as error:
            manager.job_finished(job_id, JobStatus.FAILED, str(error))
            return
        except Exception as error:
            self.log.exception("job %s: the %s executor failed", job_id, self.executor.name)
            manager.job_finished(
                job_id, JobStatus.FAILED, f"the executor failed: {describe_error(error)}"
            )
            return
        finally:
            if results is not None:
                try:
                    results.close_job(job_id)
                except Exception as error:
                    results_failed(error)
        try:
            job = manager.get(job_id)
        except JobNotFound:  # cancelled and deleted meanwhile
            return
        summary = f"{job.success} succeeded, {job.errors} failed"
        manager.job_finished(job_id, JobStatus.COMPLETED, summary)

    def cancel(self, job_id: str) -> None:
        if job_id in self._tasks:  # remembered: the task checks it before each step
            self._cancelled.add(job_id)
        if self.workers is not None and job_id in self.workers.waiting:
            self.workers.drop(job_id)  # it never started: it ends at once
            return
        self.executor.cancel(job_id)

    async def shutdown(self) -> None:
        """Stop every job and wait (bounded) until their workers are reaped: none orphaned."""
        if self.workers is not None:
            for job_id in self.workers.waiting:
                self.workers.drop(job_id)
        await self.executor.shutdown()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ----- notebooks -------------------------------------------------------------------------


def python_literal(value: Any) -> str:
    """Python source for a JSON value (``repr`` is right except for non-finite floats)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return repr(value)


def inject_parameters(nb: Any, parameters: dict[str, Any]) -> None:
    """Add the parameters as a new cell after the one tagged ``parameters``, like papermill.

    Without such a cell the parameters go first. A copy that was already executed with
    parameters has its old injected cell replaced.
    """
    import nbformat

    if not parameters:
        return
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    lines = ["# Parameters"] + [f"{name} = {python_literal(v)}" for name, v in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    position = 0
    for index, existing in enumerate(nb.cells):
        if PARAMETERS_TAG in existing.get("metadata", {}).get("tags", []):
            position = index + 1
            break
    nb.cells.insert(position, cell)


def executed_path(source: Path) -> Path:
    """Where the executed copy goes by default: ``report.ipynb`` → ``report.executed.ipynb``."""
    return source.with_name(f"{source.stem}.executed.ipynb")


def cell_title(source: str) -> str:
    """What a cell is about, for the Jobs panel: its first comment line, else its first line.

    ``# Load the data`` gives ``Load the data``; a cell of magics or code gives its first
    non-empty line. Shortened to ``MAX_TITLE_LENGTH``.
    """
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    comment = next((line for line in lines if line.startswith("#")), None)
    title = comment.lstrip("#").strip() if comment is not None else (lines[0] if lines else "")
    if not title and lines:
        title = lines[0]
    return title if len(title) <= MAX_TITLE_LENGTH else title[: MAX_TITLE_LENGTH - 1] + "…"


class LogTail:
    """The last lines a cell wrote to stdout/stderr, at most ``limit`` bytes of UTF-8.

    A carriage return rewrites its line, as on a terminal, so a text progress bar in the
    cell (tqdm to stderr) shows as its latest state rather than as every redraw.
    """

    def __init__(self, limit: int = MAX_LOG_TAIL_BYTES) -> None:
        self.limit = limit
        self.text = ""

    def clear(self) -> None:
        self.text = ""

    def add(self, chunk: str) -> None:
        text = self.text + chunk
        if "\r" in text:
            lines = text.split("\n")
            for position, line in enumerate(lines):
                if "\r" in line:
                    kept = [part for part in line.split("\r") if part]
                    lines[position] = kept[-1] if kept else ""
            text = "\n".join(lines)
        if len(text) > self.limit:  # characters ≤ bytes: cut by characters first (cheap)
            text = text[-self.limit :]
        encoded = text.encode("utf-8", "replace")
        if len(encoded) > self.limit:
            text = encoded[-self.limit :].decode("utf-8", "ignore")
        self.text = text


def write_atomically(path: Path, write: Callable[[IO[str]], object]) -> None:
    """Write a file through a temporary file beside ``path``, renamed over it at the end: a
    reader opening the copy mid-run sees the previous version or this one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _put(text: str, file: IO[str]) -> None:
    file.write(text)


class LiveCopy:
    """The executed copy, rewritten after every cell at a cost that does not grow with it.

    ``nbformat.write`` validates and deep-copies the whole notebook (25 ms for 100 small
    cells); here each cell is serialized once, when it has run (by the C encoder), and a
    write joins the pieces. Sources stay strings rather than lists of lines, which every
    notebook reader accepts. The file is written and renamed over the copy by a writer
    thread, so the kernel goes on with the next cell meanwhile (a rename over a file costs
    ~0.5 ms and more on ext4, which flushes the new data first); cells that end within
    ``COPY_WRITE_INTERVAL`` of the last write share the next one (only the newest version
    is written), so a notebook of quick cells is not a stream of disk writes.
    ``on_written`` callbacks run once the copy holding their cell is on disk. The final
    copy is written by ``nbformat.write`` itself (``write_final``, after any write in
    flight), so it is canonical and validated; an output that changes a cell already run
    (a display update) reaches the copy then.
    """

    def __init__(self, nb: Any, path: Path, log: logging.Logger) -> None:
        self.nb = nb
        self.path = path
        self.log = log
        self._cells = [self._dump(cell) for cell in nb.cells]
        self._changed = threading.Condition()
        self._pending: str | None = None
        self._callbacks: list[Callable[[], object]] = []
        self._busy = False
        self._closed = False
        self._writer: threading.Thread | None = None

    @staticmethod
    def _dump(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)

    def cell_done(self, index: int, on_written: Callable[[], object] | None = None) -> None:
        self._cells[index] = self._dump(self.nb.cells[index])
        text = "".join(
            [
                '{"cells": [\n',
                ",\n".join(self._cells),
                '\n],\n"metadata": ',
                self._dump(self.nb.metadata),
                f',\n"nbformat": {int(self.nb.nbformat)},\n',
                f'"nbformat_minor": {int(self.nb.nbformat_minor)}\n}}\n',
            ]
        )
        with self._changed:
            self._pending = text
            if on_written is not None:
                self._callbacks.append(on_written)
            if self._writer is None:  # one thread for the run: starting one costs ~0.3 ms
                self._writer = threading.Thread(
                    target=self._write_pending, name="jupyter-progress-copy", daemon=True
                )
                self._writer.start()
            self._changed.notify_all()

    def _write_pending(self) -> None:
        written_at = -COPY_WRITE_INTERVAL
        while True:
            with self._changed:
                while self._pending is None and not self._closed:
                    self._changed.wait()
                # Cells that end within COPY_WRITE_INTERVAL of the last write share the next.
                while not self._closed:
                    wait = written_at + COPY_WRITE_INTERVAL - time.monotonic()
                    if wait <= 0:
                        break
                    self._changed.wait(wait)
                if self._pending is None:
                    return
                text, self._pending = self._pending, None
                callbacks, self._callbacks = self._callbacks, []
                self._busy = True
            try:
                write_atomically(self.path, functools.partial(_put, text))
            except Exception as error:  # the final write decides; this one is only logged
                self.log.warning("could not write %s: %s", self.path, error)
            written_at = time.monotonic()
            for callback in callbacks:
                callback()
            with self._changed:
                self._busy = False
                self._changed.notify_all()

    def wait(self) -> None:
        """Until every copy handed over is on disk."""
        with self._changed:
            while self._pending is not None or self._busy:
                self._changed.wait()

    def close(self) -> None:
        """Write what is pending, then end the writer thread."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join()

    def write_final(self) -> None:
        import nbformat

        self.close()
        write_atomically(self.path, lambda file: nbformat.write(self.nb, file))


def _live_client_class() -> type[Any]:
    """An nbclient ``NotebookClient`` that hands every stream output to ``on_stream``
    (imported late: the server loads nbclient only once it runs a notebook)."""
    from nbclient import NotebookClient

    class LiveNotebookClient(NotebookClient):  # type: ignore[misc]
        on_stream: Callable[[str], None] | None = None

        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            if msg.get("msg_type") == "stream" and self.on_stream is not None:
                self.on_stream(str(msg.get("content", {}).get("text", "")))
            return super().process_message(msg, cell, cell_index)

    return LiveNotebookClient


@dataclass(eq=False, kw_only=True)
class _NotebookRun:
    """One notebook job, executed by nbclient on its own thread and event loop.

    Progress goes back to the server's loop with ``call_soon_threadsafe``; cancelling
    cancels the execution task, which shuts the kernel down. The executed copy is
    rewritten (atomically) after every cell; the running cell's title and the tail of its
    output go to the job's ``details``, the tail at most ``LOG_TAIL_PUSHES`` times a second.
    """

    job_id: str
    source: Path
    output: Path
    parameters: dict[str, Any]
    timeout: float | None
    manager: JobManager
    loop: asyncio.AbstractEventLoop
    log: logging.Logger
    forget: Callable[[str], object]
    kernel_env: dict[str, str] = field(default_factory=dict)
    write_every_cell: bool = True
    results: ResultStore | None = None
    cancelled: threading.Event = field(init=False, default_factory=threading.Event)
    thread: threading.Thread = field(init=False)
    _thread_loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)
    _task: asyncio.Task[None] | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _tail: LogTail = field(init=False, default_factory=LogTail)
    _tail_pushed_at: float = field(init=False, default=0.0)
    _tail_timer: asyncio.TimerHandle | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(
            target=self._thread_main, name=f"jupyter-progress-nb-{self.job_id[:8]}", daemon=True
        )

    def _post(self, callback: Any, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the server's loop is closed
            self.loop.call_soon_threadsafe(lambda: callback(*args, **kwargs))

    def cancel(self) -> None:
        """Cancel the execution task once (a second cancel would cut the kernel's cleanup)."""
        if self.cancelled.is_set():
            return
        self.cancelled.set()
        with self._lock:
            if self._thread_loop is not None and self._task is not None:
                with contextlib.suppress(RuntimeError):
                    self._thread_loop.call_soon_threadsafe(self._task.cancel)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as error:  # never let a notebook take the server down
            self.log.exception("notebook job %s crashed", self.job_id)
            self._post(
                self.manager.job_finished, self.job_id, JobStatus.FAILED, describe_error(error)
            )
        finally:
            self._post(self.forget, self.job_id)

    async def _main(self) -> None:
        with self._lock:
            self._thread_loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()  # type: ignore[assignment]
        if self.cancelled.is_set():
            return
        try:
            await self._execute()
        except asyncio.CancelledError:
            self.log.info("notebook job %s: execution stopped", self.job_id)

    # ----- the log tail (on the run's own loop) -----

    def _on_stream(self, text: str) -> None:
        self._tail.add(text)
        if self._tail_timer is not None:
            return  # a push is already due; it will carry this text too
        wait = self._tail_pushed_at + 1 / LOG_TAIL_PUSHES - time.monotonic()
        if wait <= 0:
            self._push_tail()
        else:
            self._tail_timer = asyncio.get_running_loop().call_later(wait, self._push_tail)

    def _push_tail(self) -> None:
        self._tail_timer = None
        self._tail_pushed_at = time.monotonic()
        self._post(self.manager.job_progressed, self.job_id, details={"log_tail": self._tail.text})

    def _start_cell(self, position: int, count: int, title: str) -> None:
        if self._tail_timer is not None:
            self._tail_timer.cancel()
            self._tail_timer = None
        self._tail.clear()
        details = {"cell": position, "cell_count": count, "cell_title": title, "log_tail": ""}
        self._post(self.manager.job_progressed, self.job_id, details=details)

    def _end_cell(self) -> None:
        """The cell's last output reaches the job before its item does."""
        if self._tail_timer is not None:
            self._tail_timer.cancel()
            self._push_tail()

    async def _execute(self) -> None:
        import nbformat
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        nb = nbformat.read(self.source, as_version=4)
        inject_parameters(nb, self.parameters)
        code_cells = [index for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        count = len(code_cells)
        self._post(self.manager.job_started, self.job_id, total=count)
        client = _live_client_class()(
            nb,
            timeout=self.timeout,
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(self.source.parent)}},
        )
        client.on_stream = self._on_stream
        copy = LiveCopy(nb, self.output, self.log)
        status, message = JobStatus.COMPLETED, f"{count} cells executed"
        try:
            async with client.async_setup_kernel(env={**os.environ, **self.kernel_env}):
                await self._record_language(client, nb)
                for position, index in enumerate(code_cells):
                    title = cell_title(nb.cells[index].source)
                    item = f"cell {position + 1}"
                    self._start_cell(position, count, title)
                    try:
                        await client.async_execute_cell(
                            nb.cells[index], index, execution_count=client.code_cells_executed + 1
                        )
                    except CellExecutionError as error:
                        text = f"{error.ename}: {error.evalue}"
                        status, message = JobStatus.FAILED, f"{item} failed: {text}"
                        self._cell_failed(position, item, text)
                        break
                    except (CellTimeoutError, DeadKernelError) as error:
                        text = describe_error(error)
                        status, message = JobStatus.FAILED, f"{item} failed: {text}"
                        self._cell_failed(position, item, text)
                        break
                    self._end_cell()
                    done = functools.partial(
                        self._post,
                        self.manager.item_finished,
                        self.job_id,
                        item=item,
                        message=f"{item} of {count}",
                    )
                    if self.write_every_cell:  # counted once the copy holding it is on disk
                        copy.cell_done(index, on_written=done)
                    else:
                        done()
                await self._flush_kernel_reports(client)
                client.set_widgets_metadata()
        except asyncio.CancelledError:
            status, message = JobStatus.CANCELLED, "cancelled"
            raise
        except Exception as error:
            self.log.warning("notebook job %s failed: %s", self.job_id, error)
            status, message = JobStatus.FAILED, describe_error(error)
        finally:
            try:
                copy.write_final()
            except Exception as error:
                self.log.warning("could not write %s: %s", self.output, error)
                if status is not JobStatus.CANCELLED:
                    status, message = JobStatus.FAILED, f"could not write the output: {error}"
            if status is not JobStatus.CANCELLED:
                self._post(self.manager.job_finished, self.job_id, status, message)

    async def _flush_kernel_reports(self, client: Any) -> None:
        """Let the kernel send its bars' final reports before it is shut down at once.

        A bar's end only queues its report (a loop never waits on the network), and an
        immediate shutdown skips the kernel's exit flush: the inner bars of a notebook job
        would stay ``processing``. Bounded; a kernel that cannot answer costs nothing more.
        """
        from jupyter_core.utils import ensure_async

        try:
            msg_id = await ensure_async(
                client.kc.execute(FLUSH_KERNEL_REPORTS, silent=True, store_history=False)
            )
            await asyncio.wait_for(client.async_wait_for_reply(msg_id), KERNEL_FLUSH_SECONDS + 5)
        except Exception as error:
            self.log.debug("notebook job %s: no report flush in its kernel: %s", self.job_id, error)

    def _cell_failed(self, position: int, item: str, error: str) -> None:
        self._end_cell()
        if self.results is not None:
            self._post(self.results.add_failure, self.job_id, position, item, error)
        self._post(self.manager.item_finished, self.job_id, error=error, item=item)

    async def _record_language(self, client: Any, nb: Any) -> None:
        """Keep the kernel's ``language_info`` in the output, as ``nbclient.execute`` does."""
        from jupyter_core.utils import ensure_async

        reply = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
        language = (reply or {}).get("content", {}).get("language_info")
        if language:
            nb.metadata["language_info"] = language


class NotebookRunner:
    """``notebook`` jobs: execute a notebook headlessly, one progress item per code cell."""

    def __init__(
        self,
        root_dir: str,
        *,
        max_running: int = 2,
        server_address: Callable[[], tuple[str, str]] | None = None,
        write_every_cell: bool = True,
        results: ResultStore | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.results = results
        self.root_dir = Path(root_dir).resolve()
        self.server_address = server_address
        self.write_every_cell = write_every_cell
        self.log = log or logging.getLogger(__name__)
        self._runs: dict[str, _NotebookRun] = {}
        #: The server-wide budget of kernels (``max_running_notebooks``).
        self.kernels = Slots(max_running, unit="kernel")
        self._admitting: dict[str, asyncio.Task[None]] = {}

    def kernel_env(self, job_id: str) -> dict[str, str]:
        """What the job's kernel is told: its job (so ``track``/``tqdm`` bars inside are
        the job's children) and how to reach this server."""
        env = {PARENT_ENV: job_id}
        if self.server_address is not None:
            try:
                url, token = self.server_address()
            except Exception:
                self.log.exception("the server's address is unknown to notebook job %s", job_id)
            else:
                env.update({URL_ENV: url, TOKEN_ENV: token})
        return env

    def resolve(self, path: str, field: str) -> Path:
        """An absolute path for ``path`` (relative to the root dir), or 400 if it leaves it."""
        candidate = (self.root_dir / path).resolve()
        if candidate != self.root_dir and self.root_dir not in candidate.parents:
            raise InvalidRequest(f"{field!r} must be inside the server's root directory")
        return candidate

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root_dir).as_posix()

    def paths(self, spec: JobSpec) -> tuple[Path, Path]:
        source = self.resolve(spec.path or "", "path")
        output = (
            self.resolve(spec.output_path, "output_path")
            if spec.output_path
            else executed_path(source)
        )
        return source, output

    def validate(self, spec: JobSpec) -> None:
        import nbformat

        source, output = self.paths(spec)
        if not source.is_file():
            raise InvalidRequest(f"no notebook at {spec.path!r}")
        if output == source:
            raise InvalidRequest("'output_path' must not be the notebook itself")
        try:
            nbformat.read(source, as_version=4)
        except Exception as error:
            raise InvalidRequest(f"{spec.path!r} is not a readable notebook: {error}") from None

    def details(self, spec: JobSpec) -> dict[str, Any]:
        source, output = self.paths(spec)
        return {"path": self.relative(source), "output_path": self.relative(output)}

    def start(self, job_id: str, spec: JobSpec, manager: JobManager) -> None:
        source, output = self.paths(spec)
        run = _NotebookRun(
            job_id=job_id,
            source=source,
            output=output,
            parameters=dict(spec.parameters),
            timeout=spec.timeout,
            manager=manager,
            loop=asyncio.get_running_loop(),
            log=self.log,
            forget=self._forget,
            kernel_env=self.kernel_env(job_id),
            write_every_cell=self.write_every_cell,
            results=self.results,
        )
        if self.results is not None:
            try:
                self.results.delete(job_id)  # nothing of an earlier job with this id
            except Exception as error:  # a failing results store never stops a job
                self.log.warning("job %s: its old results could not be deleted: %s", job_id, error)
        self._runs[job_id] = run
        task = asyncio.get_running_loop().create_task(
            self._admit(run), name=f"jupyter-progress-nb-wait-{job_id}"
        )
        self._admitting[job_id] = task
        task.add_done_callback(lambda _: self._admitting.pop(job_id, None))

    async def _admit(self, run: _NotebookRun) -> None:
        """Start the run once a kernel is free (``max_running_notebooks``), in arrival order."""
        try:
            await self.kernels.acquire(run.job_id, 1, run.manager.job_waiting)
        except asyncio.CancelledError:
            self._runs.pop(run.job_id, None)  # cancelled while it waited: it never ran
            return
        run.thread.start()

    def _forget(self, job_id: str) -> None:
        """The run's thread is done and its kernel shut down: its kernel slot is free."""
        self._runs.pop(job_id, None)
        self.kernels.release(job_id)

    def cancel(self, job_id: str) -> None:
        if job_id in self.kernels.waiting:
            self.kernels.drop(job_id)
            return
        run = self._runs.get(job_id)
        if run is not None:
            run.cancel()

    async def shutdown(self) -> None:
        for job_id in self.kernels.waiting:
            self.kernels.drop(job_id)
        runs = [run for run in self._runs.values() if run.thread.is_alive()]
        for run in runs:
            run.cancel()
        for run in runs:
            await asyncio.to_thread(run.thread.join, 10)
        self._runs.clear()
