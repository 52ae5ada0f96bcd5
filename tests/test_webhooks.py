"""Webhooks: a real Jupyter server POSTs to real HTTP receivers on 127.0.0.1 when jobs end."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from traitlets import TraitError

from jupyter_progress.contract import FINAL_STATUSES
from jupyter_progress.extension import JupyterProgress
from jupyter_progress.webhooks import (
    OUTCOMES,
    WebhookConfigError,
    WebhookSender,
    WebhookTarget,
    parse_webhooks,
    summary_line,
)

from helpers.job_helpers import create, hold_items, report, wait_for
from helpers.server_process import ServerProcess


class Receiver:
    """An HTTP server in its own thread that records POST bodies.

    ``answers`` is the list of statuses to answer in turn (the last one repeats);
    ``hang`` makes it accept requests and never answer until it is closed.
    """

    def __init__(self, answers: list[int] | None = None, hang: bool = False) -> None:
        self.answers = list(answers or [200])
        self.hang = hang
        self.bodies: list[dict[str, Any]] = []
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                receiver.bodies.append(body)
                if receiver.hang:
                    receiver.released.wait(30)
                    return
                status = (
                    receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def failures_only() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    r = Receiver(hang=True)
    yield r
    r.close()


@pytest.fixture
def flaky() -> Iterator[Receiver]:
    r = Receiver(answers=[500, 200])
    yield r
    r.close()


@pytest.fixture
def progress_config(
    receiver: Receiver, failures_only: Receiver, hanging: Receiver, flaky: Receiver
) -> dict[str, Any]:
    return {
        "webhooks": [
            receiver.url,
            {"url": failures_only.url, "on": ["failed"]},
            {"url": hanging.url, "on": ["cancelled"]},
            {"url": flaky.url, "on": ["completed"]},
        ],
        "webhook_timeout": 3.0,
    }


def bodies_for(receiver: Receiver, job_id: str) -> list[dict[str, Any]]:
    return [body for body in receiver.bodies if body["job"]["job_id"] == job_id]


async def test_completed_job_posts_once_with_text_and_job(
    api: httpx.AsyncClient, receiver: Receiver, failures_only: Receiver, progress_app: Any
) -> None:
    job = await create(api, name="convert <files>", total=3)
    await report(api, job["job_id"], success=2, errors=1, status="completed")
    await wait_for(lambda: bodies_for(receiver, job["job_id"]))
    await wait_for(lambda: progress_app.webhook_sender.pending == 0)
    [body] = bodies_for(receiver, job["job_id"])
    assert set(body) == {"text", "job"}
    assert body["job"]["status"] == "completed"
    assert body["job"]["name"] == "convert <files>"
    assert body["job"]["progress"]["processed"] == 3
    text = body["text"]
    assert "\n" not in text
    assert text.startswith("convert &lt;files&gt;: completed (2 ok, 1 error of 3) in ")
    assert bodies_for(failures_only, job["job_id"]) == []


async def test_failed_job_posts_once_to_every_matching_hook(
    api: httpx.AsyncClient, receiver: Receiver, failures_only: Receiver, flaky: Receiver
) -> None:
    job = await create(api, name="nightly", total=None)
    await report(api, job["job_id"], success=5, message="disk full", status="failed")
    await wait_for(lambda: bodies_for(receiver, job["job_id"]))
    await wait_for(lambda: bodies_for(failures_only, job["job_id"]))
    [body] = bodies_for(failures_only, job["job_id"])
    assert body["job"]["status"] == "failed"
    assert body["text"].startswith("nightly: failed (5 ok) in ")
    assert body["text"].endswith(": disk full")
    assert len(bodies_for(receiver, job["job_id"])) == 1
    assert bodies_for(flaky, job["job_id"]) == []


async def test_receiver_answering_500_once_gets_a_retry(
    api: httpx.AsyncClient, flaky: Receiver, progress_app: Any
) -> None:
    job = await create(api, name="retried", total=1)
    await report(api, job["job_id"], success=1, status="completed")
    await wait_for(lambda: len(bodies_for(flaky, job["job_id"])) == 2)
    await wait_for(lambda: progress_app.webhook_sender.pending == 0)
    first, second = bodies_for(flaky, job["job_id"])
    assert first == second
    assert len(bodies_for(flaky, job["job_id"])) == 2


async def test_hanging_receiver_delays_neither_reports_nor_other_hooks(
    api: httpx.AsyncClient, receiver: Receiver, hanging: Receiver, progress_app: Any
) -> None:
    cancelled = await create(api, name="stopped", total=10)
    assert (await api.post(f"jobs/{cancelled['job_id']}/cancel")).status_code == 202
    # The hanging receiver holds the request; the working one has its POST all the same.
    await wait_for(lambda: bodies_for(hanging, cancelled["job_id"]))
    await wait_for(lambda: bodies_for(receiver, cancelled["job_id"]))
    # While it hangs, a whole job's reports are answered, and its end is posted too.
    job = await create(api, name="meanwhile", total=50)
    for done in range(1, 51):
        await report(api, job["job_id"], success=done)
    await report(api, job["job_id"], status="completed")
    await wait_for(lambda: bodies_for(receiver, job["job_id"]))
    assert progress_app.webhook_sender.pending >= 1  # the hanging hook's chain is still on
    assert len(bodies_for(hanging, cancelled["job_id"])) == 1


# ----- without a server: config validation and the retry chain's log --------------------


def test_outcomes_are_the_final_statuses() -> None:
    assert set(OUTCOMES) == {status.value for status in FINAL_STATUSES}


def test_parse_webhooks_accepts_urls_and_objects() -> None:
    targets = parse_webhooks(["https://hooks.example/x", {"url": "http://h/y", "on": ["failed"]}])
    assert targets[0] == WebhookTarget("https://hooks.example/x")
    assert targets[0].on == {"completed", "failed", "cancelled"}
    assert targets[1].on == {"failed"}


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (42, "expected a URL"),
        ("ftp://x", "http:// or https://"),
        ({"url": "http://x", "on": ["done"]}, "'on' must be"),
        ({"url": "http://x", "on": []}, "'on' must be"),
        ({"url": "http://x", "when": ["failed"]}, "unknown key"),
        ({"on": ["failed"]}, "'url'"),
    ],
)
def test_parse_webhooks_names_the_bad_entry(entry: Any, fragment: str) -> None:
    with pytest.raises(WebhookConfigError, match=r"webhooks\[1\]") as caught:
        parse_webhooks(["http://ok", entry])
    assert fragment in str(caught.value)


def test_webhooks_trait_refuses_bad_config_with_a_clear_error() -> None:
    with pytest.raises(TraitError, match=r"webhooks\[0\].*'on' must be"):
        JupyterProgress(webhooks=[{"url": "http://x", "on": "sometimes"}])


def test_summary_line_is_one_line_with_duration() -> None:
    job = {
        "job_id": "a" * 32,
        "name": "two\nlines",
        "status": "completed",
        "progress": {"success": 10, "errors": 0, "total": 10},
        "started_at": "2026-11-28T10:00:00Z",
        "finished_at": "2026-11-28T10:03:05Z",
        "message": "",
    }
    assert summary_line(job) == "two lines: completed (10 ok of 10) in 3 min 05 s"


async def test_failing_chain_is_logged_once_after_three_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Receiver(answers=[503])
    try:
        sender = WebhookSender(
            [WebhookTarget(down.url)], timeout=2, backoff=0.01, log=logging.getLogger("hooks")
        )
        with caplog.at_level(logging.DEBUG, logger="hooks"):
            sender.job_finished({"job_id": "j", "name": "x", "status": "failed"})
            await wait_for(lambda: sender.pending == 0)
        await sender.stop()
    finally:
        down.close()
    assert len(down.bodies) == 3
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "after 3 attempt(s): HTTP 503" in warnings[0].getMessage()


def test_bad_webhooks_config_is_reported_and_the_server_still_stops(tmp_path: Path) -> None:
    """Regression: a config error left the extension without a manager, and SIGTERM hung."""
    server = ServerProcess(
        tmp_path / "root",
        tmp_path / "jobs.sqlite",
        extra_args=['--JupyterProgress.webhooks=[{"url": "http://x", "on": ["done"]}]'],
    )
    with pytest.raises(RuntimeError):
        server.start(timeout=5)  # it never serves the API; its log says why
    expected = "c.JupyterProgress.webhooks[0]: 'on' must be a non-empty list"
    for _ in range(300):
        if expected in server.log_path.read_text():
            break
        time.sleep(0.1)
    assert expected in server.log_path.read_text()
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(20) is not None


def test_clean_stop_delivers_the_server_stopped_hook(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the stop hook cancelled the webhook deliveries its own cancels had just
    started, so "the server stopped" never reached the hook."""
    tests_dir = Path(__file__).parent
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(tests_dir), os.environ.get("PYTHONPATH")]))
    )
    server = ServerProcess(
        tmp_path / "root",
        tmp_path / "jobs.sqlite",
        extra_args=[f"--JupyterProgress.webhooks={json.dumps([receiver.url])}"],
    )
    server.start()
    try:
        with server.client() as http:
            job = http.post(
                "jobs",
                json={
                    "kind": "python",
                    "name": "held at stop",
                    "target": "progress_tasks:wait_for_file",
                    "items": hold_items(tmp_path / "held", 1),
                },
            ).json()
        started = tmp_path / "held" / "started"
        for _ in range(600):
            if list(started.glob("item.*")):
                break
            time.sleep(0.05)
    finally:
        server.stop()
    bodies = bodies_for(receiver, job["job_id"])
    assert len(bodies) == 1
    assert bodies[0]["job"]["status"] == "cancelled"
    assert "the server stopped" in bodies[0]["job"]["message"]
