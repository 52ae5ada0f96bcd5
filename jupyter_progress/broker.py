"""Fan-out of job events to stream subscribers, without ever waiting on one.

Each event is serialized once (``sse.Event.frame``) and shared by every subscriber.
A subscriber that keeps up sees every event; one that falls behind has its queue
collapsed to the latest event per job, so memory stays bounded and the publisher
never blocks.

Delivery goes in rounds: a publish only queues the event; once per turn of the event
loop the broker hands each reader with something queued everything it has, in one write.
A lone report still leaves in the next loop turn (a round costs microseconds), but when
reports pour in faster than readers can be written to, the reports handled in one loop
turn share each reader's write, and the server's cost per delivered frame falls instead
of rising. (A pause between rounds, to batch more, was measured and made filtered
readers slower: rounds follow the loop's own pace.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from .sse import Event


class Subscriber:
    """One stream reader's bounded queue.

    While the reader keeps up, a plain FIFO of every event. Once it falls behind (its
    connection has not taken the last write yet) or its pending bytes pass the bound, it
    switches to "latest per job" (a dict, O(1) per push) until it drains.

    "Latest per job" bounds a reader by the number of jobs, which a burst over many
    distinct jobs (a bulk delete, retention) does not: past ``HARD_LIMIT_FACTOR`` times the
    bound the reader is dropped. Its client reconnects with ``Last-Event-ID`` and gets the
    replay, or the current state, which is what the queue would have held anyway.
    """

    HARD_LIMIT_FACTOR = 4

    def __init__(
        self,
        job_ids: frozenset[str] | None,
        max_pending_bytes: int,
        due: Callable[[Subscriber], None] | None = None,
    ) -> None:
        self.job_ids = job_ids
        self.max_pending_bytes = max_pending_bytes
        self.closed = False
        self.coalesced = 0
        self._queue: deque[Event] = deque()
        self._latest: dict[str, Event] | None = None
        self._pending_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._due = due  # the broker's "deliver to me in the next round"
        self._scheduled = False
        # Set by the stream handler: writes frames at once when its connection is idle
        # (True), or declines (False) and they stay queued for the reader's coroutine.
        # Saves a wake-up of that coroutine per round.
        self.sink: Callable[[list[Event]], bool] | None = None

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def pending(self) -> list[Event]:
        """What the reader will get next, in event order."""
        return list(self._latest.values() if self._latest is not None else self._queue)

    def push(self, event: Event) -> None:
        if self.closed:
            return
        self._pending_bytes += len(event.frame)
        if self._latest is not None:
            replaced = self._latest.pop(event.job_id, None)
            if replaced is not None:
                self._pending_bytes -= len(replaced.frame)
                self.coalesced += 1
            self._latest[event.job_id] = event
            if self._pending_bytes > self.HARD_LIMIT_FACTOR * self.max_pending_bytes:
                self.close()  # too far behind: cheaper to resume than to hold
                return
        else:
            self._queue.append(event)
            if self._pending_bytes > self.max_pending_bytes:
                self._start_coalescing()
        if self.sink is None or self._latest is not None:
            self._wake()  # no handler fast path, or behind: the coroutine takes it
        elif not self._scheduled:
            self._scheduled = True
            if self._due is not None:
                self._due(self)
            else:
                self.deliver()

    def deliver(self) -> None:
        """Hand everything queued to the sink in one go; if it declines (a write is still
        in flight), the reader is behind: keep only the latest state per job."""
        self._scheduled = False
        if self.closed or not self._pending_bytes:
            return
        sink = self.sink
        if sink is not None and self._latest is None:
            try:
                if sink(list(self._queue)):
                    self._queue.clear()
                    self._pending_bytes = 0
                    return
            except Exception:  # the connection is gone: its handler unsubscribes
                self.close()
                return
            self._start_coalescing()
        self._wake()

    def kick(self) -> None:
        """Wake the reader's coroutine with nothing queued (``next_batch`` returns [])."""
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _start_coalescing(self) -> None:
        """Keep only the newest event of each job, in the order they happened."""
        latest: dict[str, Event] = {}
        for event in self._queue:
            latest.pop(event.job_id, None)
            latest[event.job_id] = event
        self.coalesced += len(self._queue) - len(latest)
        self._queue.clear()
        self._latest = latest
        self._pending_bytes = sum(len(event.frame) for event in latest.values())

    def _take_all(self) -> list[Event]:
        batch = self.pending
        self._queue.clear()
        self._latest = None
        self._pending_bytes = 0
        return batch

    def close(self) -> None:
        """Stop receiving and wake the reader so it can leave at once."""
        self.closed = True
        self._take_all()
        self._wake()

    async def next_batch(self, timeout: float) -> list[Event] | None:
        """Everything pending; ``None`` after ``timeout`` seconds of silence; ``[]`` when
        woken by ``kick`` or ``close`` with nothing queued.

        A bare future and one timer per wait (no task, unlike ``asyncio.wait_for``):
        with a thousand readers, every wake-up counts.
        """
        if not self._pending_bytes and not self.closed:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            expired: list[bool] = []

            def expire() -> None:
                expired.append(True)
                self._wake()

            timer = loop.call_later(timeout, expire)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if not self._pending_bytes:
                return None if expired else []
        return self._take_all()


class EventBroker:
    """Routes each event only to the subscribers that asked for its job."""

    def __init__(self, *, max_pending_bytes: int = 64 * 1024) -> None:
        self.max_pending_bytes = max_pending_bytes
        self._everything: set[Subscriber] = set()
        self._by_job: dict[str, set[Subscriber]] = {}
        self._due: list[Subscriber] = []
        self._round: asyncio.Handle | None = None
        #: Delivery rounds run so far.
        self.rounds = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._everything) + len({sub for subs in self._by_job.values() for sub in subs})

    def subscribe(self, job_ids: Iterable[str] | None = None) -> Subscriber:
        wanted = frozenset(job_ids) if job_ids else None
        subscriber = Subscriber(wanted, self.max_pending_bytes, self._schedule)
        if wanted is None:
            self._everything.add(subscriber)
        else:
            for job_id in wanted:
                self._by_job.setdefault(job_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscriber.close()
        self._everything.discard(subscriber)
        for job_id in subscriber.job_ids or ():
            subs = self._by_job.get(job_id)
            if subs is not None:
                subs.discard(subscriber)
                if not subs:
                    del self._by_job[job_id]

    def publish(self, event: Event) -> None:
        for subscriber in self._everything:
            subscriber.push(event)
        targets: Iterable[Subscriber] = self._by_job.get(event.job_id, ())
        if event.parents:  # readers of an ancestor get a child's events too, each once
            targets = set(targets).union(
                *(self._by_job.get(parent, ()) for parent in event.parents)
            )
        for subscriber in targets:
            subscriber.push(event)

    def _schedule(self, subscriber: Subscriber) -> None:
        """Deliver to ``subscriber`` in the next round (one round per loop turn at most)."""
        self._due.append(subscriber)
        if self._round is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside the loop (a script, a test): at once
            self._deliver_round()
            return
        self._round = loop.call_soon(self._deliver_round)

    def _deliver_round(self) -> None:
        self._round = None
        due, self._due = self._due, []
        for subscriber in due:
            subscriber.deliver()
        self.rounds += 1

    def close_all(self) -> None:
        for subscriber in list(self._everything):
            self.unsubscribe(subscriber)
        for subs in list(self._by_job.values()):
            for subscriber in list(subs):
                self.unsubscribe(subscriber)
