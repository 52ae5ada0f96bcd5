"""Where a ``python`` job's items run: worker processes, threads, or a Dask cluster.

One small interface (``ItemExecutor``) with three implementations. The base class holds
what they share (no work without items, one job object per running job, cancel and
shutdown by job id); each implementation only opens its kind of job (``_ProcessJob``,
``_ThreadJob``, ``_DaskJob``), which runs the items and stops when cancelled. Every one
keeps the server's event loop free: the blocking parts live in threads, worker
processes or on a Dask cluster, and results come back to the loop in batches through
``loop.call_soon_threadsafe`` (one wake-up of the loop per batch, not per item).

An item's outcome is ``None`` (it succeeded) or a one-line ``"TypeName: message"``; a
traceback never leaves the worker. ``ItemExecutor.run`` raises ``TargetError`` when the
target cannot be loaded at all, which fails the whole job rather than every item.

The target is ``"package.module:function"`` or a function pickled by value (cloudpickle
bytes, from a notebook), loaded where the items run. Wrapped in a ``Target`` with a
``result_limit``, each item's return value comes back too, as JSON text encoded where the
item ran (a batch entry ``(index, error, value)``); without one, entries are
``(index, error)`` and no value is encoded or moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import multiprocessing
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

#: ``(item index, error or None)`` pairs, delivered on the event loop; ``(index, error,
#: value)`` when the job keeps results (``value``: JSON text, ``None`` for a failed item or
#: a ``None`` result, ``TOO_LARGE`` for one over the limit).
ResultBatch = list[tuple[Any, ...]]
ResultSink = Callable[[ResultBatch], None]
#: The value of an item whose JSON is longer than the job's ``result_limit``.
TOO_LARGE = ""

MAX_ERROR_LENGTH = 1000
#: Largest number of items handed to one worker process at a time (running + queued).
MAX_PREFETCH = 64
#: Seconds of work queued behind a worker's running item, once item times are measured:
#: short items travel in batches (fewer pipe round trips), long ones one at a time, so a
#: job's ``concurrency`` items really run at once.
PREFETCH_SECONDS = 0.05
#: Weight of the newest measurement in a job's running mean of item times.
ITEM_TIME_WEIGHT = 0.25
#: Seconds the Dask executor waits to top a job up, unless half its items are done: items
#: that finish together then cost the scheduler one graph update, not one each.
REFILL_DELAY = 0.005
#: Most results handed to the job manager in one turn of the event loop.
MAX_DELIVERY = 256
#: Seconds a worker process gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE = 1.0


class TargetError(Exception):
    """The job's target could not be loaded; no item can run."""


@dataclass(frozen=True)
class Target:
    """What a job runs, and whether its results come back.

    ``ref`` is ``"package.module:function"`` or cloudpickle bytes of a function;
    ``result_limit`` > 0 returns each item's value as JSON text of at most that many
    characters (longer ones come back as ``TOO_LARGE``); 0 returns no values.
    """

    ref: str | bytes
    result_limit: int = 0

    @property
    def label(self) -> str:
        return self.ref if isinstance(self.ref, str) else "the pickled function"


def as_target(target: str | bytes | Target) -> Target:
    return target if isinstance(target, Target) else Target(target)


