"""P1b: ``jupyter_progress.tqdm`` per item beside ``tqdm.std.tqdm``, and a loop's end against
a server that accepts connections and never answers.

Run: ``.venv/bin/python benchmarks/bench_tqdm.py [--items N] [--kernel]``. It starts a real
Jupyter server so the bars report to it live. Both bars draw their text line to a file
(``os.devnull``), so the difference is the reporting. ``--kernel`` also times both against
``tqdm.notebook`` inside a real IPython kernel (where ours draws nothing and reports).
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from _server import start_server
from tqdm.std import tqdm as std_tqdm

from jupyter_progress import tracking
from jupyter_progress.client import ServerInfo
from jupyter_progress.tracking import tqdm


def best_ns_per_item(run: Callable[[], None], items: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - started) / items)
    return best


def per_item(n: int, repeats: int, info: ServerInfo) -> dict[str, float]:
    devnull = open(os.devnull, "w")  # noqa: SIM115

    def bare() -> None:
        for _ in range(n):
            pass

    def with_std() -> None:
        for _ in std_tqdm(range(n), file=devnull):
            pass

    def with_ours() -> None:
        for _ in tqdm(range(n), file=devnull, server=info):
            pass

    # Interleaved, so a noisy neighbour hits both alike.
    results: dict[str, float] = {"bare loop": float("inf")}
    results["tqdm.std.tqdm (text to devnull)"] = float("inf")
    results["jupyter_progress.tqdm (live server)"] = float("inf")
    for _ in range(repeats):
        for label, run in zip(results, (bare, with_std, with_ours), strict=True):
            results[label] = min(results[label], best_ns_per_item(run, n, 1))
    tracking.flush(10)
    return results


def loop_end_waits(loops: int, items: int) -> dict[str, float]:
    """Seconds from a loop's last item to the line after it (tqdm's own closing included),
    ours against a server that accepts and never answers, and tqdm.std for reference; then
    the exit flush against that server."""
    devnull = open(os.devnull, "w")  # noqa: SIM115
    std_waits = []
    for _ in range(loops):
        for _ in std_tqdm(range(items), file=devnull):
            last_item_done = time.perf_counter()
        std_waits.append(time.perf_counter() - last_item_done)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(256)
        info = ServerInfo(f"http://127.0.0.1:{silent.getsockname()[1]}/")
        waits = []
        for _ in range(loops):
            for _ in tqdm(range(items), file=devnull, server=info):
                last_item_done = time.perf_counter()
            waits.append(time.perf_counter() - last_item_done)
        started = time.perf_counter()
        tracking.flush(tracking.EXIT_FLUSH_SECONDS)  # what interpreter exit does
        flushed = time.perf_counter() - started
    return {
        "ours max": max(waits),
        "ours median": sorted(waits)[len(waits) // 2],
        "std max": max(std_waits),
        "std median": sorted(std_waits)[len(std_waits) // 2],
        "exit flush": flushed,
    }


class StreamCounter(threading.Thread):
    """Reads the unfiltered event stream and keeps each job's event times."""

    def __init__(self, info: ServerInfo) -> None:
        super().__init__(daemon=True)
        self.info = info
        self.times: dict[str, list[float]] = {}
        self.open = threading.Event()

    def run(self) -> None:
        import httpx

        from jupyter_progress.client import SSEParser

        timeout = httpx.Timeout(10, read=None)
        with (
            httpx.Client(trust_env=False, timeout=timeout) as http,
            http.stream("GET", self.info.api_url + "events", headers=self.info.headers) as r,
        ):
            self.open.set()
            parser = SSEParser()
            for line in r.iter_lines():
                event = parser.feed(line)
                if event is not None and event.type == "job_updated":
                    job_id = event.data["job_id"]
                    self.times.setdefault(job_id, []).append(time.monotonic())

    def max_per_second(self) -> int:
        """The most events any one job got within one second."""
        worst = 0
        for times in self.times.values():
            start = 0
            for end, at in enumerate(times):
                while at - times[start] >= 1.0:
                    start += 1
                worst = max(worst, end - start + 1)
        return worst


