"""P1: the per-item cost of ``track()`` in a plain loop, beside a bare loop and tqdm.

Run: ``.venv/bin/python benchmarks/bench_track.py [--items N]``. It starts a real Jupyter
server with the extension so ``track`` reports to it, and prints ns/item and ratios.
"""

from __future__ import annotations

import argparse
import io
import os
import time

from _server import start_server
from tqdm import tqdm

from jupyter_progress.client import ServerInfo
from jupyter_progress.tracking import track


def per_item_ns(run: object, items: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        run()  # type: ignore[operator]
        best = min(best, (time.perf_counter_ns() - started) / items)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.items
    server = start_server()
    info = ServerInfo(server.url, server.token)
    offline = ServerInfo("http://127.0.0.1:9/")  # the discard port: nothing listens
    devnull = open(os.devnull, "w")  # noqa: SIM115

    def bare() -> None:
        for _ in range(n):
            pass

    def with_tqdm() -> None:
        for _ in tqdm(range(n), file=devnull):
            pass

    def with_track() -> None:
        for _ in track(range(n), name="bench", server=info, file=io.StringIO()):
            pass

    def with_track_offline() -> None:
        for _ in track(range(n), name="bench", server=offline, file=io.StringIO()):
            pass

    try:
        results = {
            "bare loop": per_item_ns(bare, n, args.repeats),
            "tqdm (text bar to devnull)": per_item_ns(with_tqdm, n, args.repeats),
            "track (live server)": per_item_ns(with_track, n, args.repeats),
            "track (no server)": per_item_ns(with_track_offline, n, args.repeats),
        }
    finally:
        server.stop()
    bare_ns = results["bare loop"]
    tqdm_cost = results["tqdm (text bar to devnull)"] - bare_ns
    print(f"{n:,} trivial items, best of {args.repeats}")
    print(f"{'loop':32} {'ns/item':>8} {'overhead ns':>12} {'÷ tqdm overhead':>16}")
    for label, ns in results.items():
        overhead = ns - bare_ns
        ratio = f"{overhead / tqdm_cost:.2f}x" if label != "bare loop" else "-"
        print(f"{label:32} {ns:8.1f} {overhead:12.1f} {ratio:>16}")


if __name__ == "__main__":
    main()
