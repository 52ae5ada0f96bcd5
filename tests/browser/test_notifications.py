"""JupyterLab notifications when a job ends, in headless Chromium on a real ``jupyter lab``.

The threshold is changed through the settings API, as a user's Settings Editor would. Toasts
do not pop reliably in headless Chromium (RECIPES.md), so the tests read the notification
centre (the bell of the status bar).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.lab_server import LabServer

pytestmark = pytest.mark.browser

PLUGIN = "jupyter-progress:notifications"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

CENTRE_ITEMS = ".jp-Notification-Center .jp-Notification-List-Item"


@pytest.fixture(scope="module")
def lab_extension_enabled() -> bool:
    return True


@pytest.fixture(scope="module")
def notify_after_2_s(lab_server: LabServer) -> Iterator[None]:
    url = f"{lab_server.url}lab/api/settings/{PLUGIN}"
    headers = {"Authorization": f"token {lab_server.token}"}
    response = httpx.put(url, headers=headers, json={"raw": json.dumps({"notifyAfterSeconds": 2})})
    assert response.status_code == 204, response.text
    assert httpx.get(url, headers=headers).json()["settings"]["notifyAfterSeconds"] == 2
    yield


@pytest.fixture
def lab(lab_server: LabServer, notify_after_2_s: None, page: Any) -> Any:
    page.goto(f"{lab_server.url}lab?reset&token={lab_server.token}")
    page.wait_for_selector(".jp-progress-status")
    return page


def run_job(server: LabServer, page: Any, name: str, seconds: float, **final: Any) -> str:
    """A reported job the page sees running, ended after ``seconds`` (server time)."""
    job = server.create_job(name, total=4)
    # The page's one stream holds it (the Jobs panel builds nothing before it is opened).
    page.wait_for_function(
        """(id) => {
            const hub = globalThis[Symbol.for('jupyter-progress.stream')];
            return !!hub && [...hub.values()].some((stream) => stream.jobs.has(id));
        }""",
        arg=job["job_id"],
    )
    time.sleep(max(0.0, seconds - 0.1))
    server.report(job["job_id"], **final)
    return str(job["job_id"])


def open_centre(page: Any) -> None:
    if not page.query_selector(".jp-Notification-Center"):
        page.click(".jp-Notification-Status")
    page.wait_for_selector(".jp-Notification-Center")


def centre_messages(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all(
            f"{CENTRE_ITEMS} .jp-toast-message", "(els) => els.map((e) => e.textContent)"
        )
    )


def wait_centre_message(page: Any, fragment: str) -> Any:
    """The centre's item whose message contains ``fragment`` (the centre is kept open)."""
    open_centre(page)
    item = page.locator(CENTRE_ITEMS).filter(has_text=fragment)
    item.first.wait_for()
    return item.first


def test_long_job_notifies_short_one_does_not(lab_server: LabServer, lab: Any) -> None:
    run_job(lab_server, lab, "quick sort", 0.5, success=4, status="completed")
    run_job(lab_server, lab, "resize <b>images</b>", 3, success=3, errors=1, status="completed")
    item = wait_centre_message(lab, "resize <b>images</b> completed")
    assert "Toastify__toast--success" in item.inner_html()
    # Events arrive in order: once the long job's notification is there, a notification of
    # the short one would be too.
    messages = centre_messages(lab)
    assert [m for m in messages if "quick sort" in m] == []
    [message] = [m for m in messages if "resize" in m]
    assert message.startswith("resize <b>images</b> completed: 3 ok, 1 error of 4 in ")
    assert lab.query_selector(f"{CENTRE_ITEMS} b") is None  # the name is text, not markup


def test_failed_job_gives_an_error_whose_action_opens_the_jobs_panel(
    lab_server: LabServer, lab: Any
) -> None:
    job_id = run_job(
        lab_server,
        lab,
        "nightly export",
        3,
        success=1,
        errors=1,
        error_samples=[{"item": "x.csv", "error": "ValueError: bad row"}],
        message="disk full",
        status="failed",
    )
    item = wait_centre_message(lab, "nightly export failed")
    assert "Toastify__toast--error" in item.inner_html()
    assert "disk full" in item.inner_text()
    assert "x.csv: ValueError: bad row" in item.inner_text()
    lab.screenshot(path=str(IMAGES / "notification.png"))
    item.get_by_role("button", name="Show job").click()
    row = lab.locator(f'.jp-progress-jobs-row[data-job-id="{job_id}"]')
    row.wait_for(state="visible")
    assert "jp-mod-highlighted" in (row.get_attribute("class") or "")
    assert lab.locator("#jupyter-progress-jobs").is_visible()
    assert row.get_attribute("data-status") == "failed"
