"""The Jupyter server extension: configuration, wiring, start and stop."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import (
    Bool,
    CaselessStrEnum,
    Float,
    Int,
    List,
    TraitError,
    Type,
    Unicode,
    default,
    validate,
)

from .broker import EventBroker
from .exceptions import JobNotFound
from .handlers import (
    CancelHandler,
    EventsHandler,
    JobFailuresHandler,
    JobHandler,
    JobResultsHandler,
    JobsHandler,
    ProgressApp,
    ProgressReportHandler,
)
from .manager import JobManager
from .results import ResultStore
from .runners import make_runners
from .store import JobStore, StoreLocked
from .webhooks import WebhookConfigError, WebhookSender, parse_webhooks

API_PREFIX = "jupyter-progress/api"


class JupyterProgress(ExtensionApp):
    """Tracks and runs jobs, and streams their progress. Configure as ``c.JupyterProgress``."""

    name = "jupyter_progress"
    load_other_extensions = True

    db_path = Unicode(
        help="SQLite file that keeps every job across restarts (default: one per server "
        "root dir, in Jupyter's data dir under jupyter_progress/). One server per file.",
    ).tag(config=True)

    @default("db_path")
    def _default_db_path(self) -> str:
        root = self.root_dir if self.serverapp is not None else os.getcwd()
        key = hashlib.sha256(root.encode("utf-8", "replace")).hexdigest()[:12]
        return str(Path(jupyter_data_dir()) / "jupyter_progress" / f"jobs-{key}.sqlite")

    max_body_bytes = Int(
        1024 * 1024, help="Largest request body accepted (bigger ones get 413)."
    ).tag(config=True)
    reporter_timeout = Float(
        120.0,
        help="Seconds without a report after which a 'reported' job is failed "
        "(its kernel or script probably died). track() sends a heartbeat every 30 s.",
    ).tag(config=True)
    ping_interval = Float(
        15.0, help="Seconds between ': ping' comments on an idle event stream."
    ).tag(config=True)
    send_timeout = Float(
        10.0,
        help="Seconds a stream reader may take to accept a write before it is dropped.",
    ).tag(config=True)
    retry_ms = Int(2000, help="The 'retry:' hint sent to EventSource clients.").tag(config=True)
    flush_interval = Float(
        0.5, help="Seconds between coalesced writes of running jobs' state to the store."
    ).tag(config=True)
    events_kept = Int(
        10_000, help="Recent events kept (in memory and in the store) for Last-Event-ID replay."
    ).tag(config=True)
    events_kept_bytes = Int(
        32 * 1024 * 1024, help="Upper bound on the bytes of recent events kept in memory."
    ).tag(config=True)
    subscriber_queue_bytes = Int(
        64 * 1024,
        help="Pending bytes per stream reader before its queue collapses to the latest "
        "state per job.",
    ).tag(config=True)
    max_concurrency = Int(32, help="Upper bound on a python job's 'concurrency'.").tag(config=True)
    max_result_bytes = Int(
        64 * 1024 * 1024,
        help="Bytes of return values (as JSON) kept per python job, read with GET "
        "jobs/{id}/results; past it a job's values are dropped (the job goes on). "
        "0 keeps none. Failed items are always kept.",
    ).tag(config=True)
    max_workers = Int(
        32,
        help="Worker processes or threads of all python jobs together (not Dask jobs: the "
        "cluster bounds those). A job whose concurrency does not fit waits 'pending', first "
        "come first served, and starts with all its workers once they are free.",
    ).tag(config=True)
    max_running_notebooks = Int(
        2,
        help="Notebook jobs running at once (one kernel each); more wait 'pending', first "
        "come first served.",
    ).tag(config=True)
    snapshot_finished = Int(
        50,
        help="Finished top-level jobs a new unfiltered event stream gets in its snapshot "
        "(the newest), beside every pending or running job; older ones are paged with "
        "GET jobs.",
    ).tag(config=True)
    keep_finished = Int(
        10_000,
        help="Finished jobs kept (the newest); older ones are deleted in the background. "
        "0: no bound by number.",
    ).tag(config=True)
    keep_finished_days = Float(
        30.0,
        help="Days a finished job is kept; older ones are deleted in the background. "
        "0: no bound by age.",
    ).tag(config=True)
    prune_interval = Float(
        300.0, help="Seconds between background retention passes (one also runs at start)."
    ).tag(config=True)

    executor = CaselessStrEnum(
        ["process", "thread", "dask"],
        default_value=None,
        allow_none=True,
        help="Where python jobs run: 'process' (worker processes), 'thread' (threads of the "
        "server) or 'dask' (a Dask cluster, see dask_address). Default: 'dask' when "
        "dask_address is set, else 'process'.",
    ).tag(config=True)
    dask_address = Unicode(
        "",
        help="Address of a Dask distributed scheduler (e.g. tcp://10.0.0.5:8786) that runs "
        "python jobs. Setting it selects the dask executor.",
    ).tag(config=True)
    executor_class = Type(
        default_value=None,
        klass="jupyter_progress.executors.ItemExecutor",
        allow_none=True,
        help="A custom ItemExecutor subclass for python jobs (made with log=...); "
        "overrides 'executor'.",
    ).tag(config=True)

    webhooks: List[Any] = List(
        help='URLs that get a POST {"text": <one line>, "job": <Job>} when a job ends '
        '(Slack-compatible). Each entry is a URL or {"url": ..., "on": ["failed", ...]} '
        "to hear only of some outcomes (completed, failed, cancelled). See docs/notifications.md.",
    ).tag(config=True)
    webhook_timeout = Float(
        10.0, help="Seconds one webhook POST may take; it is tried 3 times with backoff."
    ).tag(config=True)

    @validate("webhooks")
    def _validate_webhooks(self, proposal: Any) -> list[Any]:
        try:
            parse_webhooks(proposal["value"])
        except WebhookConfigError as error:
            raise TraitError(str(error)) from None
        return list(proposal["value"])

    patch_tqdm_in_kernels = Bool(
        False,
        help="Make tqdm.auto / tqdm.notebook bars report here in every kernel this server "
        "starts (kernels inherit a PYTHONSTARTUP file that calls patch_tqdm(); a PYTHONSTARTUP "
        "of your own still runs after it).",
    ).tag(config=True)

    manager: JobManager
    broker: EventBroker
    results: ResultStore
    webhook_sender: WebhookSender | None = None

    def initialize_settings(self) -> None:
        if self.patch_tqdm_in_kernels:  # kernels get the server's environment
            from .patching import kernel_environment

            os.environ.update(kernel_environment(os.environ))
        self.broker = EventBroker(max_pending_bytes=self.subscriber_queue_bytes)
        try:
            store = JobStore(self.db_path, events_kept=self.events_kept, log=self.log)
        except StoreLocked as error:
            fallback = Path(self.db_path).with_name(
                f"{Path(self.db_path).stem}-{os.getpid()}.sqlite"
            )
            self.log.warning(
                "%s; this server keeps its jobs in %s instead (they will not be found "
                "after a restart: give each server its own c.JupyterProgress.db_path)",
                error,
                fallback,
            )
            self.db_path = str(fallback)
            store = JobStore(self.db_path, events_kept=self.events_kept, log=self.log)
        self.results = ResultStore(
            Path(self.db_path).with_name(f"{Path(self.db_path).stem}-results.sqlite"),
            max_bytes=self.max_result_bytes,
            log=self.log,
        )
        self.manager = JobManager(
            store=store,
            broker=self.broker,
            runners=make_runners(
                root_dir=self.root_dir,
                executor=self.executor,
                dask_address=self.dask_address,
                executor_class=self.executor_class,
                server_address=self.server_address,
                results=self.results,
                max_workers=max(1, self.max_workers),
                max_running_notebooks=max(1, self.max_running_notebooks),
                log=self.log,
            ),
            reporter_timeout=self.reporter_timeout,
            flush_interval=self.flush_interval,
            events_kept=self.events_kept,
            events_kept_bytes=self.events_kept_bytes,
            snapshot_finished=self.snapshot_finished,
            keep_finished=self.keep_finished,
            keep_finished_days=self.keep_finished_days,
            prune_interval=self.prune_interval,
            log=self.log,
        )
        self.manager.recover()
        self.manager.removed_listeners.append(self.results.delete)
        try:  # reads old jobs: a damaged page moves the job store aside, as in recover()
            self.manager.store.at_start(self._prune_results)
        except Exception as error:  # the results store: kept as it is, the server starts
            self.log.warning("jupyter-progress could not prune stored results: %s", error)
        if self.webhooks:
            self.webhook_sender = WebhookSender(
                parse_webhooks(self.webhooks), timeout=self.webhook_timeout, log=self.log
            )
            self.manager.final_listeners.append(self.webhook_sender.job_finished)
        handlers_app: ProgressApp = self  # mypy checks that the handlers get what they need
        self.settings["jupyter_progress"] = handlers_app
        self.log.info("jupyter-progress keeps jobs in %s", self.db_path)

    def initialize_handlers(self) -> None:
        job = r"/(?P<job_id>[^/]+)"
        self.handlers.extend(
            [
                (rf"/{API_PREFIX}/jobs", JobsHandler),
                (rf"/{API_PREFIX}/jobs{job}", JobHandler),
                (rf"/{API_PREFIX}/jobs{job}/progress", ProgressReportHandler),
                (rf"/{API_PREFIX}/jobs{job}/cancel", CancelHandler),
                (rf"/{API_PREFIX}/jobs{job}/results", JobResultsHandler),
                (rf"/{API_PREFIX}/jobs{job}/failures", JobFailuresHandler),
                (rf"/{API_PREFIX}/events", EventsHandler),
            ]
        )

    def _prune_results(self) -> None:
        pruned = self.results.prune(self._job_exists)
        if pruned:
            self.log.info("jupyter-progress forgot the results of %d deleted jobs", pruned)

    def _job_exists(self, job_id: str) -> bool:
        try:
            self.manager.get(job_id)
        except JobNotFound:
            return False
        return True

    def server_address(self) -> tuple[str, str]:
        """This server's URL and token, for the kernels of notebook jobs."""
        assert self.serverapp is not None
        if self.serverapp.sock:
            raise ValueError("a server on a Unix socket has no URL for kernels")
        return self.serverapp.connection_url, str(self.serverapp.identity_provider.token or "")

    def job_url(self, job_id: str) -> str:
        assert self.serverapp is not None
        return url_path_join(self.serverapp.base_url, API_PREFIX, "jobs", job_id)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        await self.manager.start()

    async def stop_extension(self) -> None:
        # An extension that failed to load (bad config) has no manager: the server must
        # still stop, not hang on an AttributeError here.
        manager = getattr(self, "manager", None)
        if manager is not None:
            await manager.stop()
        if self.webhook_sender is not None:
            await self.webhook_sender.stop()
        results = getattr(self, "results", None)
        if results is not None:
            results.close()

    @property
    def root_dir(self) -> str:
        assert self.serverapp is not None
        return os.path.abspath(os.path.expanduser(self.serverapp.root_dir))