def _jsonable(value: Any) -> Any:
    """For ``json.dumps``: NumPy values and arrays as lists and numbers, others as text."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return repr(value)


#: One encoder for every value: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=_jsonable, allow_nan=False, separators=(",", ":"))


def encode_result(value: Any, limit: int) -> str | None:
    """An item's return value as JSON text (where it ran: the server gets a string).

    ``None`` for ``None``; values JSON cannot hold become their ``repr`` (as do NaN and
    infinities, which JSON has no words for); ``TOO_LARGE`` past ``limit`` characters.
    """
    if value is None:
        return None
    if type(value) is int:  # the commonest value, 10x faster than an encoder
        text = str(value)
    else:
        try:
            text = _ENCODER.encode(value)
        except (ValueError, TypeError, RecursionError):
            text = json.dumps(repr(value))
    return text if len(text) <= limit else TOO_LARGE


def describe_error(error: BaseException) -> str:
    """``TypeName: message``: what a user needs to fix an item, without a traceback."""
    text = str(error)
    name = type(error).__name__
    return (f"{name}: {text}" if text else name)[:MAX_ERROR_LENGTH]


def load_target(target: str | bytes | Target) -> Callable[[Any], Any]:
    """Import ``package.module:function`` or unpickle the function (cloudpickle);
    ``TargetError`` with the reason if that fails."""
    ref = as_target(target).ref
    if isinstance(ref, bytes):
        try:
            import cloudpickle

            function = cloudpickle.loads(ref)
        except BaseException as error:
            raise TargetError(
                f"cannot load the pickled function: {describe_error(error)} (the server's "
                "environment must have the packages and the Python version it needs)"
            ) from None
        if not callable(function):
            raise TargetError("the pickled object is not callable")
        return function
    module_name, _, attribute = ref.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:
        raise TargetError(f"cannot load {ref!r}: {describe_error(error)}") from None
    if not callable(function):
        raise TargetError(f"{ref!r} is not callable")
    return function


def call_item(function: Callable[[Any], Any], item: Any, limit: int) -> tuple[Any, ...]:
    """``(error, value)`` or ``(error,)`` of one item: the tail of its batch entry."""
    error = value = None
    try:
        result = function(item)
        if limit:
            value = encode_result(result, limit)
    except BaseException as exc:  # an item may even call sys.exit(); count it
        error = describe_error(exc)
    return (error, value) if limit else (error,)


class _LoopSink:
    """Collects results from any thread and hands them to the loop in batches."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: ResultSink) -> None:
        self._loop = loop
        self._sink = sink
        self._lock = threading.Lock()
        self._pending: ResultBatch = []
        self._scheduled = False

    def add(self, results: ResultBatch) -> None:
        if not results:
            return
        with self._lock:
            self._pending.extend(results)
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        """Hand over at most ``MAX_DELIVERY`` results, so the loop stays responsive."""
        with self._lock:
            batch = self._pending[:MAX_DELIVERY]
            del self._pending[:MAX_DELIVERY]
            more = bool(self._pending)
            self._scheduled = more
        if more:
            self._loop.call_soon(self._deliver)
        if batch:
            self._sink(batch)

    def flush(self) -> None:
        """Deliver what is left now (on the loop): the job ends after its last item."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._sink(batch)

    def add_on_loop(self, results: ResultBatch) -> None:
        """From the loop itself: deliver at once, after anything still pending."""
        self.flush()
        if results:
            self._sink(results)


class _ExecutorJob(Protocol):
    """One job's items on one executor."""

    async def run(self) -> None:
        """Run every item (or until cancelled); ``TargetError`` if none can run."""

    def cancel(self) -> None:
        """Start no new item, and stop running ones where the executor can."""


class _OpeningJob:
    """Holds a job's place while ``open_job`` runs (a target loading, a client connecting),
    so a cancel in that window is kept rather than lost."""

    def __init__(self) -> None:
        self.cancelled = False

    async def run(self) -> None:
        """Nothing to run: ``ItemExecutor.run`` replaces it with the opened job."""

    def cancel(self) -> None:
        self.cancelled = True


class ItemExecutor:
    """Runs ``target(item)`` for every item of a job, ``concurrency`` at a time.

    A template: a subclass implements ``open_job``, and ``run``, ``cancel`` and
    ``shutdown`` work for it. A custom executor may instead override those three.
    """

    #: Name used in configuration and in a job's ``details``.
    name = ""
    #: Whether a job's ``concurrency`` means workers of this server (processes or threads),
    #: which count against ``max_workers``. A cluster's workers are bounded by the cluster.
    local_workers = True

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger(__name__)
        self._jobs: dict[str, _ExecutorJob] = {}

    async def open_job(
        self, job_id: str, target: Target, items: Sequence[Any], concurrency: int, sink: _LoopSink
    ) -> _ExecutorJob:
        """The job object that will run these items, reporting to ``sink``."""
        raise NotImplementedError(f"{type(self).__name__} must implement open_job (or run)")

    async def run(
        self,
        job_id: str,
        target: str | bytes | Target,
        items: Sequence[Any],
        concurrency: int,
        on_results: ResultSink,
    ) -> None:
        """Run every item (or until ``cancel``); ``on_results`` is called on the loop."""
        if not items:
            return
        sink = _LoopSink(asyncio.get_running_loop(), on_results)
        opening = _OpeningJob()
        self._jobs[job_id] = opening  # before the first await: a cancel from now on counts
        try:
            job = await self.open_job(job_id, as_target(target), items, concurrency, sink)
            if opening.cancelled:
                return  # cancelled while it opened: no item starts, no worker is made
            self._jobs[job_id] = job
            await job.run()
        finally:
            self._jobs.pop(job_id, None)
            sink.flush()

    def cancel(self, job_id: str) -> None:
        """Start no new item of the job, and stop running ones where possible."""
        job = self._jobs.get(job_id)
        if job is not None:
            job.cancel()

    async def shutdown(self) -> None:
        """Stop everything; called once when the server stops."""
        for job in list(self._jobs.values()):
            job.cancel()


