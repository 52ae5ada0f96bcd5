"""P8/P3 under overload: many stream readers, many jobs at 10 Hz, the latest state per job.

Run: ``.venv/bin/python benchmarks/bench_fanout.py [--subscribers 200] [--jobs 50]
[--rate 10] [--seconds 20] [--filtered] [--baseline DIR]``.

Every job gets a report per tick (``--rate`` Hz); its ``message`` carries the send time,
the job's index and the tick. Readers are raw asyncio connections in two reader
processes (unfiltered, or with ``--filtered`` each reader filtered to one job). For
every state a reader receives it records:

- ``delay``: receive time minus that state's send time;
- ``age``: receive time minus the send time of the *oldest* state of that job the reader
  had not seen yet (states it never got because they were coalesced count from when they
  were sent): how stale a reader's view of each job's latest state can be. P8's target
  (p99 ≤ 250 ms) is on this figure.

At the end each job is completed; every reader must get every final state. The server's
CPU is read from /proc over the updating period. ``--baseline DIR`` first runs the same
load against the package found in ``DIR`` (an older checkout's tree, put first on the
server's ``PYTHONPATH``), so before and after come from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from _server import start_server
from bench_latency import RawReporter, cpu_seconds

MARKER = b'"message":"'
BUCKETS_PER_MS = 2
MAX_MS = 20_000


class Histogram:
    """Milliseconds in half-millisecond buckets: cheap to fill, merge and ship."""

    def __init__(self) -> None:
        self.counts = [0] * (MAX_MS * BUCKETS_PER_MS + 1)
        self.total = 0

    def add(self, ms: float) -> None:
        self.counts[min(int(ms * BUCKETS_PER_MS), len(self.counts) - 1)] += 1
        self.total += 1

    def merge(self, counts: list[int]) -> None:
        for index, count in enumerate(counts):
            self.counts[index] += count
        self.total += sum(counts)

    def percentile(self, q: float) -> float:
        wanted = q / 100 * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= wanted and count:
                return index / BUCKETS_PER_MS
        return float("nan")


async def read_stream(
    host: str,
    port: int,
    path: str,
    token: str,
    period_ns: int,
    delay: Histogram,
    age: Histogram,
    finals: list[int],
    ready: asyncio.Event,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: token {token}\r\n\r\n".encode()
    )
    await writer.drain()
    ready.set()
    last_tick: dict[int, int] = {}
    done: set[int] = set()
    rest = b""
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            now = time.time_ns()
            whole = data.rfind(b"\n\n")  # frames end with a blank line; keep a partial one
            if whole < 0:
                rest += data
                continue
            chunk, rest = rest + data[: whole + 2], data[whole + 2 :]
            start = chunk.find(MARKER)
            while start >= 0:
                start += len(MARKER)
                end = chunk.find(b'"', start)
                fields = chunk[start:end].split(b":")
                start = chunk.find(MARKER, end)
                if len(fields) < 3 or not fields[0].isdigit():
                    continue
                sent, job, tick = int(fields[0]), int(fields[1]), int(fields[2])
                if len(fields) > 3:
                    done.add(job)
                    continue
                seen = last_tick.get(job, 0)
                if tick <= seen:
                    continue
                delay.add((now - sent) / 1e6)
                age.add((now - sent + (tick - seen - 1) * period_ns) / 1e6)
                last_tick[job] = tick
    finally:
        finals.append(len(done))
        writer.close()


def read_in_process(
    specs: list[tuple[str, int, str, str]], period_ns: int, ready: Any, stop: Any, results: Any
) -> None:
    """A reader process: holds its share of the readers, then returns their histograms."""

    async def hold() -> None:
        delay, age = Histogram(), Histogram()
        finals: list[int] = []
        tasks = []
        for host, port, path, token in specs:
            connected = asyncio.Event()
            tasks.append(
                asyncio.create_task(
                    read_stream(host, port, path, token, period_ns, delay, age, finals, connected)
                )
            )
            await connected.wait()
        ready.set()
        cpu, wall = time.process_time(), time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        cpu = (time.process_time() - cpu) / (time.monotonic() - wall)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put((delay.counts, age.counts, finals, cpu))

    asyncio.run(hold())


async def one_run(args: argparse.Namespace, label: str) -> dict[str, Any]:
    server = start_server(f"--JupyterProgress.send_timeout={args.seconds + 30}")
    url = urlsplit(server.api_url)
    host, port = str(url.hostname), int(url.port or 80)
    context = multiprocessing.get_context("fork")
    stop, results = context.Event(), context.Queue()
    period_ns = int(1e9 / args.rate)
    assert server.process is not None
    try:
        async with httpx.AsyncClient(
            base_url=server.api_url, headers=server.headers, trust_env=False, timeout=30
        ) as http:
            jobs = [
                (await http.post("jobs", json={"name": f"fan {n}", "total": None})).json()["job_id"]
                for n in range(args.jobs)
            ]
        specs = []
        for index in range(args.subscribers):
            query = f"?job={jobs[index % len(jobs)]}" if args.filtered else ""
            specs.append((host, port, f"{url.path}events{query}", server.token))
        readers = []
        for share in range(args.reader_processes):
            ready = context.Event()
            process = context.Process(
                target=read_in_process,
                args=(specs[share :: args.reader_processes], period_ns, ready, stop, results),
            )
            process.start()
            readers.append((process, ready))
        for _, ready in readers:
            await asyncio.to_thread(ready.wait, 120)
        reporters = [await RawReporter.connect(host, port, url.path, j, server.token) for j in jobs]
        await asyncio.sleep(1.0)
        cpu_before, wall_before = cpu_seconds(server.process.pid), time.monotonic()
        tick, late = 0, 0
        end = time.monotonic() + args.seconds
        next_tick = time.monotonic()
        while time.monotonic() < end:
            tick += 1
            sent = time.time_ns()
            await asyncio.gather(
                *(
                    reporter.send(f'{{"success": {tick}, "message": "{sent}:{n}:{tick}"}}'.encode())
                    for n, reporter in enumerate(reporters)
                )
            )
            next_tick += 1.0 / args.rate
            pause = next_tick - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            else:
                late += 1
        cpu = (cpu_seconds(server.process.pid) - cpu_before) / (time.monotonic() - wall_before)
        sent = time.time_ns()
        await asyncio.gather(
            *(
                reporter.send(
                    f'{{"status": "completed", "message": "{sent}:{n}:{tick + 1}:end"}}'.encode()
                )
                for n, reporter in enumerate(reporters)
            )
        )
        await asyncio.sleep(3.0)
        stop.set()
        delay, age = Histogram(), Histogram()
        finals: list[int] = []
        reader_cpu = 0.0
        for _ in readers:
            delays, ages, got, used = await asyncio.to_thread(results.get, True, 120)
            delay.merge(delays)
            age.merge(ages)
            finals.extend(got)
            reader_cpu += used
        for process, _ in readers:
            process.join(10)
    finally:
        server.stop()
    per_reader = 1 if args.filtered else args.jobs
    return {
        "label": label,
        "ticks": tick,
        "late": late,
        "cpu": cpu,
        "reader_cpu": reader_cpu,
        "delay": delay,
        "age": age,
        "finals_ok": sum(1 for got in finals if got == per_reader),
        "readers": len(finals),
        "offered": args.subscribers * (1 if args.filtered else args.jobs) * args.rate,
    }


def show(result: dict[str, Any]) -> None:
    delay, age = result["delay"], result["age"]
    print(
        f"{result['label']:<9} states received {delay.total:>9}  "
        f"delay p50 {delay.percentile(50):6.1f} p99 {delay.percentile(99):7.1f} ms  "
        f"age p50 {age.percentile(50):6.1f} p99 {age.percentile(99):7.1f} ms  "
        f"server CPU {result['cpu']:.2f} cores (readers {result['reader_cpu']:.2f})  "
        f"final states {result['finals_ok']}/{result['readers']} readers complete  "
        f"ticks sent {result['ticks']} ({result['late']} late)"
    )


async def main_async(args: argparse.Namespace) -> None:
    runs = []
    if args.baseline:
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [args.baseline, saved]))
        try:
            runs.append(await one_run(args, "before"))
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH")
            else:
                os.environ["PYTHONPATH"] = saved
    runs.append(await one_run(args, "after" if args.baseline else "this"))
    kind = "each filtered to one job" if args.filtered else "unfiltered"
    print(
        f"\n{args.subscribers} readers ({kind}) x {args.jobs} jobs x {args.rate:g} Hz for "
        f"{args.seconds:g} s: {runs[0]['offered']:.0f} deliveries/s offered"
    )
    for result in runs:
        show(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--filtered", action="store_true")
    parser.add_argument("--reader-processes", type=int, default=2)
    parser.add_argument("--baseline", help="a tree whose jupyter_progress runs first")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
