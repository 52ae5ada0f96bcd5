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
import importlib.util
import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .caps import Slots
from .exceptions import InvalidRequest, JobNotFound
from .executors import ItemExecutor, ResultBatch, TargetError, describe_error, make_executor
from .models import JobKind, JobStatus

if TYPE_CHECKING:
    from .manager import JobManager, JobRunner
    from .models import JobSpec

MAX_LABEL_LENGTH = 200
#: Seconds a stopping server waits for a job's workers to be reaped (they get SIGTERM,
#: then SIGKILL after ``executors.TERMINATE_GRACE``).
SHUTDOWN_WAIT = 5.0
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


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
    log: logging.Logger,
) -> dict[JobKind, JobRunner]:
    """The runners of server-run kinds, from the values of ``c.JupyterProgress``.

    ``executor_class`` wins over ``executor``; without either, ``dask`` when a
    ``dask_address`` is given, else ``process``. ``max_workers`` caps the workers of all
    python jobs together (not on Dask: the cluster bounds those), ``max_running_notebooks``
    the kernels of notebook jobs.
    """
    runs_items: ItemExecutor
    if executor_class is not None:
        runs_items = executor_class(log=log)
    else:
        kind = executor or ("dask" if dask_address else "process")
        runs_items = make_executor(kind, dask_address=dask_address or None, log=log)
    log.info("jupyter-progress runs python jobs on the %s executor", runs_items.name)
    return {
        JobKind.PYTHON: PythonRunner(runs_items, max_workers=max_workers, log=log),
        JobKind.NOTEBOOK: NotebookRunner(root_dir, max_running=max_running_notebooks, log=log),
    }


class PythonRunner:
    """``python`` jobs: ``target(item)`` for every item, on the configured executor."""

    def __init__(
        self,
        executor: ItemExecutor,
        *,
        max_workers: int = 32,
        log: logging.Logger | None = None,
    ) -> None:
        self.executor = executor
        self.log = log or logging.getLogger(__name__)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: The server-wide budget of workers; ``None`` where the executor's workers are not
        #: this server's (a Dask cluster bounds its own).
        self.workers = Slots(max_workers, unit="worker") if executor.local_workers else None

    def validate(self, spec: JobSpec) -> None:
        """Refuse a target whose module the server cannot find (a 400, not a failed job)."""
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
            "target": spec.target,
            "concurrency": spec.concurrency,
        }

    def start(self, job_id: str, spec: JobSpec, manager: JobManager) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(job_id, spec, manager), name=f"jupyter-progress-job-{job_id}"
        )
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def _run(self, job_id: str, spec: JobSpec, manager: JobManager) -> None:
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
        try:
            await self._run_admitted(job_id, spec, manager, concurrency)
        finally:
            self.workers.release(job_id)  # the executor has reaped the job's workers

    async def _run_admitted(
        self, job_id: str, spec: JobSpec, manager: JobManager, concurrency: int
    ) -> None:
        items = spec.items or []
        manager.job_started(job_id)

        def on_results(batch: ResultBatch) -> None:
            for index, error in batch:
                label = item_label(items[index])
                manager.item_finished(job_id, error=error, item=label, message=label)

        try:
            await self.executor.run(job_id, spec.target or "", items, concurrency, on_results)
        except TargetError as error:
            manager.job_finished(job_id, JobStatus.FAILED, str(error))
            return
        except Exception as error:
            self.log.exception("job %s: the %s executor failed", job_id, self.executor.name)
            manager.job_finished(
                job_id, JobStatus.FAILED, f"the executor failed: {describe_error(error)}"
            )
            return
        try:
            job = manager.get(job_id)
        except JobNotFound:  # cancelled and deleted meanwhile
            return
        summary = f"{job.success} succeeded, {job.errors} failed"
        manager.job_finished(job_id, JobStatus.COMPLETED, summary)

    def cancel(self, job_id: str) -> None:
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


@dataclass(eq=False, kw_only=True)
class _NotebookRun:
    """One notebook job, executed by nbclient on its own thread and event loop.

    Progress goes back to the server's loop with ``call_soon_threadsafe``; cancelling
    cancels the execution task, which shuts the kernel down.
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
    cancelled: threading.Event = field(init=False, default_factory=threading.Event)
    thread: threading.Thread = field(init=False)
    _thread_loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)
    _task: asyncio.Task[None] | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

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

    async def _execute(self) -> None:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        nb = nbformat.read(self.source, as_version=4)
        inject_parameters(nb, self.parameters)
        code_cells = [index for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        self._post(self.manager.job_started, self.job_id, total=len(code_cells))
        client = NotebookClient(
            nb,
            timeout=self.timeout,
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(self.source.parent)}},
        )
        status, message = JobStatus.COMPLETED, f"{len(code_cells)} cells executed"
        try:
            async with client.async_setup_kernel():
                await self._record_language(client, nb)
                for number, index in enumerate(code_cells, 1):
                    item = f"cell {number}"
                    try:
                        await client.async_execute_cell(
                            nb.cells[index], index, execution_count=client.code_cells_executed + 1
                        )
                    except CellExecutionError as error:
                        text = f"{error.ename}: {error.evalue}"
                        status, message = JobStatus.FAILED, f"{item} failed: {text}"
                        self._post(self.manager.item_finished, self.job_id, error=text, item=item)
                        break
                    except (CellTimeoutError, DeadKernelError) as error:
                        text = describe_error(error)
                        status, message = JobStatus.FAILED, f"{item} failed: {text}"
                        self._post(self.manager.item_finished, self.job_id, error=text, item=item)
                        break
                    self._post(
                        self.manager.item_finished,
                        self.job_id,
                        item=item,
                        message=f"{item} of {len(code_cells)}",
                    )
                client.set_widgets_metadata()
        except asyncio.CancelledError:
            status, message = JobStatus.CANCELLED, "cancelled"
            raise
        except Exception as error:
            self.log.warning("notebook job %s failed: %s", self.job_id, error)
            status, message = JobStatus.FAILED, describe_error(error)
        finally:
            try:
                self.output.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, self.output)
            except Exception as error:
                self.log.warning("could not write %s: %s", self.output, error)
                if status is not JobStatus.CANCELLED:
                    status, message = JobStatus.FAILED, f"could not write the output: {error}"
            if status is not JobStatus.CANCELLED:
                self._post(self.manager.job_finished, self.job_id, status, message)

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
        self, root_dir: str, *, max_running: int = 2, log: logging.Logger | None = None
    ) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.log = log or logging.getLogger(__name__)
        self._runs: dict[str, _NotebookRun] = {}
        #: The server-wide budget of kernels (``max_running_notebooks``).
        self.kernels = Slots(max_running, unit="kernel")
        self._admitting: dict[str, asyncio.Task[None]] = {}

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
        )
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
