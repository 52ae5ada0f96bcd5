"""The notebook widgets: ``JobProgress(job_id)`` and ``JobsPanel()`` (anywidget).

The browser side (``js/src/widget.js``, built into ``static/``) follows the server's
event stream; the ``job`` trait is the last state synced from the kernel, the fallback
where the page cannot reach a server with the extension (VS Code, Colab). Each output
also carries ``application/vnd.jupyter-progress.job+json`` (for the JupyterLab
extension's kernel-free renderer) and a truthful ``text/plain``.
"""

from __future__ import annotations

import contextlib
import pathlib
import threading
from typing import Any

import anywidget
import traitlets

from .contract import JobStatus, describe_job, job_document

STATIC = pathlib.Path(__file__).parent / "static"
JOB_MIMETYPE = "application/vnd.jupyter-progress.job+json"

__all__ = ["JOB_MIMETYPE", "JobDisplay", "JobProgress", "JobsPanel", "describe_job", "show_job"]


def _placeholder(job_id: str, name: str) -> dict[str, Any]:
    """What the widget shows before the first report."""
    return job_document(
        job_id=job_id,
        name=name,
        kind="reported",
        status=JobStatus.PENDING,
        total=None,
        success=0,
        errors=0,
        now=0.0,
    )


class _ProgressWidget(anywidget.AnyWidget):
    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"

    job_id = traitlets.Unicode("").tag(sync=True)
    job = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)


class JobProgress(_ProgressWidget):
    """The live progress of one job, pushed from the server's event stream."""

    def __init__(self, job_id: str, *, job: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not isinstance(job_id, str) or not job_id:
            raise ValueError("JobProgress needs a job id (a non-empty string)")
        super().__init__(job_id=job_id, job=job, **kwargs)

    def __repr__(self) -> str:
        return f"<JobProgress {describe_job(self.job, self.job_id)}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        data = dict(data)
        data["text/plain"] = describe_job(self.job, self.job_id)
        data[JOB_MIMETYPE] = {"job_id": self.job_id, "job": self.job}
        return data, dict(metadata or {})


class JobsPanel(_ProgressWidget):
    """Every job on the server, live, newest first. Fits a JupyterLab side panel:
    right-click the output and "Create New View for Output", or show it in a sidecar."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(job_id="", **kwargs)

    def __repr__(self) -> str:
        return "<JobsPanel: every jupyter-progress job on the server, live>"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        data = dict(data)
        data["text/plain"] = "JobsPanel: every jupyter-progress job on the server, live"
        return data, dict(metadata or {})


class JobDisplay:
    """The output of one ``track()`` loop: a live widget plus its saved final state."""

    def __init__(self, widget: JobProgress, handle: Any) -> None:
        self.widget = widget
        self.handle = handle
        self._lock = threading.Lock()
        self._finished = False

    def update(self, job: dict[str, Any]) -> None:
        """Sync the kernel's latest state to the widget (the no-server fallback).

        Called from a background thread, at most ~10 times a second; never raises.
        """
        with self._lock:
            if self._finished:
                return
            # A closed comm must never break the user's loop.
            with contextlib.suppress(Exception):
                self.widget.job = dict(job)

    def finish(self, job: dict[str, Any], *, remove: bool = False) -> None:
        """Final state: update the widget, and the output so the saved notebook keeps it.

        ``remove``: a ``leave=False`` bar's output goes away, as tqdm clears its line.
        """
        with self._lock:
            self._finished = True
            with contextlib.suppress(Exception):
                self.widget.job = dict(job)
                if remove and job.get("status") == JobStatus.COMPLETED:
                    self.handle.update({"text/plain": ""}, raw=True)
                else:
                    self.handle.update(self.widget)

    def follow(self, job_id: str, name: str) -> None:
        """The same output now shows another job (``tqdm.reset()`` starts a new one)."""
        with self._lock:
            self._finished = False
            with contextlib.suppress(Exception):
                self.widget.job_id = job_id
                self.widget.job = _placeholder(job_id, name)
                self.handle.update(self.widget)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_job(job_id: str, name: str) -> JobDisplay | None:
    """Display a live widget for a job in the current cell; None outside a kernel."""
    if not _in_kernel():
        return None
    try:
        from IPython.display import display

        widget = JobProgress(job_id, job=_placeholder(job_id, name))
        handle = display(widget, display_id=True)
    except Exception:
        return None
    if handle is None:
        return None
    return JobDisplay(widget, handle)