# ----- worker processes -------------------------------------------------------------------


def _worker_main(conn: Connection, target: Target, sys_path: list[str]) -> None:
    """A worker process: load the target once, then run the batches it is sent."""
    sys.path[:] = sys_path
    limit = target.result_limit
    try:
        function = load_target(target)
    except TargetError as failure:
        conn.send(("target_error", str(failure)))
        return
    conn.send(("ready", None))
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        for index, item in batch:
            conn.send((index, *call_item(function, item, limit)))


class _Worker:
    """One worker process and the items it holds, oldest (the running one) first."""

    def __init__(self, context: Any, target: Target) -> None:
        parent, child = context.Pipe(duplex=True)
        self.conn: Connection = parent
        self.process = context.Process(
            target=_worker_main,
            args=(child, target, list(sys.path)),
            name="jupyter-progress-worker",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.outstanding: deque[int] = deque()
        self.ready = False
        self.dead = False
        #: When the worker last started on work it was given or finished an item (monotonic).
        self.busy_since = 0.0

    def stop(self, *, force: bool) -> None:
        if force:
            with contextlib.suppress(ValueError):  # already reaped and closed
                if self.process.is_alive():
                    self.process.terminate()
        else:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)

    def reap(self, timeout: float) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(ValueError):
            self.process.close()


