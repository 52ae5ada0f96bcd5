"""The replay ring on its own: bounds, eviction, and which readers it can still serve."""

from __future__ import annotations

from jupyter_progress.replay import ReplayRing
from jupyter_progress.sse import Event


def event(event_id: int, job_id: str = "a", size: int = 10) -> Event:
    return Event(event_id, job_id, b"x" * size)


def test_replays_what_came_after_the_readers_last_id() -> None:
    ring = ReplayRing()
    for event_id in (1, 2, 3):
        ring.remember(event(event_id, size=event_id))
    assert ring.since(1, None) == [b"xx", b"xxx"]
    assert ring.since(3, None) == []
    assert ring.last_event_id == 3


def test_replay_narrowed_to_the_readers_jobs() -> None:
    ring = ReplayRing()
    ring.remember(Event(1, "a", b"a1"))
    ring.remember(Event(2, "b", b"b2"))
    ring.remember(Event(3, "a", b"a3"))
    assert ring.since(0, frozenset({"a"})) == [b"a1", b"a3"]
    assert ring.since(0, frozenset({"c"})) == []


def test_bounded_in_count() -> None:
    ring = ReplayRing(max_events=3)
    for event_id in range(1, 11):
        ring.remember(event(event_id))
    assert len(ring) == 3
    assert ring.since(7, None) is not None and len(ring.since(7, None) or []) == 3
    assert ring.since(6, None) is None, "event 7 was evicted: the reader missed it"


def test_bounded_in_bytes() -> None:
    ring = ReplayRing(max_bytes=100)
    for event_id in range(1, 11):
        ring.remember(event(event_id, size=30))
    assert len(ring) == 3
    assert ring.size_bytes == 90
    assert ring.since(7, None) == [b"x" * 30] * 3
    assert ring.since(5, None) is None


def test_one_event_larger_than_the_bound_is_not_kept() -> None:
    ring = ReplayRing(max_bytes=100)
    ring.remember(event(1, size=10))
    ring.remember(event(2, size=500))
    assert len(ring) == 0 and ring.size_bytes == 0
    assert ring.since(2, None) == [], "a reader at the newest id missed nothing"
    assert ring.since(1, None) is None


def test_an_id_it_never_gave_gets_no_replay() -> None:
    ring = ReplayRing()
    ring.remember(event(5))
    assert ring.since(6, None) is None, "an id from the future: a reset store, not a replay"


def test_restore_forgets_what_came_before_the_kept_events() -> None:
    ring = ReplayRing()
    ring.restore([event(40), event(41), event(42)])
    assert ring.last_event_id == 42
    assert ring.since(39, None) == [b"x" * 10] * 3
    assert ring.since(10, None) is None, "events before 40 were trimmed from the store"


def test_restore_of_nothing_serves_only_id_zero() -> None:
    ring = ReplayRing()
    ring.restore([])
    assert ring.since(0, None) == []
    assert ring.since(3, None) is None


def test_replay_to_a_parents_reader_includes_its_childrens_events() -> None:
    ring = ReplayRing()
    ring.remember(Event(1, "parent", b"p1"))
    ring.remember(Event(2, "child", b"c2", ("parent",)))
    ring.remember(Event(3, "grandchild", b"g3", ("child", "parent")))
    ring.remember(Event(4, "other", b"o4"))
    assert ring.since(0, frozenset({"parent"})) == [b"p1", b"c2", b"g3"]
    assert ring.since(1, frozenset({"child"})) == [b"c2", b"g3"]
