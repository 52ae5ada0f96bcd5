"""Importable targets for server-run ``python`` jobs in the tests (and the benchmarks).

The test server imports this module by name (``progress_tasks:…``): ``tests/`` is on its
``sys.path`` (pytest puts it there; subprocess servers get it through ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jupyter_progress.executors import ItemExecutor, ResultSink, load_target


def square(item: int) -> int:
    return item * item


def fail_on_odd(item: int) -> int:
    """Odd items raise: the job must count them as errors and go on."""
    if item % 2:
        raise ValueError(f"odd item {item}")
    return item


def die_on(item: dict[str, Any]) -> int:
    """Kills its own worker process on the item marked ``die`` (once: a marker file)."""
    if item.get("die"):
        marker = Path(item["marker"])
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return item["n"]


def wait_for_file(item: dict[str, Any]) -> int:
    """Blocks until ``item['release']`` exists (or 60 s): lets a test hold items running."""
    started = Path(item["started"])
    started.parent.mkdir(parents=True, exist_ok=True)
    partial = started.parent / f".{started.name}.{item['n']}.partial"
    partial.write_text(str(os.getpid()))
    partial.rename(started.parent / f"{started.name}.{item['n']}")  # seen whole or not at all
    release = Path(item["release"])
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return item["n"]


def record_and_sleep(item: dict[str, Any]) -> int:
    """Writes ``start.<n>`` (wall time), sleeps ``item['seconds']``, then writes ``end.<n>``."""
    directory = Path(item["dir"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"start.{item['n']}").write_text(repr(time.time()))
    time.sleep(item["seconds"])
    (directory / f"end.{item['n']}").write_text(repr(time.time()))
    return item["n"]


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class InlineExecutor(ItemExecutor):
    """A custom executor (``c.JupyterProgress.executor_class``): items run on the loop."""

    name = "inline"

    async def run(
        self,
        job_id: str,
        target: str,
        items: Sequence[Any],
        concurrency: int,
        on_results: ResultSink,
    ) -> None:
        function = load_target(target)
        for index, item in enumerate(items):
            function(item)
            on_results([(index, None)])

    def cancel(self, job_id: str) -> None:
        pass

    async def shutdown(self) -> None:
        pass
