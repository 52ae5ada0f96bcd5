"""Server-wide caps: a first-come-first-served queue of jobs waiting for room.

A server left running for weeks gets work from many notebooks at once; without a cap, ten
``submit(..., concurrency=32)`` calls would start 320 worker processes. ``Slots`` is a
counting budget (``max_workers`` workers, ``max_running_notebooks`` kernels) that a runner
takes its job's share of before the job starts, and gives back once the job's workers are
gone. A job whose share does not fit waits ``pending``, in arrival order: a later, smaller
job never overtakes an earlier one, so a big job cannot starve.

A job takes its whole share at once (``min(concurrency, items, capacity)``) rather than
starting with fewer workers: executors then never have to grow a running job, and a job's
speed does not depend on what happened to be free when it arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

#: Called with a waiting job's id and why it waits, whenever that reason changes.
WaitNotice = Callable[[str, str], None]


@dataclass(eq=False)
class _Waiter:
    job_id: str
    need: int
    granted: asyncio.Future[None]
    notice: WaitNotice | None
    last_message: str = ""


class Slots:
    """``capacity`` units shared by jobs; jobs that do not fit wait in arrival order."""

    def __init__(self, capacity: int, *, unit: str, plural: str | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"a cap on {plural or unit + 's'} must be at least 1")
        self.capacity = capacity
        self.unit = unit
        self.plural = plural or f"{unit}s"
        self.in_use = 0
        self._held: dict[str, int] = {}
        self._waiting: list[_Waiter] = []

    def share(self, wanted: int) -> int:
        """How many units a job that wants ``wanted`` gets: its own bound, within the cap."""
        return max(1, min(wanted, self.capacity))

    @property
    def waiting(self) -> list[str]:
        """Ids of the jobs waiting, first come first."""
        return [waiter.job_id for waiter in self._waiting]

    def holds(self, job_id: str) -> int:
        return self._held.get(job_id, 0)

    async def acquire(self, job_id: str, need: int, notice: WaitNotice | None = None) -> None:
        """Return once ``need`` units are this job's; ``notice`` hears why it waits.

        Raises ``asyncio.CancelledError`` if the job is dropped (cancelled) while waiting.
        """
        need = self.share(need)
        if not self._waiting and self.in_use + need <= self.capacity:
            self._grant(job_id, need)
            return
        waiter = _Waiter(job_id, need, asyncio.get_running_loop().create_future(), notice)
        self._waiting.append(waiter)
        self._tell(waiter, len(self._waiting) - 1)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            self.drop(job_id)
            raise

    def release(self, job_id: str) -> None:
        """The job's units are free again (its workers or kernel are gone)."""
        held = self._held.pop(job_id, 0)
        if held:
            self.in_use -= held
            self._admit()

    def drop(self, job_id: str) -> None:
        """Forget a job: a waiting one stops waiting at once, a running one gives back."""
        for waiter in list(self._waiting):
            if waiter.job_id == job_id:
                self._waiting.remove(waiter)
                if not waiter.granted.done():
                    waiter.granted.cancel()
                self._admit()
        self.release(job_id)

    def _grant(self, job_id: str, need: int) -> None:
        self._held[job_id] = self._held.get(job_id, 0) + need
        self.in_use += need

    def _admit(self) -> None:
        """Start waiting jobs from the head of the queue while they fit; tell the rest."""
        while self._waiting and self.in_use + self._waiting[0].need <= self.capacity:
            waiter = self._waiting.pop(0)
            self._grant(waiter.job_id, waiter.need)
            waiter.granted.set_result(None)
        for position, waiter in enumerate(self._waiting):
            self._tell(waiter, position)

    def _tell(self, waiter: _Waiter, ahead: int) -> None:
        if waiter.notice is None:
            return
        message = self.reason(waiter.need, ahead)
        if message != waiter.last_message:
            waiter.last_message = message
            waiter.notice(waiter.job_id, message)

    def reason(self, need: int, ahead: int) -> str:
        """Why a job waits, in words: ``waiting for 2 workers (31 of 32 in use)``."""
        what = f"a {self.unit}" if need == 1 else f"{need} {self.plural}"
        text = f"waiting for {what} ({self.in_use} of {self.capacity} in use"
        if ahead:
            text += f"; {ahead} job{'s' if ahead > 1 else ''} ahead"
        return text + ")"
