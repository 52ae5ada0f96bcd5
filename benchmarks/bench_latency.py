"""P2/P3: delay from a progress report (POST) to its event on every subscriber.

Run: ``.venv/bin/python benchmarks/bench_latency.py [--subscribers 100] [--jobs 1]
[--rate 20] [--seconds 10]``. Subscribers are raw asyncio HTTP connections in this
process (so the reader is cheap); each report carries its send time in ``message``.
With ``--jobs 50 --subscribers 1000 --rate 10`` every subscriber is filtered to one of
50 jobs that each update at 10 Hz (P3); the server's CPU use is read from /proc.
Printed beside: what 500 ms polling would give (mean staleness 250 ms) and Dask's
100 ms push cadence.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from _server import start_server

MARKER = b'"message":"t='


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def subscriber(
    host: str, port: int, path: str, token: str, delays: list[float], ready: asyncio.Event
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: token {token}\r\n\r\n".encode()
    )
    await writer.drain()
    ready.set()
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                now = time.time_ns()
                start = line.find(MARKER)
                if start >= 0:
                    start += len(MARKER)
                    sent = int(line[start : line.index(b'"', start)])
                    delays.append((now - sent) / 1e6)
    finally:
        writer.close()


class RawReporter:
    """Progress reports over one keep-alive connection, written as raw HTTP/1.1 bytes,
    so the measured delay starts when the request leaves, not inside a client library."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str
    ) -> None:
        self.reader, self.writer, self.head = reader, writer, head

    @classmethod
    async def connect(
        cls, host: str, port: int, base_path: str, job_id: str, token: str
    ) -> RawReporter:
        reader, writer = await asyncio.open_connection(host, port)
        head = (
            f"POST {base_path}jobs/{job_id}/progress HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: token {token}\r\nContent-Type: application/json\r\n"
        )
        return cls(reader, writer, head)

    async def report(self, success: int) -> None:
        """Report ``success`` with the send time in the message."""
        await self.send(f'{{"success": {success}, "message": "t={time.time_ns()}"}}'.encode())

    async def send(self, body: bytes) -> None:
        """POST one JSON body and read the whole answer (the connection is kept)."""
        self.writer.write(f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status = await self.reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"report refused: {status!r}")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def read_in_process(
    specs: list[tuple[str, int, str, str]],
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    """A reader process: holds its share of the subscribers, then returns their delays."""

    async def hold() -> None:
        delays: list[float] = []
        tasks = []
        for host, port, path, token in specs:
            connected = asyncio.Event()
            tasks.append(
                asyncio.create_task(subscriber(host, port, path, token, delays, connected))
            )
            await connected.wait()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(delays)

    asyncio.run(hold())


async def run(args: argparse.Namespace) -> None:
    server = start_server()
    url = urlsplit(server.api_url)
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    results = context.Queue()
    try:
        async with httpx.AsyncClient(
            base_url=server.api_url,
            headers=server.headers,
            trust_env=False,
            timeout=30,
            limits=httpx.Limits(max_connections=64),
        ) as http:
            jobs = []
            for index in range(args.jobs):
                job = await http.post("jobs", json={"name": f"bench {index}", "total": None})
                jobs.append(job.json()["job_id"])
            specs = []
            for index in range(args.subscribers):
                job_id = jobs[index % len(jobs)]
                path = f"{url.path}events?job={job_id}" if args.jobs > 1 else f"{url.path}events"
                specs.append((str(url.hostname), int(url.port or 80), path, server.token))
            readers = []
            for share in range(args.reader_processes):
                ready = context.Event()
                process = context.Process(
                    target=read_in_process,
                    args=(specs[share :: args.reader_processes], ready, stop, results),
                )
                process.start()
                readers.append((process, ready))
            for _, ready in readers:
                await asyncio.to_thread(ready.wait, 120)
            reporters = [
                await RawReporter.connect(
                    str(url.hostname), int(url.port or 80), url.path, job_id, server.token
                )
                for job_id in jobs
            ]
            await asyncio.sleep(1.0)
            idle_rss = rss_kb(server.process.pid)
            cpu_before, wall_before = cpu_seconds(server.process.pid), time.monotonic()
            reports = 0
            period = 1.0 / args.rate
            end = time.monotonic() + args.seconds
            success = 0
            while time.monotonic() < end:
                tick = time.monotonic()
                success += 1

                await asyncio.gather(*(reporter.report(success) for reporter in reporters))
                reports += len(jobs)
                await asyncio.sleep(max(0.0, period - (time.monotonic() - tick)))
            await asyncio.sleep(1.0)
            cpu = (cpu_seconds(server.process.pid) - cpu_before) / (time.monotonic() - wall_before)
            stop.set()
            delays: list[float] = []
            for _ in readers:
                delays.extend(await asyncio.to_thread(results.get, True, 60))
            for process, _ in readers:
                process.join(10)
    finally:
        server.stop()
    expected = reports * (args.subscribers if args.jobs == 1 else args.subscribers / args.jobs)
    print(
        f"{args.subscribers} subscribers in {args.reader_processes} reader processes, "
        f"{args.jobs} job(s) at {args.rate} Hz for {args.seconds} s: {reports} reports sent, "
        f"{len(delays)} of {int(expected)} events received"
    )
    print(
        f"{'push (this server)':28} p50 {percentile(delays, 50):7.1f} ms   "
        f"p99 {percentile(delays, 99):7.1f} ms   mean {statistics.mean(delays):7.1f} ms"
    )
    print(
        f"{'500 ms polling (model)':28} p50 {250.0:7.1f} ms   p99 {495.0:7.1f} ms   "
        f"mean {250.0:7.1f} ms"
    )
    print(
        f"{'Dask 100 ms cadence (model)':28} p50 {50.0:7.1f} ms   p99 {99.0:7.1f} ms   "
        f"mean {50.0:7.1f} ms"
    )
    print(f"ratio of mean staleness, polling / push: {250.0 / statistics.mean(delays):.0f}x")
    print(
        f"server CPU while updating: {cpu:.2f} cores; server RSS with idle subscribers "
        f"{idle_rss} KB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=20.0, help="reports per second per job")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reader-processes", type=int, default=2)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
