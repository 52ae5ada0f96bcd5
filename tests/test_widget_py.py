"""The Python side of the widgets: mimebundles, text, and the track() display hook."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_progress.widget import (
    JOB_MIMETYPE,
    JobDisplay,
    JobProgress,
    JobsPanel,
    describe_job,
    show_job,
)

JOB_ID = "a" * 32
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def job(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "job_id": JOB_ID,
        "name": "convert",
        "status": "processing",
        "progress": {"processed": 50, "total": 100, "success": 48, "errors": 2, "percentage": 50.0},
    }
    data.update(overrides)
    return data


def test_job_progress_bundle_carries_the_mimetype_and_truthful_text() -> None:
    widget = JobProgress(JOB_ID, job=job())
    data, _metadata = widget._repr_mimebundle_()
    assert data[JOB_MIMETYPE] == {"job_id": JOB_ID, "job": job()}
    assert WIDGET_VIEW in data
    assert data["text/plain"] == "convert: 50/100 (50.0%), processing, 2 errors"
    assert "object at" not in repr(widget)
    widget.close()


def test_job_progress_bundle_when_nothing_is_known_yet() -> None:
    widget = JobProgress(JOB_ID)
    data, _ = widget._repr_mimebundle_()
    assert data[JOB_MIMETYPE] == {"job_id": JOB_ID, "job": None}
    assert data["text/plain"] == f"job {JOB_ID}: no progress known yet"
    widget.close()


def test_job_progress_needs_a_job_id() -> None:
    with pytest.raises(ValueError):
        JobProgress("")


def test_jobs_panel_has_no_job_and_plain_text() -> None:
    panel = JobsPanel()
    data, _ = panel._repr_mimebundle_()
    assert panel.job_id == ""
    assert JOB_MIMETYPE not in data
    assert data["text/plain"].startswith("JobsPanel")
    panel.close()


def test_describe_job_without_total() -> None:
    text = describe_job(
        job(progress={"processed": 7, "total": None, "success": 7, "errors": 0}, status="completed")
    )
    assert text == "convert: 7 items, completed"


def test_show_job_outside_a_kernel_returns_none() -> None:
    assert show_job(JOB_ID, "convert") is None


class FakeHandle:
    def __init__(self) -> None:
        self.updates: list[Any] = []

    def update(self, obj: Any) -> None:
        self.updates.append(obj._repr_mimebundle_()[0])


def test_job_display_update_then_finish_updates_the_saved_output() -> None:
    widget = JobProgress(JOB_ID)
    handle = FakeHandle()
    display = JobDisplay(widget, handle)
    display.update(job())
    assert widget.job == job()
    assert handle.updates == []
    final = job(status="completed", progress={**job()["progress"], "processed": 100})
    display.finish(final)
    assert widget.job == final
    assert handle.updates[-1][JOB_MIMETYPE]["job"]["status"] == "completed"
    assert "completed" in handle.updates[-1]["text/plain"]
    display.update(job())  # a late update from the reporter thread is ignored
    assert widget.job == final
    widget.close()
