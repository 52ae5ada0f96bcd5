"""The recent-events ring that lets a stream reader resume after ``Last-Event-ID``.

Bounded both in count and in bytes (an event carries a whole job, error samples
included), so memory stays flat however long the server lives. It remembers how far
it has forgotten, so it can tell a reader it can no longer serve (who then gets a
snapshot instead) from one that simply missed nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from .sse import Event


class ReplayRing:
    """The newest events, oldest first, within ``max_events`` and ``max_bytes``."""

    def __init__(self, *, max_events: int = 10_000, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._events: deque[Event] = deque()
        self._bytes = 0
        self._evicted_up_to = 0  # a reader at this id or later has missed nothing evicted
        self.last_event_id = 0  # the newest id remembered

    def __len__(self) -> int:
        return len(self._events)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def restore(self, events: Iterable[Event]) -> None:
        """Take the events kept across a restart; what came before them is gone."""
        for event in events:
            self.remember(event)
        self._evicted_up_to = self._events[0].event_id - 1 if self._events else 0

    def remember(self, event: Event) -> None:
        """Keep the event, evicting the oldest ones past either bound."""
        self._events.append(event)
        self._bytes += len(event.frame)
        while self._events and (
            len(self._events) > self.max_events or self._bytes > self.max_bytes
        ):
            evicted = self._events.popleft()
            self._bytes -= len(evicted.frame)
            self._evicted_up_to = evicted.event_id
        self.last_event_id = max(self.last_event_id, event.event_id)

    def since(self, last_event_id: int, job_ids: frozenset[str] | None) -> list[bytes] | None:
        """The frames after ``last_event_id`` (of ``job_ids`` only, if given).

        ``None`` when the ring cannot answer: it has evicted some of what came after, or
        the id is one it never gave (a reader from before a reset of the store).
        """
        if not self._evicted_up_to <= last_event_id <= self.last_event_id:
            return None
        return [
            event.frame
            for event in self._events
            if event.event_id > last_event_id and (job_ids is None or event.concerns(job_ids))
        ]