@dataclass(eq=False)
class _ProcessJob:
    """The worker processes of one job and the thread that feeds and watches them.

    The thread hands each worker one item at a time until measured item times show that
    items are short; then it queues up to ``PREFETCH_SECONDS`` of work per worker (fewer
    at the tail), and only while every worker of the job is running: a worker never holds
    a queue while another is idle or still starting. It reads results as they come, and
    notices a worker that died: the item it was running counts as an error, the items
    queued behind it go back to the pending queue, and a fresh worker takes its place.
    """

    context: Any
    target: Target
    items: Sequence[Any]
    concurrency: int
    sink: _LoopSink
    log: logging.Logger
    pending: deque[int] = field(init=False)
    workers: list[_Worker] = field(init=False, default_factory=list)
    cancelled: threading.Event = field(init=False, default_factory=threading.Event)
    failure: str | None = field(init=False, default=None)
    #: Running mean of one item's time (seconds), ``None`` until a result is measured.
    item_seconds: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.pending = deque(range(len(self.items)))

    def cancel(self) -> None:
        self.cancelled.set()
        for worker in list(self.workers):
            worker.stop(force=True)

    async def run(self) -> None:
        await asyncio.to_thread(self._run_blocking)
        if self.failure is not None and not self.cancelled.is_set():
            raise TargetError(self.failure)

    def _run_blocking(self) -> None:
        try:
            self._supervise()
        finally:
            force = self.cancelled.is_set() or self.failure is not None
            for worker in self.workers:
                worker.stop(force=force)
            for worker in self.workers:
                worker.reap(TERMINATE_GRACE)

    def _supervise(self) -> None:
        size = min(self.concurrency, len(self.items))
        self.workers = [_Worker(self.context, self.target) for _ in range(size)]
        while not self.cancelled.is_set() and (
            self.pending or any(worker.outstanding for worker in self.workers)
        ):
            self._feed()
            waitables: list[Any] = []
            for worker in self.workers:
                waitables.append(worker.conn)
                waitables.append(worker.process.sentinel)
            ready = set(wait(waitables, timeout=0.5))
            results: ResultBatch = []
            for worker in list(self.workers):
                if worker.conn in ready or worker.process.sentinel in ready:
                    self._drain(worker, results)
                if self.failure is not None:
                    return
            self.sink.add(results)
            if self.cancelled.is_set():
                return
            self._replace_dead()

    def _feed(self) -> None:
        live = [worker for worker in self.workers if worker.ready and not worker.dead]
        for worker in live:  # first, one item for every idle worker
            if not worker.outstanding:
                self._send(worker, 1)
        if not self.pending or len(live) < len(self.workers) or self.item_seconds is None:
            return  # a worker is starting, or nothing says the items are short
        depth = 1 + min(
            MAX_PREFETCH - 1,
            len(self.pending) // (4 * len(live)),
            int(PREFETCH_SECONDS / max(self.item_seconds, 1e-9)),
        )
        for worker in live:
            self._send(worker, depth - len(worker.outstanding))

    def _send(self, worker: _Worker, count: int) -> None:
        count = min(count, len(self.pending))
        if count <= 0:
            return
        batch = [self.pending.popleft() for _ in range(count)]
        try:
            worker.conn.send([(index, self.items[index]) for index in batch])
        except (OSError, ValueError):
            self.pending.extendleft(reversed(batch))
            return
        if not worker.outstanding:
            worker.busy_since = time.monotonic()
        worker.outstanding.extend(batch)

    def _measure(self, worker: _Worker, finished: int) -> None:
        """Fold the time of the ``finished`` items just read into the job's mean."""
        now = time.monotonic()
        seconds = (now - worker.busy_since) / finished
        worker.busy_since = now
        mean = self.item_seconds
        self.item_seconds = seconds if mean is None else mean + ITEM_TIME_WEIGHT * (seconds - mean)

    def _drain(self, worker: _Worker, results: ResultBatch) -> None:
        """Read what the worker sent; notice if it died."""
        finished = 0
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                first = message[0]
                if first == "ready":
                    worker.ready = True
                elif first == "target_error":
                    self.failure = message[1]
                    return
                else:
                    worker.outstanding.remove(first)
                    results.append(message)
                    finished += 1
        except (EOFError, OSError):
            worker.dead = True
        if finished:
            self._measure(worker, finished)
        if not worker.dead and not worker.process.is_alive():
            worker.dead = True
        if worker.dead and not self.cancelled.is_set():
            self._bury(worker, results)

    def _bury(self, worker: _Worker, results: ResultBatch) -> None:
        worker.process.join(TERMINATE_GRACE)
        code = worker.process.exitcode
        if worker.outstanding:
            crashed = worker.outstanding.popleft()
            self.log.warning(
                "worker process %s exited (code %s) while running item %s",
                worker.process.pid,
                code,
                crashed,
            )
            error = f"WorkerCrashed: the worker process exited (code {code}) on this item"
            results.append((crashed, error, None) if self.target.result_limit else (crashed, error))
            self.pending.extendleft(reversed(worker.outstanding))
            worker.outstanding.clear()
        elif not worker.ready:
            self.failure = f"a worker process exited (code {code}) before it could start"

    def _replace_dead(self) -> None:
        for position, worker in enumerate(self.workers):
            if worker.dead:
                worker.reap(TERMINATE_GRACE)
                self.workers[position] = _Worker(self.context, self.target)


