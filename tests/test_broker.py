"""The broker's bounded, coalescing subscriber queues and its routing (broker.py)."""

from __future__ import annotations

import asyncio

from jupyter_progress.broker import EventBroker, Subscriber
from jupyter_progress.sse import Event


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


def test_stalled_subscriber_is_dropped_when_a_burst_of_distinct_jobs_passes_the_hard_limit() -> (
    None
):
    """Regression: a bulk delete of 100,000 jobs queued one job_removed per job (~12 MB) for
    a reader that did not read; "latest per job" does not bound distinct jobs."""
    sub = Subscriber(None, max_pending_bytes=1000)
    for i in range(50):
        sub.push(event(i, "same", size=100))  # many updates of one job: coalesced, kept
    assert not sub.closed
    for i in range(50, 10_050):
        sub.push(event(i, f"job-{i}", size=100))
        assert sub.pending_bytes <= Subscriber.HARD_LIMIT_FACTOR * 1000
    assert sub.closed and sub.pending_bytes == 0


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


def test_sink_takes_events_while_idle_and_a_busy_reader_gets_the_latest_per_job() -> None:
    sub = Subscriber(None, max_pending_bytes=1000)  # no broker: each push delivers at once
    written: list[list[int]] = []
    busy = False

    def sink(events: list[Event]) -> bool:
        if busy:
            return False
        written.append([e.event_id for e in events])
        return True

    sub.sink = sink
    sub.push(event(1, "a"))
    busy = True
    sub.push(event(2, "a"))
    sub.push(event(3, "b"))
    sub.push(event(4, "a"))  # behind: replaces 2, never written past the queue
    busy = False
    assert written == [[1]]
    assert [e.event_id for e in sub.pending] == [3, 4]
    assert sub.coalesced == 1

    def broken(events: list[Event]) -> bool:
        raise ConnectionError("gone")

    sub._take_all()
    sub.sink = broken
    sub.push(event(5, "a"))
    assert sub.closed


def test_broker_delivers_in_rounds_one_write_per_reader() -> None:
    async def scenario() -> None:
        broker = EventBroker()
        writes: list[list[int]] = []
        readers = [broker.subscribe() for _ in range(3)]
        for reader in readers:
            reader.sink = lambda events: writes.append([e.event_id for e in events]) or True
        for event_id in range(5):  # published in one loop turn: one round, one write each
            broker.publish(event(event_id, f"job{event_id % 2}"))
        assert writes == []
        await asyncio.sleep(0)
        assert writes == [[0, 1, 2, 3, 4]] * 3
        assert broker.rounds == 1
        broker.publish(event(5, "job1"))
        await asyncio.sleep(0)
        assert writes[-1] == [5] and broker.rounds == 2

    asyncio.run(scenario())


def test_a_childs_event_reaches_readers_of_its_ancestors_once() -> None:
    broker = EventBroker()
    of_parent = broker.subscribe(["parent"])
    of_grandparent = broker.subscribe(["grandparent"])
    of_both = broker.subscribe(["parent", "child"])
    of_other = broker.subscribe(["other"])
    child_event = Event(1, "child", b"c", ("parent", "grandparent"))
    broker.publish(child_event)
    for sub in (of_parent, of_grandparent, of_both):
        assert sub.pending == [child_event]
    assert of_other.pending == []
