"""P10: the cost of writing a notebook job's executed copy after every cell.

Run: ``.venv/bin/python benchmarks/bench_notebook.py [--cells 100] [--repeat 3]``.

The same notebook of ``--cells`` code cells is run by the server's notebook runner (nbclient,
a real ipykernel) twice over, alternating: writing the executed copy (atomically) after every
cell, as notebook jobs do, and writing it once at the end. Each cell prints a line and makes
a small result, so the copy grows as the run goes, like a real report. The run time is from
the job's start to its end, kernel start included. Best of ``--repeat`` runs each, because
the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from jupyter_progress.models import JobKind, JobSpec
from jupyter_progress.runners import NotebookRunner


class _Manager:
    """Takes the runner's reports and notices the end (the server's manager is not needed)."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.outcome = ""
        self.writes_seen = 0

    def job_started(self, job_id: str, *, total: int | None = None) -> None:
        self.started = time.perf_counter()

    def item_finished(self, job_id: str, **kwargs: Any) -> None:
        pass

    def job_progressed(self, job_id: str, **kwargs: Any) -> None:
        pass

    def job_finished(self, job_id: str, status: Any, message: str | None = None) -> None:
        self.outcome = str(status.value)
        self.elapsed = time.perf_counter() - self.started
        self.done.set()


def make_notebook(path: Path, cells: int) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for index in range(cells):
        source = f"# step {index}\nvalue_{index} = sum(range({index} * 100))\n"
        source += f"print('step {index}:', value_{index})\nvalue_{index}"
        nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)


async def run_once(root: Path, every_cell: bool) -> float:
    runner = NotebookRunner(str(root), write_every_cell=every_cell, log=logging.getLogger("bench"))
    manager = _Manager()
    spec = JobSpec(kind=JobKind.NOTEBOOK, name="bench", path="bench.ipynb")
    runner.start("b" * 32, spec, manager)  # type: ignore[arg-type]
    await manager.done.wait()
    await runner.shutdown()
    assert manager.outcome == "completed", manager.outcome
    return manager.elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        make_notebook(root / "bench.ipynb", args.cells)
        runs: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeat):
            for every_cell in (False, True):
                runs[every_cell].append(await run_once(root, every_cell))
        size = (root / "bench.executed.ipynb").stat().st_size
    once, every = min(runs[False]), min(runs[True])
    print(
        f"\n{args.cells}-cell notebook, executed copy {size / 1024:.0f} KB, best of {args.repeat}"
    )
    print(f"  copy written once at the end : {once:6.2f} s")
    print(f"  copy written after every cell: {every:6.2f} s")
    print(f"  cost of the live copy        : {(every - once) / once * 100:+.1f} %")
    print(f"  per cell                     : {(every - once) / args.cells * 1000:+.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