def default_mp_context() -> Any:
    """``forkserver`` where it exists: cheap to start, and safe in a threaded server."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessExecutor(ItemExecutor):
    """Items run in worker processes owned by the job (``concurrency`` of them).

    Unlike ``concurrent.futures.ProcessPoolExecutor``, a worker that crashes or is killed
    costs only the item it was running (counted as an error); it is replaced and the job
    goes on. Cancelling terminates the job's workers.
    """

    name = "process"

    def __init__(self, log: logging.Logger | None = None, mp_context: Any = None) -> None:
        super().__init__(log)
        self.mp_context = mp_context or default_mp_context()

    async def open_job(
        self, job_id: str, target: Target, items: Sequence[Any], concurrency: int, sink: _LoopSink
    ) -> _ProcessJob:
        return _ProcessJob(self.mp_context, target, items, concurrency, sink, self.log)


# ----- threads ---------------------------------------------------------------------------


@dataclass(eq=False)
class _ThreadJob:
    """``concurrency`` threads pulling items from one shared queue."""

    function: Callable[[Any], Any]
    items: Sequence[Any]
    concurrency: int
    sink: _LoopSink
    thread_name: str
    result_limit: int = 0
    next_index: int = field(init=False, default=0)
    lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    cancelled: threading.Event = field(init=False, default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()

    async def run(self) -> None:
        threads = [
            threading.Thread(target=self.work, name=self.thread_name, daemon=True)
            for _ in range(min(self.concurrency, len(self.items)))
        ]
        for thread in threads:
            thread.start()
        await asyncio.to_thread(_join_all, threads)

    def take(self) -> int | None:
        with self.lock:
            if self.cancelled.is_set() or self.next_index >= len(self.items):
                return None
            self.next_index += 1
            return self.next_index - 1

    def work(self) -> None:
        while (index := self.take()) is not None:
            outcome = call_item(self.function, self.items[index], self.result_limit)
            self.sink.add([(index, *outcome)])


class ThreadExecutor(ItemExecutor):
    """Items run in threads of the server process: no start-up cost, shared memory.

    Suits I/O-bound targets. A running item cannot be stopped (Python threads cannot be
    killed): cancelling only keeps new items from starting.
    """

    name = "thread"

    async def open_job(
        self, job_id: str, target: Target, items: Sequence[Any], concurrency: int, sink: _LoopSink
    ) -> _ThreadJob:
        function = await asyncio.to_thread(load_target, target)
        name = f"jupyter-progress-{job_id[:8]}"
        return _ThreadJob(function, items, concurrency, sink, name, target.result_limit)


def _join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


# ----- Dask distributed -------------------------------------------------------------------


@dataclass(eq=False)
class _DaskJob:
    """The futures of one job on a Dask cluster, topped up to ``concurrency`` at a time.

    Top-ups go in one ``client.map`` call each, a few milliseconds after an item finishes
    (at once when half the items in flight are done): one call is one graph update on
    the scheduler, where a ``submit`` per item costs one each.
    """

    client: Any
    function: Callable[[Any], Any]
    job_id: str
    items: Sequence[Any]
    concurrency: int
    sink: _LoopSink
    log: logging.Logger
    result_limit: int = 0
    futures: set[Any] = field(init=False, default_factory=set)
    index_of: dict[Any, int] = field(init=False, default_factory=dict)
    next_index: int = field(init=False, default=0)
    cancelled: bool = field(init=False, default=False)
    cancelling: asyncio.Future[Any] | None = field(init=False, default=None)
    _completed: Any = field(init=False, default=None)
    _refill: asyncio.TimerHandle | None = field(init=False, default=None)
    _to_deliver: list[Any] = field(init=False, default_factory=list)
    _delivery: asyncio.Future[None] | None = field(init=False, default=None)

    def cancel(self) -> None:
        self.cancelled = True
        if self.futures:
            self.cancelling = asyncio.ensure_future(self.client.cancel(list(self.futures)))
            self.cancelling.add_done_callback(_log_failure(self.log, "cancel Dask futures"))

    async def run(self) -> None:
        from distributed import as_completed

        loop = asyncio.get_running_loop()
        try:
            self._completed = completed = as_completed(self._submit_more(), loop=self.client.loop)
            async for done in completed:
                if self.cancelled:
                    break
                batch = [done, *completed.next_batch(block=False)]
                self.futures.difference_update(batch)
                if len(self.futures) <= self.concurrency // 2:
                    completed.update(self._submit_more())
                elif len(self.futures) < self.concurrency and self._refill is None:
                    self._refill = loop.call_later(REFILL_DELAY, self._deferred_refill)
                if self.result_limit:  # values travel while the next items run
                    self._to_deliver.extend(batch)
                    if self._delivery is None or self._delivery.done():
                        self._delivery = asyncio.ensure_future(self._deliver())
                else:
                    self.sink.add_on_loop(await self._outcomes(batch, {}))
        finally:
            if self._delivery is not None:
                await asyncio.gather(self._delivery, return_exceptions=True)
            if self._refill is not None:
                self._refill.cancel()
            if self.futures:
                await self.client.cancel(list(self.futures))

    async def _deliver(self) -> None:
        """Fetch the values of the done items (one ``gather`` for all that finished while
        the previous one travelled; encoded here, so workers need no jupyter-progress),
        then hand them over."""
        while self._to_deliver:
            batch, self._to_deliver = self._to_deliver, []
            finished = [future for future in batch if future.status == "finished"]
            values: dict[Any, Any] = {}
            if finished:
                try:
                    gathered = await self.client.gather(finished)
                    values = dict(zip(finished, gathered, strict=True))
                except Exception as failure:
                    self.log.warning("could not gather the results of Dask items: %s", failure)
            self.sink.add_on_loop(await self._outcomes(batch, values))

    async def _outcomes(self, batch: list[Any], values: dict[Any, Any]) -> ResultBatch:
        """The batch's entries, with the values gathered for them."""
        outcomes: ResultBatch = []
        for future in batch:
            index, error = await self._outcome(future)
            if self.result_limit:
                value = None if error else encode_result(values.get(future), self.result_limit)
                outcomes.append((index, error, value))
            else:
                outcomes.append((index, error))
        return outcomes

    async def _outcome(self, future: Any) -> tuple[int, str | None]:
        """The item's index and error (``None`` if it succeeded); the future is let go."""
        self.futures.discard(future)
        error = None
        if future.status == "error":
            error = describe_error(await future.exception())
        elif future.status == "cancelled":
            error = "CancelledError: the cluster cancelled this item"
        future.release()
        return self.index_of.pop(future), error

    def _submit_more(self) -> list[Any]:
        """Top the job up to ``concurrency`` items in one ``client.map`` call."""
        count = min(self.concurrency - len(self.futures), len(self.items) - self.next_index)
        if count <= 0:
            return []
        indices = range(self.next_index, self.next_index + count)
        self.next_index += count
        submitted = self.client.map(
            self.function,
            [self.items[index] for index in indices],
            key=[f"jupyter-progress-{self.job_id}-{index}" for index in indices],
            pure=False,
        )
        for index, future in zip(indices, submitted, strict=True):
            self.index_of[future] = index
            self.futures.add(future)
        return list(submitted)

    def _deferred_refill(self) -> None:
        """Top up a little later, so that items finishing together share one update."""
        self._refill = None
        if not self.cancelled:
            self._completed.update(self._submit_more())


