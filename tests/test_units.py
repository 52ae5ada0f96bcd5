"""Pure parts, tested directly: the SSE wire format, the broker's queues, the job model."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from jupyter_progress.broker import Event, EventBroker, Subscriber
from jupyter_progress.manager import JobManager
from jupyter_progress.models import JobKind, JobSpec, JobState, JobStatus, ProgressReport
from jupyter_progress.sse import PING, format_comment, format_event, format_retry
from jupyter_progress.store import JobStore


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


def event(event_id: int, job_id: str, size: int = 10) -> Event:
    return Event(event_id, job_id, b"x" * size)


def test_subscriber_keeps_every_event_while_under_its_bound() -> None:
    sub = Subscriber(None, max_pending_bytes=1000)
    for i in range(5):
        sub.push(event(i, "a"))
    assert [e.event_id for e in sub.pending] == [0, 1, 2, 3, 4]
    assert sub.coalesced == 0


def test_subscriber_collapses_to_latest_per_job_when_behind() -> None:
    sub = Subscriber(None, max_pending_bytes=100)
    for i in range(30):
        sub.push(event(i, "a" if i % 3 else "b"))
    pending = list(sub.pending)
    assert {e.job_id: e.event_id for e in pending} == {"a": 29, "b": 27}
    assert [e.event_id for e in pending] == sorted(e.event_id for e in pending)
    assert sub.pending_bytes <= 100
    assert sub.coalesced > 0


def test_broker_routes_by_job_and_serializes_once() -> None:
    broker = EventBroker()
    everything = broker.subscribe()
    only_a = [broker.subscribe(["a"]) for _ in range(50)]
    only_b = broker.subscribe(["b"])
    published = event(1, "a")
    broker.publish(published)
    assert all(sub.pending[0].frame is published.frame for sub in [everything, *only_a])
    assert not only_b.pending
    assert broker.subscriber_count == 52
    for sub in [everything, *only_a, only_b]:
        broker.unsubscribe(sub)
    assert broker.subscriber_count == 0
    assert broker._by_job == {}


def test_next_batch_returns_none_on_silence_and_wakes_on_push() -> None:
    async def scenario() -> None:
        sub = Subscriber(None, max_pending_bytes=1000)
        assert await sub.next_batch(timeout=0.01) is None
        waiting = asyncio.ensure_future(sub.next_batch(timeout=10))
        await asyncio.sleep(0)
        sub.push(event(7, "a"))
        batch = await asyncio.wait_for(waiting, 5)
        assert batch is not None and [e.event_id for e in batch] == [7]
        kicked = asyncio.ensure_future(sub.next_batch(timeout=10))
        await asyncio.sleep(0)
        sub.kick()
        assert await asyncio.wait_for(kicked, 5) == []
        closing = asyncio.ensure_future(sub.next_batch(timeout=10))
        await asyncio.sleep(0)
        sub.close()
        assert await asyncio.wait_for(closing, 5) == []
        assert sub.closed

    asyncio.run(scenario())


def test_sink_takes_events_while_idle_and_the_queue_keeps_order_when_busy() -> None:
    sub = Subscriber(None, max_pending_bytes=1000)
    written: list[int] = []
    busy = False

    def sink(ev: Event) -> bool:
        if busy:
            return False
        written.append(ev.event_id)
        return True

    sub.sink = sink
    sub.push(event(1, "a"))
    busy = True
    sub.push(event(2, "a"))
    busy = False
    sub.push(event(3, "a"))  # queued behind 2, not written past it
    assert written == [1]
    assert [e.event_id for e in sub.pending] == [2, 3]

    def broken(ev: Event) -> bool:
        raise ConnectionError("gone")

    sub.sink = broken
    sub.pending.clear()
    sub._take_all()
    sub.push(event(4, "a"))
    assert sub.closed


def test_manager_serializes_each_change_once_for_all_subscribers(tmp_path: Path) -> None:
    broker = EventBroker(max_pending_bytes=10**9)
    manager = JobManager(store=JobStore(tmp_path / "jobs.sqlite"), broker=broker)
    manager.recover()
    subs = [broker.subscribe() for _ in range(100)]
    job = manager.create(JobSpec(kind=JobKind.REPORTED, name="x", total=3))
    manager.report(job.job_id, ProgressReport(success=1))
    frames = [sub.pending[-1].frame for sub in subs]
    assert all(frame is frames[0] for frame in frames)
    assert sys.getrefcount(frames[0]) > 100
    manager.store.close()


def test_percentage_rate_and_eta() -> None:
    job = JobState(job_id="a" * 32, name="x", kind=JobKind.REPORTED, total=200)
    job.started_at = 1000.0
    job.success, job.errors = 99, 1
    assert job.percentage == 50.0
    assert job.rate(now=1010.0) == 10.0
    assert job.eta_seconds(now=1010.0) == 10.0
    job.total = None
    assert job.percentage is None and job.eta_seconds(now=1010.0) is None
    job.status = JobStatus.COMPLETED
    job.total = 0
    job.success = job.errors = 0
    assert job.percentage == 100.0


def test_error_samples_are_bounded_and_truncated() -> None:
    job = JobState(job_id="a" * 32, name="x", kind=JobKind.REPORTED)
    for i in range(150):
        job.add_error_sample(f"item {i}", "E" * 5000)
    assert len(job.error_samples[0]["error"]) == 2000
    assert sum(len(s["item"]) + len(s["error"]) for s in job.error_samples) <= 16_000
    short = JobState(job_id="c" * 32, name="x", kind=JobKind.REPORTED)
    for i in range(150):
        short.add_error_sample(f"item {i}", "ValueError")
    assert len(short.error_samples) == 100


def test_job_record_round_trips(tmp_path: Path) -> None:
    job = JobState(job_id="b" * 32, name="round trip", kind=JobKind.PYTHON, total=5, success=2)
    job.add_error_sample("x", "ValueError: y")
    job.details = {"target": "m:f"}
    assert JobState.from_record(job.to_record()).to_dict(now=1.0) == job.to_dict(now=1.0)


def test_public_names_are_the_functions_whatever_was_imported_first() -> None:
    import jupyter_progress
    import jupyter_progress.tracking
    from jupyter_progress import JobCancelled, track

    assert callable(track) and track.__name__ == "track"
    assert issubclass(JobCancelled, Exception)
    assert jupyter_progress.track is track
