"""The executor template: a subclass that only opens jobs gets run, cancel and shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from jupyter_progress.executors import ItemExecutor, ResultBatch, _LoopSink
from jupyter_progress.models import JobKind
from jupyter_progress.runners import PythonRunner, make_runners


class _GatedJob:
    """Delivers one result per item, each once its gate opens; stops when cancelled."""

    def __init__(self, items: Sequence[Any], sink: _LoopSink) -> None:
        self.items = items
        self.sink = sink
        self.gate = asyncio.Event()
        self.cancelled = False

    async def run(self) -> None:
        for index in range(len(self.items)):
            await self.gate.wait()
            if self.cancelled:
                return
            self.sink.add([(index, None)])
            self.gate.clear()

    def cancel(self) -> None:
        self.cancelled = True
        self.gate.set()


class GatedExecutor(ItemExecutor):
    name = "gated"

    def __init__(self, log: logging.Logger | None = None) -> None:
        super().__init__(log)
        self.opened: dict[str, _GatedJob] = {}

    async def open_job(
        self, job_id: str, target: str, items: Sequence[Any], concurrency: int, sink: _LoopSink
    ) -> _GatedJob:
        job = self.opened[job_id] = _GatedJob(items, sink)
        return job


async def test_results_reach_the_loop_and_every_item_is_delivered_by_the_end() -> None:
    executor = GatedExecutor()
    results: ResultBatch = []
    run = asyncio.ensure_future(executor.run("a", "m:f", ["x", "y"], 1, results.extend))
    while "a" not in executor.opened:
        await asyncio.sleep(0)
    job = executor.opened["a"]
    job.gate.set()
    while job.gate.is_set():
        await asyncio.sleep(0)
    job.gate.set()
    await run
    assert results == [(0, None), (1, None)], "what is pending is flushed when the job ends"


async def test_cancel_by_job_id_reaches_only_that_job() -> None:
    executor = GatedExecutor()
    runs = [
        asyncio.ensure_future(executor.run(job_id, "m:f", [1, 2, 3], 1, lambda batch: None))
        for job_id in ("a", "b")
    ]
    while len(executor.opened) < 2:
        await asyncio.sleep(0)
    executor.cancel("a")
    executor.cancel("never-started")  # unknown ids are ignored
    await runs[0]
    assert executor.opened["a"].cancelled and not executor.opened["b"].cancelled
    assert not runs[1].done()
    await executor.shutdown()
    await runs[1]
    assert executor.opened["b"].cancelled


async def test_no_items_opens_no_job() -> None:
    executor = GatedExecutor()
    await executor.run("a", "m:f", [], 4, lambda batch: None)
    assert executor.opened == {}


async def test_an_executor_without_open_job_says_so() -> None:
    class Unfinished(ItemExecutor):
        name = "unfinished"

    with pytest.raises(NotImplementedError, match="open_job"):
        await Unfinished().run("a", "m:f", [1], 1, lambda batch: None)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "process"),
        ({"executor": "thread"}, "thread"),
        ({"dask_address": "tcp://127.0.0.1:1"}, "dask"),
        ({"executor": "thread", "executor_class": GatedExecutor}, "gated"),
    ],
)
def test_make_runners_from_plain_values(values: dict[str, Any], expected: str) -> None:
    runners = make_runners(root_dir=".", log=logging.getLogger("test"), **values)
    assert set(runners) == {JobKind.PYTHON, JobKind.NOTEBOOK}
    python = runners[JobKind.PYTHON]
    assert isinstance(python, PythonRunner)
    assert python.executor.name == expected