def nested(outer: int, inner: int, info: ServerInfo) -> dict[str, Any]:
    """``outer`` epochs times an inner loop of ``inner`` items, ours against tqdm.std; what the
    server keeps and how often a page hears of each bar."""
    import httpx

    devnull = open(os.devnull, "w")  # noqa: SIM115
    reader = StreamCounter(info)
    reader.start()
    reader.open.wait(10)

    def run(bar: Any, **kwargs: Any) -> tuple[float, Any]:
        started = time.perf_counter()
        top = bar(range(outer), file=devnull, **kwargs)
        for _ in top:
            for _ in bar(range(inner), file=devnull, **kwargs):
                pass
        return time.perf_counter() - started, top

    std_seconds, _ = run(std_tqdm)
    our_seconds, top = run(tqdm, server=info)
    started = time.perf_counter()
    tracking.flush(120)
    drained = time.perf_counter() - started
    time.sleep(1)
    with httpx.Client(base_url=info.api_url, headers=info.headers, trust_env=False) as http:
        children = http.get("jobs", params={"parent": top.job_id, "limit": 1000}).json()["jobs"]
    return {
        "std s": std_seconds,
        "ours s": our_seconds,
        "queue drained s": drained,
        "children kept": len(children),
        "max events/s per bar": reader.max_per_second(),
        "bars on the stream": len(reader.times),
    }


KERNEL_CODE = """
import os, time
from tqdm.notebook import tqdm as nb_tqdm
from jupyter_progress import tqdm as jp_tqdm
from jupyter_progress.tracking import flush
n = {n}
def best(make):
    runs = []
    for _ in range({repeats}):
        started = time.perf_counter_ns()
        for _ in make(range(n)):
            pass
        runs.append((time.perf_counter_ns() - started) / n)
    return min(runs)
results = {{"tqdm.notebook": best(nb_tqdm), "jupyter_progress.tqdm": best(jp_tqdm)}}
flush(10)
print(results)
"""


def in_kernel(n: int, repeats: int, info: ServerInfo) -> dict[str, float]:
    import ast

    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "JUPYTER_PROGRESS_URL": info.url, "JUPYTER_PROGRESS_TOKEN": info.token}
    manager, client = start_new_kernel(env=env)
    try:
        texts: list[str] = []
        client.execute_interactive(
            KERNEL_CODE.format(n=n, repeats=repeats),
            timeout=600,
            output_hook=lambda m: texts.append(m["content"].get("text", "")),
        )
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    line = [t for t in "".join(texts).splitlines() if t.startswith("{")][-1]
    return dict(ast.literal_eval(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loops", type=int, default=30, help="loops against the silent server")
    parser.add_argument("--kernel", action="store_true", help="also time inside a kernel")
    parser.add_argument(
        "--nested", type=int, nargs=2, metavar=("OUTER", "INNER"), default=(1000, 100)
    )
    args = parser.parse_args()
    n = args.items
    server = start_server()
    info = ServerInfo(server.url, server.token)
    try:
        results = per_item(n, args.repeats, info)
        kernel = in_kernel(n, args.repeats, info) if args.kernel else None
        nest = nested(*args.nested, info)
    finally:
        server.stop()
    bare = results["bare loop"]
    std_cost = results["tqdm.std.tqdm (text to devnull)"] - bare
    print(f"{n:,} trivial items, best of {args.repeats} (interleaved)")
    print(f"{'loop':38} {'ns/item':>8} {'overhead ns':>12} {'÷ tqdm overhead':>16}")
    for label, ns in results.items():
        ratio = f"{(ns - bare) / std_cost:.2f}x" if label != "bare loop" else "-"
        print(f"{label:38} {ns:8.1f} {ns - bare:12.1f} {ratio:>16}")
    if kernel is not None:
        print(f"in a kernel (ns/item): {', '.join(f'{k} {v:.1f}' for k, v in kernel.items())}")
        ratio = kernel["jupyter_progress.tqdm"] / kernel["tqdm.notebook"]
        print(f"in a kernel: jupyter_progress.tqdm / tqdm.notebook = {ratio:.2f}x")
    outer, inner = args.nested
    print(
        f"nested {outer:,} x {inner}: tqdm.std {nest['std s']:.2f} s, ours {nest['ours s']:.2f} s "
        f"({nest['ours s'] / nest['std s']:.2f}x); queue drained {nest['queue drained s']:.2f} s "
        f"after the loop; children kept by the server: {nest['children kept']}; "
        f"bars seen on the stream: {nest['bars on the stream']}; "
        f"most events a page got for one bar in one second: {nest['max events/s per bar']}"
    )
    ends = loop_end_waits(args.loops, 1000)
    print(
        f"loop end, {args.loops} loops of 1,000 items (last item to the next line): "
        f"ours against a server that accepts and never answers: median "
        f"{ends['ours median'] * 1e3:.2f} ms, max {ends['ours max'] * 1e3:.2f} ms; "
        f"tqdm.std: median {ends['std median'] * 1e3:.2f} ms, max {ends['std max'] * 1e3:.2f} ms"
    )
    print(f"exit flush against that server: {ends['exit flush']:.2f} s (bounded at 2 s)")


if __name__ == "__main__":
    main()
