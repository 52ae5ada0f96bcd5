"""The SSE wire format (sse.py), byte for byte."""

from __future__ import annotations

import pytest

from jupyter_progress.sse import PING, format_comment, format_event, format_retry


def test_event_format_is_exact() -> None:
    assert format_event(42, "job_updated", '{"a":1}') == (
        b'id: 42\nevent: job_updated\ndata: {"a":1}\n\n'
    )


def test_newlines_in_data_become_several_data_lines() -> None:
    assert format_event(1, "e", "one\ntwo\r\nthree\rfour") == (
        b"id: 1\nevent: e\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
    )


def test_newline_in_event_name_or_comment_is_refused() -> None:
    with pytest.raises(ValueError):
        format_event(1, "a\nb", "x")
    with pytest.raises(ValueError):
        format_comment("a\nb")


def test_retry_and_ping() -> None:
    assert format_retry(2000) == b"retry: 2000\n\n"
    assert PING == b": ping\n\n"
