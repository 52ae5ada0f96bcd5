"""P7 (the page side): the Jobs panel with a long history, at several history sizes.

For each size, starts a real ``jupyter lab`` (the lab extension enabled) with a fresh job
store, fills it with that many finished jobs through the public API (several clients at
once) plus one running job, opens JupyterLab in headless Chromium and measures:

- the panel's visible time: from ``jupyter-progress:show-jobs`` to its first row on screen
  (after a reload each sample, so each one builds the panel from nothing);
- the DOM nodes inside the panel once open, and the rows built;
- a row update: from a progress report (POST sent) to the running row's bar changing in
  the open panel (wall clocks of the same machine), at 10 reports/s;
- the requests to ``jupyter-progress/api/jobs…`` the page made meanwhile (0 expected).

Run: ``.venv/bin/python benchmarks/bench_panel.py --sizes 1000 10000 [--samples 3]``
(100,000 works too; filling the store through the API then takes most of the time).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.lab_page import CHROMIUM, CHROMIUM_ARGS
from helpers.lab_server import LabServer, run_lab_server

STATUS = ".jp-progress-status"
PANEL_NODES = "() => document.querySelectorAll('#jupyter-progress-jobs *').length"
PANEL_ROWS = (
    "() => document.querySelectorAll('#jupyter-progress-jobs .jp-progress-jobs-row').length"
)
JOBS_REQUEST = re.compile(r"/jupyter-progress/api/jobs")

OPEN_PANEL = """async () => {
    const t0 = performance.now();
    await window.jupyterapp.commands.execute('jupyter-progress:show-jobs');
    await new Promise((resolve) => {
        const check = () => {
            const row = document.querySelector('#jupyter-progress-jobs .jp-progress-jobs-row');
            if (row && row.getBoundingClientRect().height > 0) resolve();
            else requestAnimationFrame(check);
        };
        check();
    });
    return performance.now() - t0;
}"""

WATCH_ROW = """(id) => {
    window.__rowChanges = [];
    const bar = document.querySelector(
        `#jupyter-progress-jobs .jp-progress-widget[data-job-id='${id}'] [role=progressbar]`);
    new MutationObserver(() => {
        window.__rowChanges.push([Number(bar.getAttribute('aria-valuenow')), Date.now()]);
    }).observe(bar, {attributes: true, attributeFilter: ['aria-valuenow']});
}"""


def fill(server: LabServer, size: int) -> float:
    """``size`` finished jobs through the API; returns seconds taken."""
    started = time.monotonic()
    batch = 2000
    for first in range(0, size, batch):
        names = [f"history {n:06d}" for n in range(first, min(size, first + batch))]
        server.create_finished_jobs(names, workers=8)
    return time.monotonic() - started


def measure(server: LabServer, browser: Any, samples: int, updates: int) -> dict[str, Any]:
    live = server.create_job("still running", total=10_000)
    server.report(live["job_id"], success=1)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    jobs_requests: list[str] = []
    page.on(
        "request",
        lambda request: JOBS_REQUEST.search(request.url) and jobs_requests.append(request.url),
    )
    url = f"{server.url}lab?reset&token={server.token}"
    opened: list[float] = []
    try:
        for _ in range(samples):
            page.goto(url)
            page.locator(STATUS).wait_for()
            page.wait_for_function(f"() => document.querySelector('{STATUS}') !== null")
            time.sleep(1.5)  # the stream's snapshot has arrived and settled
            opened.append(float(page.evaluate(OPEN_PANEL)))
        nodes = int(page.evaluate(PANEL_NODES))
        rows = int(page.evaluate(PANEL_ROWS))
        page.evaluate(WATCH_ROW, live["job_id"])
        sent: dict[int, float] = {}
        for step in range(2, 2 + updates):
            sent[step] = time.time() * 1000
            server.report(live["job_id"], success=step)
            time.sleep(0.1)
        page.wait_for_function("(n) => window.__rowChanges.some(([v]) => v === n)", arg=1 + updates)
        changes = page.evaluate("() => window.__rowChanges")
        delays = [at - sent[value] for value, at in changes if value in sent]
        server.client.post(f"jobs/{live['job_id']}/cancel")
        return {
            "open_ms": opened,
            "nodes": nodes,
            "rows": rows,
            "update_ms": delays,
            "jobs_requests": len(jobs_requests),
        }
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--samples", type=int, default=3, help="panel opens per size")
    parser.add_argument("--updates", type=int, default=30, help="row updates timed per size")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for size in args.sizes:
                with (
                    tempfile.TemporaryDirectory() as tmp,
                    run_lab_server(Path(tmp), lab_extension_enabled=True) as server,
                ):
                    filled = fill(server, size)
                    result = measure(server, browser, args.samples, args.updates)
                result["size"] = size
                result["fill_s"] = filled
                results.append(result)
                print(
                    f"{size:>7,} finished: filled in {filled:.0f} s; panel visible "
                    f"{[round(ms) for ms in result['open_ms']]} ms; {result['nodes']} DOM nodes, "
                    f"{result['rows']} rows; row update p50 "
                    f"{statistics.median(result['update_ms']):.0f} ms; "
                    f"{result['jobs_requests']} requests to api/jobs",
                    flush=True,
                )
        finally:
            browser.close()

    print(
        "\n| finished jobs | panel visible (median of opens) | DOM nodes in the panel | rows "
        "built | row update p50 / p95 | requests to `api/jobs…` |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        updates = sorted(r["update_ms"])
        p95 = updates[min(len(updates) - 1, int(0.95 * len(updates)))]
        print(
            f"| {r['size']:,} | {statistics.median(r['open_ms']):.0f} ms | {r['nodes']} | "
            f"{r['rows']} | {statistics.median(updates):.0f} / {p95:.0f} ms | "
            f"{r['jobs_requests']} |"
        )


if __name__ == "__main__":
    main()
