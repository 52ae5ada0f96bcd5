"""The Server-Sent Events wire format, as pure functions tested byte for byte.

``Event`` is one frame ready for the wire, shared by everything that keeps or sends
events (the broker, the replay ring, the store), so none of them depends on another.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One serialized event: its id, the job it is about and its SSE frame.

    ``parents`` are the job's ancestors: a reader filtered to one of them gets it too.
    """

    event_id: int
    job_id: str
    frame: bytes
    parents: tuple[str, ...] = ()

    def concerns(self, job_ids: frozenset[str]) -> bool:
        """Whether a reader filtered to ``job_ids`` wants it (its job or an ancestor)."""
        return self.job_id in job_ids or any(parent in job_ids for parent in self.parents)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _single_line(field: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {field} cannot contain a newline")
    return value


def format_event(event_id: int, event: str, data: str) -> bytes:
    """One event frame; every line of ``data`` becomes its own ``data:`` line."""
    lines = [f"id: {int(event_id)}", f"event: {_single_line('event', event)}"]
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def format_json_event(event_id: int, event: str, payload: Any) -> bytes:
    return format_event(event_id, event, json.dumps(payload, separators=(",", ":")))


def format_retry(milliseconds: int) -> bytes:
    return f"retry: {int(milliseconds)}\n\n".encode()


def format_comment(text: str) -> bytes:
    return f": {_single_line('comment', text)}\n\n".encode()


PING = format_comment("ping")
