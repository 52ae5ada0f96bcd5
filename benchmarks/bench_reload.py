"""Reload a page mid-``track()`` (kernel busy) and time how soon the output is live again.

Starts its own ``jupyter lab`` (lab extension enabled, temp root/settings/job store) and
headless Debian Chromium, runs a long ``track()`` loop in a notebook, saves it, then reloads
the page ``--reloads`` times. For each reload it records, in the page's own clock:

- ``live_ms``: navigation start -> the output's bar first shows a value newer than before the
  reload (JupyterLab's own start-up included: most of it);
- ``after_paint_ms``: the output's first paint -> that live value (what the extension adds);
- ``cell_shown_ms``: navigation start -> the notebook's first cell in the DOM (JupyterLab alone);
- GET requests to ``jupyter-progress/api/jobs`` after the reload (polling: should be 0) and
  the EventSources the page opened (should be 1).

Then, for comparison, one reload with the lab extension disabled (the anywidget view alone):
does the bar move within ``--anywidget-wait`` seconds while the kernel is busy?

    .venv/bin/python benchmarks/bench_reload.py --reloads 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.lab_page import CHROMIUM, CHROMIUM_ARGS, run_all, wait_notebook_ready
from helpers.lab_server import run_lab_server

RENDERED = ".jp-OutputArea .jp-progress-renderer .jp-progress-widget"
INIT_SCRIPT = """
(() => {
  window.__bars = [];
  window.__eventSources = 0;
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(...args) { super(...args); window.__eventSources += 1; }
  };
  let last = null;
  window.__cellShown = null;
  const sample = () => {
    if (window.__cellShown === null && document.querySelector('.jp-Notebook .jp-Cell')) {
      window.__cellShown = performance.now();
    }
    const bar = document.querySelector('.jp-OutputArea .jp-progress-widget [role=progressbar]');
    const value = bar ? Number(bar.getAttribute('aria-valuenow')) : null;
    if (value !== last) { last = value; window.__bars.push([performance.now(), value]); }
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
})();
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def write_notebook(root: Path, items: int) -> str:
    name = f"reload-{uuid.uuid4().hex[:6]}.ipynb"
    source = (
        "import time\n"
        "from jupyter_progress import track\n"
        f"for i in track(range({items}), name='benchmark: reload mid-loop'):\n"
        "    time.sleep(0.05)"
    )
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "c1",
        "metadata": {},
        "outputs": [],
        "source": source,
    }
    notebook = {
        "cells": [cell],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / name).write_text(json.dumps(notebook))
    return name


def wait_kernel_and_run(page: Any) -> None:
    wait_notebook_ready(page)
    run_all(page, ran=f"() => !!document.querySelector({json.dumps(RENDERED)})")


def one_reload(page: Any, api: httpx.Client, job_id: str, wait_s: float) -> dict[str, Any]:
    before = api.get(f"jobs/{job_id}").json()["progress"]["processed"]
    gets: list[str] = []

    def record(request: Any) -> None:
        if request.method == "GET" and "/jupyter-progress/api/jobs" in request.url:
            gets.append(request.url)

    page.on("request", record)
    try:
        page.reload()
        deadline = time.monotonic() + wait_s
        samples: list[list[float]] = []
        while time.monotonic() < deadline:
            samples = page.evaluate("() => window.__bars || []")
            if any(v is not None and v > before for _, v in samples):
                break
            time.sleep(0.1)
        time.sleep(1.0)  # polling, if any, would show here
        sources = page.evaluate("() => window.__eventSources")
        cell_shown = page.evaluate("() => window.__cellShown")
    finally:
        page.remove_listener("request", record)
    shown = next((t for t, v in samples if v is not None), None)
    live = next((t for t, v in samples if v is not None and v > before), None)
    return {
        "live_ms": live,
        "after_paint_ms": None if live is None or shown is None else live - shown,
        "cell_shown_ms": cell_shown,
        "polls": len(gets),
        "event_sources": sources,
        "processing": api.get(f"jobs/{job_id}").json()["status"] == "processing",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=10)
    parser.add_argument("--anywidget-wait", type=float, default=15.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="bench-reload-") as temp,
        run_lab_server(Path(temp), lab_extension_enabled=True) as server,
    ):
        api = server.client
        items = 400 + args.reloads * 300
        name = write_notebook(server.root, items)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(60_000)
            page.goto(server.lab_url(name))
            wait_kernel_and_run(page)
            job_id = page.get_attribute(RENDERED, "data-job-id")
            time.sleep(1)
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.add_init_script(INIT_SCRIPT)
            runs = [one_reload(page, api, job_id, 30.0) for _ in range(args.reloads)]

            # For comparison: the anywidget view alone (extension disabled on reload).
            server.set_lab_extension_enabled(False)
            anywidget = one_reload(page, api, job_id, args.anywidget_wait)
            text = page.locator(".jp-OutputArea").first.text_content() or ""
            anywidget["output_text"] = " ".join(text.split())[:120]
            api.post(f"jobs/{job_id}/cancel")
            browser.close()

    live = [r["live_ms"] for r in runs if r["live_ms"] is not None]
    after = [r["after_paint_ms"] for r in runs if r["after_paint_ms"] is not None]
    cells = [r["cell_shown_ms"] for r in runs if r["cell_shown_ms"] is not None]
    figures = {
        "reloads": len(runs),
        "live_within_30s": len(live),
        "live_ms_p50": statistics.median(live) if live else None,
        "live_ms_p95": percentile(live, 0.95) if live else None,
        "after_paint_ms_p50": statistics.median(after) if after else None,
        "after_paint_ms_p95": percentile(after, 0.95) if after else None,
        "cell_shown_ms_p50": statistics.median(cells) if cells else None,
        "polls_after_reloads": sum(r["polls"] for r in runs),
        "event_sources_per_page": sorted({r["event_sources"] for r in runs}),
        "kernel_busy_throughout": all(r["processing"] for r in runs),
        "runs": runs,
        "anywidget_only": anywidget,
    }
    print(json.dumps(figures, indent=2))
    if live:
        print(
            f"\nreload -> first live value: p50 {figures['live_ms_p50']:.0f} ms, "
            f"p95 {figures['live_ms_p95']:.0f} ms (JupyterLab's start included); output's "
            f"first paint -> live: p50 {figures['after_paint_ms_p50']:.0f} ms, "
            f"p95 {figures['after_paint_ms_p95']:.0f} ms (JupyterLab shows the notebook's first "
            f"cell at p50 {figures['cell_shown_ms_p50']:.0f} ms); polling GETs: "
            f"{figures['polls_after_reloads']}; EventSources per page: "
            f"{figures['event_sources_per_page']}"
        )
    moved = anywidget["live_ms"] is not None
    print(
        f"anywidget view alone, {args.anywidget_wait:.0f} s after a reload with the kernel busy: "
        f"{'moved' if moved else 'never moved'} ({anywidget['output_text']!r})"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
