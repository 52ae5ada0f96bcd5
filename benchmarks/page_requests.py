"""P4/P5: what a JupyterLab page costs while a job runs, stream vs 500 ms polling.

Starts a real ``jupyter lab`` (the anywidget front end; the lab extension disabled) and
headless Chromium, shows ``JobProgress`` widgets for reported jobs, reports every job at
10 Hz for ``--seconds`` and counts, in the same page and the same run:

- the widget (event stream): requests to ``jupyter-progress/api/jobs…`` and ``events``,
  and the delay from each report (POST sent) to the bar's change in the page;
- the seed's alternative: a poller in the page that GETs ``jobs/{id}`` every 500 ms,
  its request count and how stale its view is (report -> seen by the poller).

Run: ``.venv/bin/python benchmarks/page_requests.py --seconds 60 [--widgets 20]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.lab_page import CHROMIUM, CHROMIUM_ARGS
from helpers.lab_server import run_lab_server

POLLER = """
([url, ids]) => {
  window.__poll = {requests: 0, seen: []};
  const last = {};
  const tick = async () => {
    for (const id of ids) {
      window.__poll.requests += 1;
      const job = await (await fetch(url + id, {cache: 'no-store'})).json();
      const value = job.progress.processed;
      if (last[id] !== value) {
        last[id] = value;
        window.__poll.seen.push([id, value, Date.now()]);
      }
    }
  };
  window.__pollTimer = setInterval(tick, 500);
}
"""

WATCH = """
() => {
  window.__bars = [];
  new MutationObserver((records) => {
    const now = Date.now();
    for (const r of records) {
      const root = r.target.closest('.jp-progress-widget');
      window.__bars.push([root && root.dataset.jobId,
                          Number(r.target.getAttribute('aria-valuenow')), now]);
    }
  }).observe(document.body, {subtree: true, attributes: true,
                             attributeFilter: ['aria-valuenow']});
}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def visible_after(
    sent: dict[tuple[str, int], float], seen: list[tuple[str, int, float]]
) -> list[float]:
    """For every report, ms until the page showed it (or a later value) for that job."""
    by_job: dict[str, list[tuple[int, float]]] = {}
    for job_id, value, at in seen:
        by_job.setdefault(job_id, []).append((value, at))
    delays = []
    for (job_id, value), sent_at in sent.items():
        shown = [at for v, at in by_job.get(job_id, []) if v >= value]
        if shown:
            delays.append(min(shown) - sent_at)
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--widgets", type=int, default=1)
    parser.add_argument("--hz", type=float, default=10.0)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as tmp,
        run_lab_server(Path(tmp)) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        steps = int(args.seconds * args.hz)
        ids = [server.create_job(f"bench {i}", total=steps)["job_id"] for i in range(args.widgets)]
        name = server.write_notebook(
            [
                "from IPython.display import display\n"
                "from jupyter_progress import JobProgress\n"
                f"for job_id in {ids!r}:\n"
                "    display(JobProgress(job_id))"
            ]
        )
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(server.lab_url(name))
        page.wait_for_function(
            """() => {
                const name = document.querySelector('.jp-KernelName');
                const idle = document.querySelector(
                    '.jp-Notebook-ExecutionIndicator[data-status="idle"]');
                return name && !/no kernel/i.test(name.textContent) && idle;
            }"""
        )
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        page.wait_for_function(
            f"() => document.querySelectorAll('.jp-OutputArea .jp-progress-widget').length"
            f" === {len(ids)}"
        )
        page.wait_for_timeout(1000)
        page.evaluate(WATCH)
        page.evaluate(POLLER, [f"{server.url}jupyter-progress/api/jobs/", ids[:1]])

        sent: dict[tuple[str, int], float] = {}
        done = threading.Event()

        def report() -> None:
            start = time.monotonic()
            for step in range(1, steps + 1):
                for job_id in ids:
                    sent[(job_id, step)] = time.time() * 1000
                    server.report(job_id, success=step)
                delay = start + step / args.hz - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            done.set()

        thread = threading.Thread(target=report, daemon=True)
        began = time.monotonic()
        thread.start()
        while not done.is_set():
            page.wait_for_timeout(250)  # keeps Playwright's event delivery going
        elapsed = time.monotonic() - began
        page.wait_for_timeout(1000)
        page.evaluate("() => clearInterval(window.__pollTimer)")
        bars = page.evaluate("() => window.__bars")
        poll = page.evaluate("() => window.__poll")
        browser.close()

    widget_jobs = [u for u in requests if "/jupyter-progress/api/jobs" in u]
    events = [u for u in requests if "/jupyter-progress/api/events" in u]
    delays = visible_after(sent, bars)
    stale = visible_after(sent, poll["seen"])
    print(f"job: {args.seconds:g} s at {args.hz:g} Hz, {len(ids)} widget(s); ran {elapsed:.1f} s")
    print(
        f"stream widget: {len(widget_jobs) - poll['requests']} requests to api/jobs, "
        f"{len(events)} event stream(s); report->bar delay p50 "
        f"{statistics.median(delays):.0f} ms, p95 {percentile(delays, 0.95):.0f} ms "
        f"({len(bars)} bar changes)"
    )
    print(
        f"500 ms polling (1 job): {poll['requests']} requests; report->seen delay p50 "
        f"{statistics.median(stale):.0f} ms, p95 {percentile(stale, 0.95):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
