"""The anywidget front end in a real browser against a real ``jupyter lab``.

Run: ``.venv/bin/pytest tests/browser -m browser --basetemp=.pytest-tmp/browser -x -q``
(add ``-s`` to see the measured figures).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.lab_page import open_notebook, run_all
from helpers.lab_server import LabServer

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

JOBS_REQUEST = re.compile(r"/jupyter-progress/api/jobs")
EVENTS_REQUEST = re.compile(r"/jupyter-progress/api/events")
WIDGET = ".jp-OutputArea .jp-progress-widget"


class Requests:
    """Every request the page makes, and the ones to the progress API."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        self.times: list[float] = []
        page.on("request", self._record)

    def _record(self, request: Any) -> None:
        self.urls.append(request.url)
        self.times.append(time.monotonic())

    def jobs(self, since: float = 0.0) -> list[str]:
        return [
            url
            for url, at in zip(self.urls, self.times, strict=True)
            if at >= since and JOBS_REQUEST.search(url)
        ]

    def events(self, since: float = 0.0) -> list[str]:
        return [
            url
            for url, at in zip(self.urls, self.times, strict=True)
            if at >= since and EVENTS_REQUEST.search(url)
        ]


# Every EventSource the page opens (to drop the stream like a network failure would).
RECORD_EVENT_SOURCES = """
(() => {
  const Native = window.EventSource;
  window.__eventSources = [];
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      window.__eventSources.push(this);
    }
  };
})();
"""


def value_now(page: Any, selector: str = WIDGET) -> list[int]:
    return page.eval_on_selector_all(
        f"{selector} [role=progressbar]",
        "bars => bars.map(b => Number(b.getAttribute('aria-valuenow')))",
    )


def watch_bars(page: Any) -> None:
    """Record every aria-valuenow change (job id, value, Date.now()) in the page."""
    page.evaluate(
        """() => {
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
            window.__longTasks = [];
            try {
                new PerformanceObserver((list) => {
                    for (const e of list.getEntries()) window.__longTasks.push(e.duration);
                }).observe({type: 'longtask', buffered: false});
            } catch (e) {}
        }"""
    )


# ----- tests (in this order: the screenshots want a server with few jobs) -------------------


