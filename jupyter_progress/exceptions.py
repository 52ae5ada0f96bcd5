"""Domain errors of jupyter-progress.

They know nothing of HTTP; ``handlers.py`` maps them to status codes in one place::

    ProgressError
    ├── InvalidRequest    bad input (400)
    ├── JobNotFound       unknown job id (404)
    └── JobStateConflict  the job is in the wrong state for this (409)
"""

from __future__ import annotations


class ProgressError(Exception):
    """Base of every error the job logic raises on purpose."""


class InvalidRequest(ProgressError):
    """The request is malformed or breaks a limit."""


class JobNotFound(ProgressError):
    """No job with this id is known."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class JobStateConflict(ProgressError):
    """The job's current state does not allow the operation."""
