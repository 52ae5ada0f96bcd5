"""P10: the cost of writing a notebook job's executed copy after every cell.

Run: ``.venv/bin/python benchmarks/bench_notebook.py [--cells 100] [--repeat 3]``.

The same notebook of ``--cells`` code cells is run by the server's notebook runner (nbclient,
a real ipykernel) twice over, alternating: writing the executed copy (atomically) after every
cell, as notebook jobs do, and writing it once at the end. Each cell prints a line and makes
a small result, so the copy grows as the run goes, like a real report. The run time is from
the job's start to its end, kernel start included. Best of ``--repeat`` runs each, because
the machine is shared.

Because two wall-clock totals on a shared machine differ by more than the cost itself, the
cost is also timed where it is paid: the notebook thread's time in ``LiveCopy.cell_done``
(serializing the cell and joining the copy: on the run's path), and the writer thread's time
writing and renaming the files (beside the run, while the kernel runs the next cell).
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

from jupyter_progress import runners
from jupyter_progress.models import JobKind, JobSpec
from jupyter_progress.runners import NotebookRunner

#: Seconds of each run spent in ``LiveCopy.cell_done`` (the run's path) and in the
#: writer thread's ``write_atomically`` (beside it).
ON_PATH: list[float] = []
IN_WRITER: list[float] = []


def _timed(original: Any, into: list[float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into[-1] += time.perf_counter() - started

    return timed


class _Manager:
    """Takes the runner's reports and notices the end (the server's manager is not needed)."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.outcome = ""

    def job_started(self, job_id: str, *, total: int | None = None) -> None:
        self.started = time.perf_counter()

    def item_finished(self, job_id: str, **kwargs: Any) -> None:
        pass

    def job_progressed(self, job_id: str, **kwargs: Any) -> None:
        pass

    def job_finished(self, job_id: str, status: Any, message: str | None = None) -> None:
        self.outcome = f"{status.value}: {message}"
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
    ON_PATH.append(0.0)
    IN_WRITER.append(0.0)
    spec = JobSpec(kind=JobKind.NOTEBOOK, name="bench", path="bench.ipynb")
    runner.start("b" * 32, spec, manager)  # type: ignore[arg-type]
    await manager.done.wait()
    await runner.shutdown()
    assert manager.outcome.startswith("completed"), manager.outcome
    return float(manager.elapsed)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    live_copy: Any = runners.LiveCopy
    live_copy.cell_done = _timed(live_copy.cell_done, ON_PATH)
    patched: Any = runners
    patched.write_atomically = _timed(runners.write_atomically, IN_WRITER)
    live: list[tuple[float, float, float]] = []  # on the path, in the writer, run time
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        make_notebook(root / "bench.ipynb", args.cells)
        runs: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeat):
            for every_cell in (False, True):
                runs[every_cell].append(await run_once(root, every_cell))
                if every_cell:
                    live.append((ON_PATH[-1], IN_WRITER[-1], runs[True][-1]))
        size = (root / "bench.executed.ipynb").stat().st_size
    once, every = min(runs[False]), min(runs[True])
    on_path, in_writer, run = min(live)
    per_cell = 1000 / args.cells
    print(
        f"\n{args.cells}-cell notebook, executed copy {size / 1024:.0f} KB, best of {args.repeat}"
    )
    print(f"  copy written once at the end : {once:6.2f} s")
    print(f"  copy written after every cell: {every:6.2f} s")
    print(f"  difference                   : {(every - once) / once * 100:+.1f} %")
    print(
        f"  on the run's path (serialize): {on_path * 1000:6.1f} ms = "
        f"{on_path / run * 100:.1f} % of the run, {on_path * per_cell:.2f} ms a cell"
    )
    print(
        f"  in the writer thread (beside): {in_writer * 1000:6.1f} ms "
        f"({in_writer * per_cell:.2f} ms a cell, final write included)"
    )


if __name__ == "__main__":
    asyncio.run(main())