def test_screenshots_of_widget_and_jobs_panel(lab_server: LabServer, page: Any) -> None:
    """docs/images/widget.png and docs/images/jobs-panel.png, taken from a live page."""
    done = lab_server.create_job("resize thumbnails", total=40)
    lab_server.report(done["job_id"], success=40, status="completed")
    failed = lab_server.create_job("nightly report", total=12)
    lab_server.report(
        failed["job_id"],
        success=5,
        errors=1,
        message="cell 6 raised",
        error_samples=[{"item": "cell 6", "error": "KeyError: 'region'"}],
        status="failed",
    )
    stream = lab_server.create_job("stream sensor data", total=None)
    lab_server.report(stream["job_id"], success=1234, message="batch 1234")
    main = lab_server.create_job("convert files", total=200)
    lab_server.report(
        main["job_id"],
        success=121,
        errors=3,
        message="data/2026-11/b.csv",
        error_samples=[
            {"item": "data/x.csv", "error": "ValueError: could not convert 'n/a' to float"},
            {"item": "data/y.csv", "error": "UnicodeDecodeError: invalid start byte"},
            {"item": "data/z.csv", "error": "FileNotFoundError: data/z.csv"},
        ],
    )
    name = lab_server.write_notebook(
        [
            f"from jupyter_progress import JobProgress, JobsPanel\nJobProgress({main['job_id']!r})",
            "JobsPanel()",
        ]
    )
    requests = Requests(page)
    open_notebook(page, lab_server.lab_url(name))
    run_all(page)
    widget = page.locator(f"{WIDGET}[data-job-id='{main['job_id']}']").first
    widget.wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-OutputArea .jp-progress-jobs-panel "
        ".jp-progress-widget').length === 4"
    )
    widget.locator("details.jp-progress-errors summary").click()
    IMAGES.mkdir(parents=True, exist_ok=True)
    widget.screenshot(path=str(IMAGES / "widget.png"), animations="disabled")
    panel = page.locator(".jp-OutputArea .jp-progress-jobs-panel").first
    panel.screenshot(path=str(IMAGES / "jobs-panel.png"), animations="disabled")
    statuses = panel.locator(".jp-progress-widget").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert statuses == ["processing", "processing", "failed", "completed"]  # newest first
    assert widget.get_attribute("data-status") == "processing"
    bar = widget.locator("[role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "124"
    assert bar.get_attribute("aria-valuemax") == "200"
    assert widget.locator(".jp-progress-cancel").is_visible()
    indeterminate = panel.locator(f".jp-progress-widget[data-job-id='{stream['job_id']}']")
    assert indeterminate.locator("[role=progressbar]").get_attribute("aria-valuemax") is None
    # Cancel from the widget: a POST with the XSRF header, the badge follows the stream.
    widget.locator(".jp-progress-cancel").click()
    page.wait_for_function(
        f"""() => document.querySelector(
            ".jp-OutputArea .jp-progress-widget[data-job-id='{main["job_id"]}']"
        ).dataset.status === 'cancelled'"""
    )
    assert lab_server.job(main["job_id"])["status"] == "cancelled"

    # "Create New View for Output" of the JobsPanel cell: a second live panel, same stream.
    page.evaluate(
        """() => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            notebook.activeCellIndex = 1;
            window.jupyterapp.commands.execute('notebook:create-output-view');
        }"""
    )
    linked = page.locator(".jp-LinkedOutputView .jp-progress-jobs-panel")
    linked.wait_for()
    late = lab_server.create_job("started after the view opened", total=3)
    page.wait_for_function(
        """(id) => document.querySelectorAll(
            `.jp-progress-jobs-panel .jp-progress-widget[data-job-id='${id}']`).length === 2""",
        arg=late["job_id"],
    )
    assert (
        linked.locator(".jp-progress-widget").first.get_attribute("data-job-id") == (late["job_id"])
    )
    assert len(requests.events()) == 1
    assert [url for url in requests.jobs() if not url.endswith("/cancel")] == []


def test_track_bar_rises_while_the_cell_runs_and_ends_complete(
    lab_server: LabServer, page: Any
) -> None:
    name = lab_server.write_notebook(
        [
            "import time\n"
            "from jupyter_progress import track\n"
            "for i in track(range(40), name='demo loop'):\n"
            "    time.sleep(0.15)\n"
            "print('loop done')"
        ]
    )
    open_notebook(page, lab_server.lab_url(name))
    requests = Requests(page)
    watch_bars(page)
    run_all(page)
    widget = page.locator(WIDGET).first
    widget.wait_for()
    seen: list[int] = []
    busy_seen = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        values = value_now(page)
        if values:
            seen.append(values[0])
        if page.locator(".jp-OutputArea-output:has-text('loop done')").count():
            break
        prompt = page.locator(".jp-InputArea-prompt").first.text_content() or ""
        busy_seen = busy_seen or "*" in prompt
        time.sleep(0.1)
    page.wait_for_selector(f"{WIDGET}[data-status='completed']")
    final = value_now(page)[0]
    rising = [v for v in seen if 0 < v < 40]
    print(f"\n[track] sampled aria-valuenow while running: {sorted(set(seen))}")
    assert busy_seen
    assert len(set(rising)) >= 3, seen
    assert seen == sorted(seen), "the bar never goes back"
    assert final == 40
    assert widget.locator("[role=progressbar]").get_attribute("aria-valuemax") == "40"
    assert requests.jobs() == [], "no REST polling while the stream is healthy"
    assert len(requests.events()) == 1


def test_twenty_widgets_share_one_stream_and_update_fast(lab_server: LabServer, page: Any) -> None:
    jobs = [lab_server.create_job(f"job {i:02d}", total=60) for i in range(19)]
    jobs.append(lab_server.create_job("<img src=x onerror=alert(1)>", total=60))
    ids = [job["job_id"] for job in jobs]
    name = lab_server.write_notebook(
        [
            "from IPython.display import display\n"
            "from jupyter_progress import JobProgress, JobsPanel\n"
            f"for job_id in {ids!r}:\n"
            "    display(JobProgress(job_id))",
        ]
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_notebook(page, lab_server.lab_url(name))
    requests = Requests(page)
    run_all(page)
    page.wait_for_function(
        f"() => document.querySelectorAll('{WIDGET}').length === 20", timeout=60_000
    )
    page.wait_for_timeout(2_000)  # let the page settle: measure the updates only
    watch_bars(page)
    sent: dict[tuple[str, int], float] = {}
    start = time.monotonic()
    for step in range(1, 61):
        for job_id in ids:
            sent[(job_id, step)] = time.time() * 1000
            lab_server.report(job_id, success=step, message=f"<b>item {step}</b>")
        time.sleep(0.02)
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('{WIDGET} [role=progressbar]')]
            .every(b => b.getAttribute('aria-valuenow') === '60')"""
    )
    elapsed = time.monotonic() - start
    changes = page.evaluate("() => window.__bars")
    long_tasks = page.evaluate("() => window.__longTasks")
    delays = [at - sent[(job_id, value)] for job_id, value, at in changes if job_id in ids]
    delays.sort()
    p50 = statistics.median(delays)
    p95 = delays[int(0.95 * (len(delays) - 1))]
    print(
        f"\n[20 widgets] {len(ids) * 60} reports in {elapsed:.1f} s; {len(delays)} bar changes"
        f" (coalesced per frame); report->bar delay p50 {p50:.0f} ms, p95 {p95:.0f} ms;"
        f" event streams: {len(requests.events())}; REST requests: {len(requests.jobs())};"
        f" long tasks: {len(long_tasks)} (max {max(long_tasks, default=0):.0f} ms)"
    )
    assert len(requests.events()) == 1, requests.events()
    assert requests.jobs() == []
    assert p50 < 1000
    # The hostile name is text, never markup.
    hostile = page.locator(f"{WIDGET}[data-job-id='{ids[-1]}']")
    assert hostile.locator(".jp-progress-name").text_content() == "<img src=x onerror=alert(1)>"
    assert hostile.locator(".jp-progress-message").text_content() == "<b>item 60</b>"
    assert page.locator(".jp-OutputArea img[src='x']").count() == 0
    assert page.locator(".jp-OutputArea .jp-progress-widget b").count() == 0
    assert dialogs == []


def test_polls_every_5_s_while_the_stream_is_down_and_stops_when_back(
    lab_server: LabServer, page: Any
) -> None:
    job = lab_server.create_job("flaky network", total=100)
    job_id = job["job_id"]
    lab_server.report(job_id, success=10)
    name = lab_server.write_notebook(
        [f"from jupyter_progress import JobProgress\nJobProgress({job_id!r})"]
    )
    page.add_init_script(RECORD_EVENT_SOURCES)
    open_notebook(page, lab_server.lab_url(name))
    requests = Requests(page)
    run_all(page)
    bar = page.locator(f"{WIDGET}[data-job-id='{job_id}'] [role=progressbar]")
    page.wait_for_function(
        "(sel) => document.querySelector(sel)?.getAttribute('aria-valuenow') === '10'",
        arg=f"{WIDGET}[data-job-id='{job_id}'] [role=progressbar]",
    )
    assert requests.jobs() == []

    # Kill the stream: every new connection to it fails, and the open one is dropped as a
    # network error drops it (closed, then its "error" event).
    page.route("**/jupyter-progress/api/events**", lambda route: route.abort())
    down_at = time.monotonic()
    dropped = page.evaluate(
        """() => {
            const open = window.__eventSources.filter((s) => s.readyState !== 2);
            for (const source of open) {
                source.close();
                source.dispatchEvent(new Event('error'));
            }
            return open.length;
        }"""
    )
    assert dropped == 1
    page.wait_for_selector(f"{WIDGET} .jp-progress-notice:not([hidden])")
    lab_server.report(job_id, success=30)
    page.wait_for_timeout(11_000)  # (pumps the page events)
    polls = requests.jobs(since=down_at)
    print(f"\n[stream down] polls in 11 s: {len(polls)}: {polls}")
    assert 2 <= len(polls) <= 4, polls
    assert all(url.endswith(f"/jobs/{job_id}") for url in polls)
    assert bar.get_attribute("aria-valuenow") == "30", "polling kept the bar moving"

    # The stream is back: the client reconnects with its resume point; polling stops.
    page.unroute("**/jupyter-progress/api/events**")
    back_at = time.monotonic()
    page.wait_for_selector(f"{WIDGET} .jp-progress-notice[hidden]", state="attached")
    reconnect = requests.events(since=back_at)
    assert reconnect and "last_event_id=" in reconnect[-1]
    settled = time.monotonic()
    lab_server.report(job_id, success=55)
    page.wait_for_function(
        "(sel) => document.querySelector(sel)?.getAttribute('aria-valuenow') === '55'",
        arg=f"{WIDGET}[data-job-id='{job_id}'] [role=progressbar]",
        timeout=2_000,
    )
    page.wait_for_timeout(6_000)
    assert requests.jobs(since=settled) == [], "no polling once the stream is back"
    print(f"[stream back] reconnected within {settled - back_at:.1f} s")

    # Clearing the output removes the view: its cleanup closes the page's EventSource.
    page.evaluate(
        "() => { window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs'); }"
    )
    page.wait_for_function(
        "() => window.__eventSources.length > 0"
        " && window.__eventSources.every((s) => s.readyState === 2)",
        timeout=10_000,
    )


def test_reload_mid_job_resumes(lab_server: LabServer, page: Any) -> None:
    job = lab_server.create_job("survives a reload", total=50)
    job_id = job["job_id"]
    name = lab_server.write_notebook(
        [f"from jupyter_progress import JobProgress\nJobProgress({job_id!r})"]
    )
    open_notebook(page, lab_server.lab_url(name))
    run_all(page)
    selector = f"{WIDGET}[data-job-id='{job_id}'] [role=progressbar]"
    lab_server.report(job_id, success=5)
    page.wait_for_function(
        "(sel) => document.querySelector(sel)?.getAttribute('aria-valuenow') === '5'",
        arg=selector,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(1_000)

    stop = threading.Event()

    def report_in_background() -> None:
        step = 5
        while not stop.is_set() and step < 45:
            step += 1
            lab_server.report(job_id, success=step)
            time.sleep(0.25)

    reporter = threading.Thread(target=report_in_background, daemon=True)
    reporter.start()
    try:
        page.reload()
        page.wait_for_selector(selector, timeout=60_000)
        first = int(page.get_attribute(selector, "aria-valuenow") or 0)
        page.wait_for_function(
            "([sel, n]) => Number(document.querySelector(sel)?.getAttribute('aria-valuenow')) > n",
            arg=[selector, first],
            timeout=15_000,
        )
    finally:
        stop.set()
        reporter.join()
    lab_server.report(job_id, success=50, status="completed")
    page.wait_for_selector(f"{WIDGET}[data-job-id='{job_id}'][data-status='completed']")
    assert page.get_attribute(selector, "aria-valuenow") == "50"


def test_notebook7_shows_live_progress(lab_server: LabServer, page: Any) -> None:
    job = lab_server.create_job("in notebook 7", total=20)
    job_id = job["job_id"]
    name = lab_server.write_notebook(
        [f"from jupyter_progress import JobProgress\nJobProgress({job_id!r})"]
    )
    requests = Requests(page)
    open_notebook(page, lab_server.notebook7_url(name))
    page.locator(".jp-Cell .jp-InputArea-editor").first.click()
    for _ in range(5):
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_selector(WIDGET, timeout=10_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    selector = f"{WIDGET}[data-job-id='{job_id}'] [role=progressbar]"
    for step in (4, 12, 20):
        lab_server.report(job_id, success=step)
        page.wait_for_function(
            "([sel, n]) => document.querySelector(sel)?.getAttribute('aria-valuenow') === n",
            arg=[selector, str(step)],
        )
    assert requests.jobs() == []
    assert len(requests.events()) == 1


def test_without_a_reachable_server_the_widget_follows_the_kernel(
    lab_server: LabServer, page: Any
) -> None:
    """Like VS Code or Colab: no jupyter-config-data, so no stream; the kernel syncs `job`."""
    name = lab_server.write_notebook(
        [
            "import time\n"
            "from jupyter_progress import track\n"
            "for i in track(range(30), name='kernel-synced loop'):\n"
            "    time.sleep(0.15)\n"
            "print('loop done')"
        ]
    )
    open_notebook(page, lab_server.lab_url(name))
    page.evaluate("() => document.getElementById('jupyter-config-data').remove()")
    requests = Requests(page)
    run_all(page)
    widget = page.locator(WIDGET).first
    widget.wait_for()
    assert "No jupyter-progress server is reachable" in (
        widget.locator(".jp-progress-notice").text_content() or ""
    )
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        values = value_now(page)
        if values:
            seen.append(values[0])
        if page.locator(".jp-OutputArea-output:has-text('loop done')").count():
            break
        page.wait_for_timeout(100)
    page.wait_for_selector(f"{WIDGET}[data-status='completed']")
    assert len({v for v in seen if 0 < v < 30}) >= 3, seen
    assert value_now(page)[0] == 30
    assert widget.locator(".jp-progress-cancel").is_hidden()
    assert requests.jobs() == [] and requests.events() == []


def test_child_rows_in_the_widget_and_one_request_delete_in_the_jobs_panel(
    lab_server: LabServer, page: Any
) -> None:
    """The anywidget view shows a job's children as compact rows; a leave=False one goes when
    it completes. Its JobsPanel deletes every finished job in one request after an inline
    confirmation."""
    parent = lab_server.create_job("fit model", total=4)
    parent_id = parent["job_id"]
    lab_server.report(parent_id, success=1, postfix="loss=0.50")
    inner = lab_server.create_job("batches", total=50, parent_id=parent_id, leave=False)
    lab_server.report(inner["job_id"], success=20)
    done = lab_server.create_job("old run", total=1)
    lab_server.report(done["job_id"], success=1, status="completed")
    name = lab_server.write_notebook(
        [
            f"from jupyter_progress import JobProgress, JobsPanel\nJobProgress({parent_id!r})",
            "JobsPanel()",
        ]
    )
    requests = Requests(page)
    open_notebook(page, lab_server.lab_url(name))
    run_all(page)
    widget = f"{WIDGET}[data-job-id='{parent_id}']"
    child = f"{widget} .jp-progress-child[data-job-id='{inner['job_id']}']"
    page.wait_for_selector(child)
    lab_server.report(inner["job_id"], success=35)
    page.wait_for_function(
        "(sel) => document.querySelector(sel)?.getAttribute('aria-valuenow') === '35'",
        arg=f"{child} [role=progressbar]",
    )
    assert "loss=0.50" in (page.locator(f"{widget} .jp-progress-postfix").text_content() or "")
    lab_server.report(inner["job_id"], success=50, status="completed")
    page.wait_for_selector(child, state="detached")

    panel = page.locator(".jp-OutputArea .jp-progress-jobs-panel").first
    panel.locator(f".jp-progress-jobs-row[data-job-id='{done['job_id']}']").wait_for()
    assert panel.locator(f".jp-progress-jobs-row[data-job-id='{inner['job_id']}']").count() == 0
    panel.locator("button.jp-progress-jobs-clear").click()
    panel.locator("button.jp-progress-jobs-confirm-yes").click()
    panel.locator(f".jp-progress-jobs-row[data-job-id='{done['job_id']}']").wait_for(
        state="detached"
    )
    deletes = [url for url in requests.jobs() if "status=finished" in url]
    assert len(deletes) == 1, requests.jobs()
    assert lab_server.client.get(f"jobs/{done['job_id']}").status_code == 404
    assert [url for url in requests.jobs() if "status=finished" not in url] == []
    lab_server.client.post(f"jobs/{parent_id}/cancel")