class DaskExecutor(ItemExecutor):
    """Items run as tasks on a Dask distributed cluster (``dask_address``).

    The target is imported in the server and sent by reference, as ``client.map`` does,
    so its package must be importable on the workers too; a pickled function (from a
    notebook) travels by value, as Dask sends such functions. At most ``concurrency`` items
    of a job are submitted at a time, so one job cannot flood a shared cluster; the
    cluster's worker threads decide how many of those run at once. Cancelling cancels
    the job's futures. A task lost with its worker (``KilledWorker``) counts as an error.
    """

    name = "dask"
    local_workers = False

    def __init__(self, address: str | None = None, log: logging.Logger | None = None) -> None:
        super().__init__(log)
        self.address = address or None
        self._client: Any = None
        self._client_lock: asyncio.Lock | None = None

    async def client(self) -> Any:
        """The one asynchronous ``distributed.Client`` of this server, made on first use."""
        if self._client_lock is None:
            self._client_lock = asyncio.Lock()
        async with self._client_lock:
            if self._client is None:
                try:
                    from distributed import Client
                except ImportError:
                    raise TargetError(
                        "the dask executor needs the 'distributed' package "
                        "(pip install 'jupyter-progress[dask]')"
                    ) from None
                self.log.info("connecting to the Dask scheduler at %s", self.address or "(local)")
                self._client = await Client(self.address, asynchronous=True)
        return self._client

    async def open_job(
        self, job_id: str, target: Target, items: Sequence[Any], concurrency: int, sink: _LoopSink
    ) -> _DaskJob:
        function = await asyncio.to_thread(load_target, target)
        client = await self.client()
        return _DaskJob(
            client, function, job_id, items, concurrency, sink, self.log, target.result_limit
        )

    async def shutdown(self) -> None:
        jobs = list(self._jobs.values())
        await super().shutdown()
        # The cancels reach the scheduler before the client that sends them closes.
        cancelling = [job.cancelling for job in jobs if isinstance(job, _DaskJob)]
        await asyncio.gather(*(c for c in cancelling if c is not None), return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.close()
            except Exception:
                self.log.exception("could not close the Dask client")


def _log_failure(log: logging.Logger, what: str) -> Callable[[asyncio.Future[Any]], None]:
    def check(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("could not %s: %s", what, future.exception())

    return check


def make_executor(kind: str, *, dask_address: str | None, log: logging.Logger) -> ItemExecutor:
    """The executor named by configuration (``process``, ``thread`` or ``dask``)."""
    if kind == "process":
        return ProcessExecutor(log)
    if kind == "thread":
        return ThreadExecutor(log)
    if kind == "dask":
        return DaskExecutor(dask_address, log)
    raise ValueError(f"unknown executor {kind!r}; one of process, thread, dask")
