"""Webhooks: a ``POST`` to configured URLs when a job ends (``c.JupyterProgress.webhooks``).

The manager knows nothing of this: it calls ``WebhookSender.job_finished`` with the public
job document of every job that reaches a final status. Each matching URL gets its own
task, so a hook that hangs never delays another one, the job, or the event loop's other
work; each delivery has a timeout and up to ``attempts`` tries with backoff, and a chain
that fails is logged once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from .contract import format_errors, parse_iso_time

OUTCOMES = ("completed", "failed", "cancelled")  # contract.FINAL_STATUSES, in this order
MAX_TEXT_MESSAGE = 200


class WebhookConfigError(ValueError):
    """``c.JupyterProgress.webhooks`` is not a list of URLs or of ``{"url", "on"}`` objects."""


@dataclass(frozen=True)
class WebhookTarget:
    """One URL and the outcomes it wants to hear of."""

    url: str
    on: frozenset[str] = frozenset(OUTCOMES)


def parse_webhooks(value: Iterable[Any]) -> list[WebhookTarget]:
    """Check the configured hooks once, at start, with an error naming the bad entry."""
    targets = []
    for index, entry in enumerate(value):
        where = f"c.JupyterProgress.webhooks[{index}]"
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict):
            raise WebhookConfigError(
                f"{where}: expected a URL or an object with 'url', got {entry!r}"
            )
        unknown = set(entry) - {"url", "on"}
        if unknown:
            raise WebhookConfigError(f"{where}: unknown key(s) {sorted(unknown)}; use 'url', 'on'")
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise WebhookConfigError(f"{where}: 'url' must be an http:// or https:// URL")
        on = entry.get("on", list(OUTCOMES))
        if isinstance(on, str):
            on = [on]
        if not isinstance(on, list) or not on or any(o not in OUTCOMES for o in on):
            raise WebhookConfigError(
                f"{where}: 'on' must be a non-empty list of {', '.join(OUTCOMES)}"
            )
        targets.append(WebhookTarget(url=url, on=frozenset(on)))
    return targets


def _parse_time(value: Any) -> float | None:
    try:
        return parse_iso_time(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def format_duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 05 s``, ``2 h 07 min``: short, for one line of chat."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _slack_escape(text: str) -> str:
    """Slack reads ``<…>`` as links and mentions (``<!channel>``): a job name is only text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary_line(job: dict[str, Any]) -> str:
    """One line for chat: name, status, counts, duration (and a failure's message)."""
    name = " ".join(str(job.get("name") or job.get("job_id", "job")).split())
    status = job.get("status", "?")
    progress = job.get("progress") or {}
    success, total = progress.get("success", 0), progress.get("total")
    errors = format_errors(job)
    counts = f"{success} ok" + (f", {errors}" if errors else "")
    if total is not None:
        counts += f" of {total}"
    text = f"{name}: {status} ({counts})"
    started, finished = _parse_time(job.get("started_at")), _parse_time(job.get("finished_at"))
    if started is not None and finished is not None:
        text += f" in {format_duration(max(0.0, finished - started))}"
    message = " ".join(str(job.get("message") or "").split())
    if status == "failed" and message:
        if len(message) > MAX_TEXT_MESSAGE:
            message = message[: MAX_TEXT_MESSAGE - 1] + "…"
        text += f": {message}"
    return _slack_escape(text)


# How long a stopping server waits for webhook deliveries in flight before cancelling them.
STOP_GRACE_SECONDS = 2.0


class WebhookSender:
    """Delivers one ``POST`` per matching hook and final job, each in its own task."""

    def __init__(
        self,
        targets: Iterable[WebhookTarget],
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 1.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.targets = list(targets)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.log = log or logging.getLogger(__name__)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def job_finished(self, job: dict[str, Any]) -> None:
        """The manager's listener: returns at once, the deliveries run as tasks."""
        status = job.get("status")
        targets = [target for target in self.targets if status in target.on]
        if not targets:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (recovery at start): nothing to deliver with
            return
        body = json.dumps({"text": summary_line(job), "job": job}).encode()
        for target in targets:
            task = loop.create_task(
                self._deliver(target.url, body, str(job.get("job_id"))),
                name=f"jupyter-progress-webhook-{job.get('job_id')}",
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Deliveries still in flight (tests, shutdown)."""
        return len(self._tasks)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # No cap on connections: a hook that hangs must not hold a slot another needs.
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=10),
                headers={"Content-Type": "application/json", "User-Agent": "jupyter-progress"},
            )
        return self._client

    async def _deliver(self, url: str, body: bytes, job_id: str) -> None:
        problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._http().post(url, content=body)
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            except Exception:  # a bug, not the network: say so once, never retry it
                self.log.exception("webhook %s, job %s: could not send", url, job_id)
                return
            else:
                if response.is_success:
                    self.log.debug("webhook %s got job %s", url, job_id)
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refuses this request: trying again would not help
            if attempt < self.attempts:
                self.log.debug("webhook %s, job %s: %s; retrying", url, job_id, problem)
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        self.log.warning(
            "webhook %s was not delivered for job %s after %d attempt(s): %s",
            url,
            job_id,
            attempt,
            problem,
        )

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Give deliveries in flight a short grace (a clean stop just ended the server's own
        jobs: "the server stopped" is news), then cancel the rest and close the client."""
        tasks = list(self._tasks)
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
