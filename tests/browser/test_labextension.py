"""The JupyterLab extension in a real browser against a real ``jupyter lab``: the kernel-free
MIME renderer, the Jobs side panel and the status-bar item.

Run: ``.venv/bin/pytest tests/browser/test_labextension.py --basetemp=.pytest-tmp/labext -x -q``
(add ``-s`` to see the measured figures). The server of this module runs with the lab
extension enabled (``lab_extension_enabled``), unlike the anywidget tests' server.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.lab_page import open_notebook, run_all
from helpers.lab_server import LabServer

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
MIME = "application/vnd.jupyter-progress.job+json"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

JOBS_REQUEST = re.compile(r"/jupyter-progress/api/jobs")
EVENTS_REQUEST = re.compile(r"/jupyter-progress/api/events")
RENDERED = ".jp-OutputArea .jp-progress-renderer .jp-progress-widget"
PANEL = "#jupyter-progress-jobs .jp-progress-jobs-panel"
STATUS = ".jp-progress-status"

# Every EventSource the page opens, and whether it is still open, from the first script on.
COUNT_EVENT_SOURCES = """
(() => {
  const Native = window.EventSource;
  window.__eventSources = [];
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      const entry = {url: String(args[0]), open: true};
      window.__eventSources.push(entry);
      const close = this.close.bind(this);
      this.close = () => { entry.open = false; close(); };
    }
  };
})();
"""

# The renderer's bar values over time (performance.now(), i.e. ms since navigation start).
SAMPLE_RENDERED_BARS = """
(() => {
  window.__renderedBars = [];
  let last = null;
  const sample = () => {
    const bar = document.querySelector(
      '.jp-OutputArea .jp-progress-renderer .jp-progress-widget [role=progressbar]');
    const value = bar ? Number(bar.getAttribute('aria-valuenow')) : null;
    if (value !== last) {
      last = value;
      window.__renderedBars.push([performance.now(), value]);
    }
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
})();
"""


@pytest.fixture(scope="module")
def lab_extension_enabled() -> bool:
    return True


class Requests:
    """The page's requests to the progress API."""

    def __init__(self, page: Any) -> None:
        self.seen: list[tuple[float, str, str]] = []
        page.on(
            "request",
            lambda request: self.seen.append((time.monotonic(), request.method, request.url)),
        )

    def jobs(self, since: float = 0.0, method: str = "GET") -> list[str]:
        """Requests to ``jobs…`` (GET by default: polling would be GETs)."""
        return [
            url
            for at, verb, url in self.seen
            if at >= since and verb == method and JOBS_REQUEST.search(url)
        ]

    def events(self, since: float = 0.0) -> list[str]:
        return [url for at, _, url in self.seen if at >= since and EVENTS_REQUEST.search(url)]


def job_output(job_id: str, job: dict[str, Any] | None) -> dict[str, Any]:
    """A saved output as `JobProgress` leaves it (minus the widget view)."""
    return {
        "output_type": "display_data",
        "data": {MIME: {"job_id": job_id, "job": job}, "text/plain": f"job {job_id}"},
        "metadata": {},
    }


def write_notebook_with_outputs(
    server: LabServer, outputs: list[list[dict[str, Any]]], name: str | None = None
) -> str:
    """A saved notebook whose cells already hold outputs (no kernel needed to show them)."""
    name = name or f"saved-{uuid.uuid4().hex[:8]}.ipynb"
    cells = [
        {
            "cell_type": "code",
            "execution_count": index + 1,
            "id": uuid.uuid4().hex[:8],
            "metadata": {},
            "outputs": cell_outputs,
            "source": f"# cell {index + 1}",
        }
        for index, cell_outputs in enumerate(outputs)
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (server.root / name).write_text(json.dumps(notebook))
    return name


def run_from_palette(page: Any, label: str) -> None:
    """Run a command by its palette label; retry the shortcut until the app handles it."""
    for attempt in range(10):
        if attempt % 2:  # the shortcut, as a user would, or the same command directly
            page.keyboard.press("Control+Shift+C")
        else:
            page.evaluate(
                "() => window.jupyterapp?.commands.execute('apputils:activate-command-palette')"
            )
        palette = page.locator(".lm-CommandPalette-input:visible")
        try:
            palette.wait_for(timeout=2_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    palette.fill(label)
    page.locator(".lm-CommandPalette-item:visible", has_text=label).first.wait_for()
    page.keyboard.press("Enter")


def rendered_value(page: Any, job_id: str) -> int | None:
    value = page.get_attribute(
        f"{RENDERED}[data-job-id='{job_id}'] [role=progressbar]", "aria-valuenow"
    )
    return None if value is None else int(value)


def wait_value(page: Any, selector: str, predicate: str, timeout: float = 15_000) -> None:
    """Wait until ``predicate`` (JS, over ``v`` = the bar's aria-valuenow) holds."""
    page.wait_for_function(
        f"""(sel) => {{
            const bar = document.querySelector(sel);
            if (!bar) return false;
            const v = Number(bar.getAttribute('aria-valuenow'));
            return {predicate};
        }}""",
        arg=f"{selector} [role=progressbar]",
        timeout=timeout,
    )


def shut_down_kernels(server: LabServer) -> None:
    api = httpx.Client(
        base_url=server.url, headers={"Authorization": f"token {server.token}"}, timeout=10
    )
    with api:
        for session in api.get("api/sessions").json():
            api.delete(f"api/sessions/{session['id']}")
        for kernel in api.get("api/kernels").json():
            api.delete(f"api/kernels/{kernel['id']}")


def forget_all_jobs(server: LabServer) -> None:
    """Start from a clean server: cancel and forget whatever earlier tests left."""
    server.forget_all_jobs()


# ----- the MIME renderer ----------------------------------------------------------------------


def test_reload_while_track_runs_shows_live_progress_within_2_s(
    lab_server: LabServer, page: Any
) -> None:
    """The busy-kernel case: anywidget shows "Loading widget..." until the cell ends; the
    renderer shows the live bar again at once, from the event stream, without polling."""
    name = lab_server.write_notebook(
        [
            "import time\n"
            "from jupyter_progress import track\n"
            "for i in track(range(3000), name='survives reloads'):\n"
            "    time.sleep(0.05)"
        ]
    )
    open_notebook(page, lab_server.lab_url(name))
    run_all(page)
    page.wait_for_selector(RENDERED)
    wait_value(page, RENDERED, "v >= 5")
    job_id = page.get_attribute(RENDERED, "data-job-id")
    assert job_id
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = json.loads((lab_server.root / name).read_text())
    outputs = saved["cells"][0]["outputs"]
    assert any(MIME in output.get("data", {}) for output in outputs), outputs

    page.add_init_script(SAMPLE_RENDERED_BARS)
    page.add_init_script(COUNT_EVENT_SOURCES)
    timings = []
    for attempt in range(3):
        before = lab_server.job(job_id)["progress"]["processed"]
        requests = Requests(page)
        reloaded_at = time.monotonic()
        page.reload()
        page.wait_for_selector(RENDERED, timeout=30_000)
        # The kernel is still busy in the loop: the cell's prompt says so.
        assert lab_server.job(job_id)["status"] == "processing"
        page.wait_for_function(
            """(before) => {
                const s = window.__renderedBars || [];
                const live = s.findIndex(([, v]) => v !== null && v > before);
                return live >= 0 && s.slice(live + 1).some(([, v]) => v > s[live][1]);
            }""",
            arg=before,
            timeout=15_000,
        )
        samples = page.evaluate("() => window.__renderedBars")
        shown = next(t for t, v in samples if v is not None)
        first_live = next(t for t, v in samples if v is not None and v > before)
        timings.append((first_live, first_live - shown))
        time.sleep(1.0)
        assert requests.jobs(since=reloaded_at) == [], "no REST polling after the reload"
        sources = page.evaluate("() => window.__eventSources")
        assert len(sources) == 1 and sources[0]["open"], sources
        assert page.locator(f"{RENDERED} .jp-progress-notice:not([hidden])").count() == 0
        if attempt == 0:
            IMAGES.mkdir(parents=True, exist_ok=True)
            page.locator(".jp-Notebook .jp-Cell").first.screenshot(
                path=str(IMAGES / "renderer-after-reload.png")
            )
    print(
        "\n[reload] ms from reload to the first live value (JupyterLab's own start included),"
        f" and from the output's first paint to it: {[(round(a), round(b)) for a, b in timings]};"
        f" medians {statistics.median(a for a, _ in timings):.0f},"
        f" {statistics.median(b for _, b in timings):.0f}"
    )
    # What this extension controls: the output is live within 2 s of being shown (in
    # practice in its first frame, the status bar having opened the stream already).
    assert max(b for _, b in timings) < 2000, timings
    # The whole reload, JupyterLab's start on a loaded 2-core CI machine included.
    assert max(a for a, _ in timings) < 20_000, timings
    # The anywidget view of the same output is not what shows: ours ranks first.
    assert page.locator(".jp-OutputArea .jp-progress-host").count() == 0
    lab_server.client.post(f"jobs/{job_id}/cancel")
    page.wait_for_selector(f"{RENDERED}[data-status='cancelled']", timeout=15_000)


def test_reopened_notebook_without_kernel_shows_final_state_from_server(
    lab_server: LabServer, page: Any
) -> None:
    name = lab_server.write_notebook(
        [
            "import time\n"
            "from jupyter_progress import track\n"
            "for i in track(range(30), name='finished while away'):\n"
            "    time.sleep(0.05)"
        ]
    )
    open_notebook(page, lab_server.lab_url(name))
    run_all(page)
    page.wait_for_selector(f"{RENDERED}[data-status='completed']", timeout=30_000)
    job_id = page.get_attribute(RENDERED, "data-job-id")
    assert job_id
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.goto(f"{lab_server.url}lab?token={lab_server.token}")
    shut_down_kernels(lab_server)
    # A saved state older than the server's: what the output held before the loop ended.
    saved = json.loads((lab_server.root / name).read_text())
    for output in saved["cells"][0]["outputs"]:
        if MIME in output.get("data", {}):
            job = output["data"][MIME]["job"]
            job.update(status="processing", progress={**job["progress"], "processed": 7})
    (lab_server.root / name).write_text(json.dumps(saved))

    requests = Requests(page)
    page.goto(lab_server.lab_url(name))
    page.wait_for_selector(f"{RENDERED}[data-job-id='{job_id}'][data-status='completed']")
    view = page.locator(f"{RENDERED}[data-job-id='{job_id}']")
    assert view.get_attribute("data-source") == "server"
    assert rendered_value(page, job_id) == 30
    assert view.locator(".jp-progress-notice").is_hidden()
    assert "model not found" not in (page.locator(".jp-OutputArea").first.text_content() or "")
    assert requests.jobs() == []


def test_job_unknown_to_the_server_shows_saved_state_marked_as_such(
    lab_server: LabServer, page: Any
) -> None:
    known = lab_server.create_job("known job", total=10)
    lab_server.report(known["job_id"], success=4)
    gone_id = uuid.uuid4().hex
    gone = {
        "job_id": gone_id,
        "name": "a job of another server",
        "kind": "reported",
        "status": "processing",
        "progress": {"processed": 3, "total": 8, "success": 3, "errors": 0, "percentage": 37.5},
        "message": "<b>not markup</b>",
        "error_samples": [],
        "rate": None,
        "eta_seconds": None,
        "created_at": "2026-11-20T10:00:00.000Z",
        "started_at": None,
        "finished_at": None,
    }
    name = write_notebook_with_outputs(
        lab_server, [[job_output(gone_id, gone)], [job_output(known["job_id"], None)]]
    )
    requests = Requests(page)
    open_notebook(page, lab_server.lab_url(name), kernel=False)
    view = page.locator(f"{RENDERED}[data-job-id='{gone_id}']")
    page.wait_for_selector(f"{RENDERED}[data-job-id='{gone_id}'][data-source='saved']")
    assert view.locator(".jp-progress-notice").text_content() == (
        "The server no longer knows this job: showing the last state saved in the notebook."
    )
    assert rendered_value(page, gone_id) == 3
    assert view.locator(".jp-progress-cancel").is_hidden()
    # The notebook was written by hand, so it is untrusted: the renderer is safe, it renders.
    trusted = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.cells.get(0).trusted"
    )
    assert trusted is False
    assert view.locator(".jp-progress-message").text_content() == "<b>not markup</b>"
    assert view.locator(".jp-progress-message b").count() == 0
    # The other output (no saved state) is live.
    wait_value(page, f"{RENDERED}[data-job-id='{known['job_id']}']", "v === 4")
    lab_server.report(known["job_id"], success=9)
    wait_value(page, f"{RENDERED}[data-job-id='{known['job_id']}']", "v === 9")
    # A job the stream's snapshot lacks is asked for once (the snapshot holds only the
    # newest finished jobs), never polled.
    time.sleep(1.0)
    assert requests.jobs() == [f"{lab_server.url}jupyter-progress/api/jobs/{gone_id}"]


def test_notebook7_renders_live_jobs_without_a_kernel(lab_server: LabServer, page: Any) -> None:
    job = lab_server.create_job("in notebook 7", total=5)
    job_id = job["job_id"]
    lab_server.report(job_id, success=1)
    name = write_notebook_with_outputs(lab_server, [[job_output(job_id, None)]])
    requests = Requests(page)
    open_notebook(page, lab_server.notebook7_url(name), kernel=False)
    selector = f"{RENDERED}[data-job-id='{job_id}']"
    wait_value(page, selector, "v === 1")
    lab_server.report(job_id, success=3)
    wait_value(page, selector, "v === 3")
    lab_server.report(job_id, success=5, status="completed")
    page.wait_for_selector(f"{selector}[data-status='completed']")
    assert rendered_value(page, job_id) == 5
    assert requests.jobs() == []
    # The Jobs panel opens from the command palette in Notebook 7's right sidebar too.
    page.locator(".jp-Notebook").first.click()
    run_from_palette(page, "Show Jobs")
    page.wait_for_selector(f"{PANEL} .jp-progress-widget[data-job-id='{job_id}']")


# ----- the Jobs panel and the status bar ------------------------------------------------------


def test_panel_and_status_bar_follow_jobs_live_cancel_and_delete(
    lab_server: LabServer, page: Any
) -> None:
    forget_all_jobs(lab_server)
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
    running = [lab_server.create_job(f"convert batch {i}", total=100) for i in range(3)]
    for index, job in enumerate(running):
        lab_server.report(job["job_id"], success=10 * (index + 1))

    requests = Requests(page)
    page.add_init_script(COUNT_EVENT_SOURCES)
    page.goto(f"{lab_server.url}lab?reset&token={lab_server.token}")
    status = page.locator(STATUS)
    status.wait_for()
    page.wait_for_function(f"() => document.querySelector('{STATUS}').dataset.running === '3'")

    # "Show Jobs" in the command palette opens the panel; so does the status-bar item.
    run_from_palette(page, "Show Jobs")
    panel = page.locator(PANEL)
    panel.wait_for()
    page.evaluate("() => window.jupyterapp.shell.collapseRight()")
    panel.wait_for(state="hidden")
    status.click()
    panel.wait_for()
    rows = panel.locator(".jp-progress-widget")
    page.wait_for_function(
        f"() => document.querySelectorAll('{PANEL} .jp-progress-widget').length === 5"
    )
    names = rows.locator(".jp-progress-name").all_text_contents()
    assert names == [
        "convert batch 2",
        "convert batch 1",
        "convert batch 0",
        "nightly report",
        "resize thumbnails",
    ], names  # newest first

    # Live: every running job moves; the status bar counts them.
    for step in range(1, 6):
        for index, job in enumerate(running):
            lab_server.report(job["job_id"], success=10 * (index + 1) + 5 * step)
        time.sleep(0.1)
    for index, job in enumerate(running):
        wait_value(page, f"{PANEL} [data-job-id='{job['job_id']}']", f"v === {10 * index + 35}")
    lab_server.report(running[0]["job_id"], success=100, status="completed")
    page.wait_for_function(f"() => document.querySelector('{STATUS}').dataset.running === '2'")

    # A running row's Cancel shows without expanding; a row expands on click.
    assert panel.locator(
        f".jp-progress-widget[data-job-id='{running[2]['job_id']}'] .jp-progress-cancel"
    ).is_visible()
    failed_row = panel.locator(f".jp-progress-widget[data-job-id='{failed['job_id']}']")
    assert failed_row.locator(".jp-progress-errors").count() == 0, "details built on expansion"
    failed_row.locator("button.jp-progress-toggle").click()
    assert failed_row.locator("button.jp-progress-toggle").get_attribute("aria-expanded") == "true"
    failed_row.locator("details.jp-progress-errors summary").click()
    assert "KeyError: 'region'" in (failed_row.locator(".jp-progress-errors").text_content() or "")

    IMAGES.mkdir(parents=True, exist_ok=True)
    page.locator("#jupyter-progress-jobs").screenshot(path=str(IMAGES / "lab-jobs-panel.png"))

    # Filter by status.
    panel.locator("select.jp-progress-jobs-filter").select_option("running")
    assert panel.locator(".jp-progress-widget:visible").count() == 2
    panel.locator("select.jp-progress-jobs-filter").select_option("completed")
    visible = panel.locator(".jp-progress-widget:visible .jp-progress-name").all_text_contents()
    assert sorted(visible) == ["convert batch 0", "resize thumbnails"]
    panel.locator("select.jp-progress-jobs-filter").select_option("all")

    # Cancel from the panel.
    target = running[1]["job_id"]
    panel.locator(f".jp-progress-widget[data-job-id='{target}'] .jp-progress-cancel").click()
    page.wait_for_selector(
        f"{PANEL} .jp-progress-widget[data-job-id='{target}'][data-status='cancelled']"
    )
    assert lab_server.job(target)["status"] == "cancelled"
    page.wait_for_function(f"() => document.querySelector('{STATUS}').dataset.running === '1'")

    # Delete every finished job, after JupyterLab's dialog; the running one stays.
    panel.locator("button.jp-progress-jobs-clear").click()
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    page.wait_for_function(
        f"() => document.querySelectorAll('{PANEL} .jp-progress-widget').length === 1"
    )
    assert rows.locator(".jp-progress-name").all_text_contents() == ["convert batch 2"]
    assert lab_server.client.get(f"jobs/{done['job_id']}").status_code == 404

    # No polling: the panel follows the stream. It asked twice, each once, on the user's
    # actions: the children of the row expanded, the older jobs of the status chosen.
    api = f"{lab_server.url}jupyter-progress/api/"
    assert requests.jobs() == [
        f"{api}jobs?limit=100&parent={failed['job_id']}",
        f"{api}jobs?limit=52&status=completed",
    ]
    assert len(requests.jobs(method="POST")) == 1  # the cancel
    assert requests.jobs(method="DELETE") == [
        f"{lab_server.url}jupyter-progress/api/jobs?status=finished"
    ], "one request for every finished job"
    sources = page.evaluate("() => window.__eventSources")
    assert len(sources) == 1, sources


def test_notebook_job_opens_its_executed_copy_from_the_panel(
    lab_server: LabServer, page: Any
) -> None:
    """A notebook job's ``details.output_path`` is its executed copy; the panel opens it."""
    source = lab_server.write_notebook(["x = 6 * 7", "print(x)"], name="report.ipynb")
    response = lab_server.client.post(
        "jobs", json={"kind": "notebook", "name": "nightly report", "path": source}
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["job_id"]
    page.goto(f"{lab_server.url}lab?reset&token={lab_server.token}")
    page.locator(STATUS).wait_for()
    page.evaluate("() => window.jupyterapp.commands.execute('jupyter-progress:show-jobs')")
    row = page.locator(f"{PANEL} .jp-progress-jobs-row[data-job-id='{job_id}']")
    row.locator(".jp-progress-widget[data-status='completed']").wait_for(timeout=90_000)
    output_path = lab_server.job(job_id)["details"]["output_path"]
    row.locator("button.jp-progress-toggle").click()
    assert (lab_server.root / output_path).exists()
    button = row.locator(".jp-progress-open-output")
    assert button.get_attribute("data-path") == output_path
    button.click()
    page.wait_for_selector(f".lm-TabBar-tab:has-text('{Path(output_path).name}')")


def test_one_event_stream_with_panel_status_bar_and_20_outputs(
    lab_server: LabServer, page: Any
) -> None:
    forget_all_jobs(lab_server)
    jobs = [lab_server.create_job(f"parallel part {i:02d}", total=20) for i in range(20)]
    ids = [job["job_id"] for job in jobs]
    name = write_notebook_with_outputs(lab_server, [[job_output(job_id, None)] for job_id in ids])
    requests = Requests(page)
    page.add_init_script(COUNT_EVENT_SOURCES)
    open_notebook(page, lab_server.lab_url(name), kernel=False)
    page.evaluate("() => window.jupyterapp.commands.execute('jupyter-progress:show-jobs')")
    page.locator(PANEL).wait_for()
    page.wait_for_function(f"() => document.querySelectorAll('{RENDERED}').length === 20")
    for step in range(1, 21):
        for job_id in ids:
            lab_server.report(job_id, success=step)
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('{RENDERED} [role=progressbar]')]
            .every(b => b.getAttribute('aria-valuenow') === '20')"""
    )
    wait_value(page, f"{PANEL} [data-job-id='{ids[0]}']", "v === 20")
    page.wait_for_function(f"() => document.querySelector('{STATUS}').dataset.running === '20'")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "lab-overview.png"))
    sources = page.evaluate("() => window.__eventSources")
    open_streams = [s for s in sources if s["open"]]
    print(
        f"\n[connections] panel + status bar + 20 outputs: {len(open_streams)} open event "
        f"stream(s), {len(requests.events())} stream request(s), "
        f"{len(requests.jobs())} REST job request(s)"
    )
    assert len(open_streams) == 1
    assert len(requests.events()) == 1
    assert requests.jobs() == []


# ----- nested bars and a long history ---------------------------------------------------------

CHILD = ".jp-progress-child"
PANEL_NODES = "() => document.querySelectorAll('#jupyter-progress-jobs *').length"


def test_child_rows_rise_inside_the_parent_and_a_leave_false_row_goes_away(
    lab_server: LabServer, page: Any
) -> None:
    forget_all_jobs(lab_server)
    parent = lab_server.create_job("train", total=3)
    parent_id = parent["job_id"]
    lab_server.report(parent_id, success=1, postfix="loss=0.42")
    name = write_notebook_with_outputs(lab_server, [[job_output(parent_id, None)]])
    requests = Requests(page)
    open_notebook(page, lab_server.lab_url(name), kernel=False)
    view = f"{RENDERED}[data-job-id='{parent_id}']"
    wait_value(page, view, "v === 1")
    page.evaluate("() => window.jupyterapp.commands.execute('jupyter-progress:show-jobs')")
    page.locator(PANEL).wait_for()

    # An inner loop of the second epoch (leave=False, bytes with SI prefixes) rises inside.
    inner = lab_server.create_job(
        "epoch 2", total=10_000_000, parent_id=parent_id, leave=False, unit="B", unit_scale=True
    )
    lab_server.report(inner["job_id"], success=4_000_000, postfix="lr=0.01")
    child_view = f"{view} {CHILD}[data-job-id='{inner['job_id']}']"
    wait_value(page, child_view, "v === 4000000")
    text = page.locator(f"{child_view} .jp-progress-child-text").text_content() or ""
    assert text.startswith("4.00M/10.0M 40%"), text
    assert "lr=0.01" in text
    # A kept (leave=True) child of the first epoch.
    kept = lab_server.create_job("epoch 1", total=5, parent_id=parent_id)
    lab_server.report(kept["job_id"], success=5, status="completed")
    kept_row = f"{view} {CHILD}[data-job-id='{kept['job_id']}']"
    page.wait_for_selector(f"{kept_row}[data-status='completed']")
    for step in (6_000_000, 8_000_000):
        lab_server.report(inner["job_id"], success=step)
        wait_value(page, child_view, f"v === {step}")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.locator(".jp-Notebook .jp-Cell").first.screenshot(
        path=str(IMAGES / "widget-children.png"), animations="disabled"
    )
    # A reload mid-loop shows both bars live again (the snapshot holds running children).
    page.reload()
    wait_value(page, child_view, "v === 8000000")
    lab_server.report(inner["job_id"], success=8_500_000)
    lab_server.report(parent_id, success=2)
    wait_value(page, child_view, "v === 8500000")
    wait_value(page, view, "v === 2")
    page.evaluate("() => window.jupyterapp.commands.execute('jupyter-progress:show-jobs')")
    page.locator(PANEL).wait_for()
    # The panel: the parent is a row, its children are not; expanded, they show inside.
    panel = page.locator(PANEL)
    row = panel.locator(f".jp-progress-jobs-row[data-job-id='{parent_id}']")
    row.wait_for()
    assert panel.locator(f".jp-progress-jobs-row[data-job-id='{inner['job_id']}']").count() == 0
    row.locator("button.jp-progress-toggle").click()
    wait_value(page, f"{PANEL} {CHILD}[data-job-id='{inner['job_id']}']", "v === 8500000")
    page.locator("#jupyter-progress-jobs").screenshot(
        path=str(IMAGES / "lab-jobs-panel-children.png"), animations="disabled"
    )

    # The leave=False child completes: its rows go away everywhere; the kept one stays.
    lab_server.report(inner["job_id"], success=10_000_000, status="completed")
    page.wait_for_function(
        "(id) => !document.querySelector(`.jp-progress-child[data-job-id='${id}']`)",
        arg=inner["job_id"],
    )
    assert page.locator(f"{view} {CHILD}").count() == 1
    assert lab_server.client.get(f"jobs/{inner['job_id']}").status_code == 404
    assert page.locator(f"{view} [role=progressbar]").count() == 2  # the parent's, the kept one's
    assert requests.jobs() == [], "children come from the page's one stream"
    lab_server.report(parent_id, success=3, status="completed")


def _panel_open_ms(page: Any) -> float:
    """ms from the command to the panel's first rows on screen (one sample)."""
    return float(
        page.evaluate(
            """async () => {
                const t0 = performance.now();
                await window.jupyterapp.commands.execute('jupyter-progress:show-jobs');
                await new Promise((resolve) => {
                    const check = () => {
                        const row = document.querySelector(
                            '#jupyter-progress-jobs .jp-progress-jobs-row');
                        if (row && row.getBoundingClientRect().height > 0) resolve();
                        else requestAnimationFrame(check);
                    };
                    check();
                });
                return performance.now() - t0;
            }"""
        )
    )


def test_panel_with_thousands_of_jobs_opens_small_searches_and_deletes_in_one_request(
    lab_server: LabServer, page: Any
) -> None:
    forget_all_jobs(lab_server)
    needle = lab_server.create_finished_jobs(["needle in the haystack"])[0]
    started = time.monotonic()
    lab_server.create_finished_jobs([f"history {n:04d}" for n in range(3000)])
    created_s = time.monotonic() - started
    live = lab_server.create_job("still running", total=100)
    lab_server.report(live["job_id"], success=10)

    requests = Requests(page)
    page.goto(f"{lab_server.url}lab?reset&token={lab_server.token}")
    page.locator(STATUS).wait_for()
    page.wait_for_function(f"() => document.querySelector('{STATUS}').dataset.running === '1'")
    time.sleep(1.5)  # the snapshot has settled; nothing of the panel is built yet
    assert page.evaluate(PANEL_NODES) <= 1, "nothing built before the panel is opened"
    opened_ms = _panel_open_ms(page)
    panel = page.locator(PANEL)
    rows = panel.locator(".jp-progress-jobs-row")
    names = rows.locator(".jp-progress-name").all_text_contents()
    assert names[0] == "still running", names[:3]  # running first
    assert 1 < len(names) <= 51, len(names)  # the snapshot's newest finished, not 3,000
    nodes = page.evaluate(PANEL_NODES)
    assert nodes <= 2000, nodes
    assert requests.jobs() == [], "opening asks the server nothing"
    # Its Cancel shows without expanding; rows update live.
    assert rows.first.locator(".jp-progress-cancel").is_visible()
    lab_server.report(live["job_id"], success=55)
    wait_value(page, f"{PANEL} .jp-progress-widget[data-job-id='{live['job_id']}']", "v === 55")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.locator("#jupyter-progress-jobs").screenshot(
        path=str(IMAGES / "lab-jobs-panel-history.png"), animations="disabled"
    )

    # Scrolling to the end loads the next page from the server.
    before = rows.count()
    for _ in range(20):  # the known rows first, then the server's next page
        panel.locator(".jp-progress-jobs-list").evaluate(
            "(list) => { list.scrollTop = list.scrollHeight; }"
        )
        time.sleep(0.25)
        if requests.jobs():
            break
    page.wait_for_function(
        f"(n) => document.querySelectorAll('{PANEL} .jp-progress-jobs-row').length > n + 1",
        arg=before,
    )
    pages = requests.jobs()
    assert 1 <= len(pages) <= 4, pages  # one per scroll to the end, never a loop
    assert "before=" not in pages[0] and all("before=" in url for url in pages[1:]), pages
    assert len(set(pages)) == len(pages), pages

    # The search finds a job far older than anything loaded, by asking the server.
    panel.locator("input.jp-progress-jobs-search").fill("NEEDLE")
    page.wait_for_selector(f"{PANEL} .jp-progress-jobs-row[data-job-id='{needle}']")
    assert rows.count() == 1
    assert any("q=NEEDLE" in url for url in requests.jobs()), requests.jobs()
    panel.locator("input.jp-progress-jobs-search").fill("")
    page.wait_for_function(
        f"() => document.querySelectorAll('{PANEL} .jp-progress-jobs-row').length > 1"
    )

    # Keyboard: the row toggles are reachable and labelled.
    toggle = rows.first.locator("button.jp-progress-toggle")
    assert (toggle.get_attribute("aria-label") or "").startswith("Details of")
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.closest('.jp-progress-jobs-row') !== null")

    # "Delete finished": a confirmation, then one request for all 3,001.
    panel.locator("button.jp-progress-jobs-clear").click()
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    page.wait_for_function(
        f"() => document.querySelectorAll('{PANEL} .jp-progress-jobs-row').length === 1"
    )
    deletes = requests.jobs(method="DELETE")
    assert deletes == [f"{lab_server.url}jupyter-progress/api/jobs?status=finished"], deletes
    assert lab_server.client.get("jobs", params={"status": "finished"}).json()["jobs"] == []
    print(
        f"\n[history] 3,001 finished jobs created in {created_s:.1f} s; panel visible "
        f"{opened_ms:.0f} ms after the command, {nodes} DOM nodes, {len(names)} rows"
    )
    lab_server.client.post(f"jobs/{live['job_id']}/cancel")


def test_nested_tqdm_loop_in_a_kernel_is_one_output_with_child_rows(
    lab_server: LabServer, page: Any
) -> None:
    """``jupyter_progress.tqdm`` nested in a kernel: one output, the inner bars as its child
    rows; leave=False rows go as each inner loop ends."""
    name = lab_server.write_notebook(
        [
            "import time\n"
            "from jupyter_progress import tqdm\n"
            "for epoch in tqdm(range(3), desc='epochs'):\n"
            "    for batch in tqdm(range(25), desc=f'epoch {epoch}', leave=False):\n"
            "        time.sleep(0.08)"
        ]
    )
    open_notebook(page, lab_server.lab_url(name))
    run_all(page)
    page.wait_for_selector(f"{RENDERED} {CHILD}", timeout=60_000)
    parent_id = page.get_attribute(RENDERED, "data-job-id")
    assert parent_id
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ids = page.eval_on_selector_all(
            f"{RENDERED} {CHILD}", "rows => rows.map(r => r.dataset.jobId)"
        )
        assert len(ids) <= 1, ids  # a finished leave=False bar is gone before the next rises
        seen.update(ids)
        if page.locator(f"{RENDERED}[data-status='completed']").count():
            break
        time.sleep(0.05)
    page.wait_for_selector(f"{RENDERED}[data-status='completed']")
    assert len(seen) >= 2, seen  # the inner bar of more than one epoch rose inside
    page.wait_for_function(f"() => document.querySelectorAll('{RENDERED} {CHILD}').length === 0")
    assert page.locator(RENDERED).count() == 1, "one output for the nested loop"
    assert rendered_value(page, parent_id) == 3
