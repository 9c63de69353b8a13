"""Group commit: the writes that arrive while one transaction is on its way go in the next one.

Uploads enqueue jobs and the runner records successes one by one, each from its own task; each
as a transaction of its own would pay a thread hop, a ``BEGIN`` … ``COMMIT`` and, on PostgreSQL, a
round trip per job. A :class:`GroupCommit` runs the first caller's batch at once (no added wait
when the platform is quiet) and gathers everything submitted meanwhile into the next call, so a
busy platform pays one transaction per group. Durability is unchanged: nobody is answered before
the transaction holding their items has committed.

With ``lanes`` above one, that many groups may be on their way at once: for work that waits on
the disk item by item (results written and fsynced), where one group at a time would put every
fsync in one queue, while a thread hop per item costs more CPU than the write itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """``await submit(items)`` → ``fn``'s results for those items, ``fn`` called in a thread over
    the items of every caller waiting at that moment, in submission order.

    ``fn`` takes a list and returns one result per item, in order. If it raises, every caller of
    that group gets the exception (the items went in one transaction, which did not commit).
    Up to ``lanes`` calls run at once, each over the items waiting when it starts: at a trickle
    every submission gets a lane of its own, and groups form once all lanes are busy.
    """

    def __init__(
        self, fn: Callable[[list[T]], Sequence[R]], *, max_items: int = 1000, lanes: int = 1
    ) -> None:
        self.fn = fn
        self.max_items = max_items
        self.lanes = lanes
        self._waiting: list[tuple[list[T], asyncio.Future[list[R]]]] = []
        self._committers: set[asyncio.Task[None]] = set()
        self._running = 0
        """Committers in their loop: counted down by the committer itself as it leaves, with no
        await between its last look at the waiting list and that (a task's done callback runs
        a step later, and a submission in between would wait for a lane that never comes)."""
        self.groups = 0
        """Calls of ``fn`` so far (for tests and metrics)."""

    async def submit(self, items: list[T]) -> list[R]:
        if not items:
            return []
        done: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, done))
        if self._running < self.lanes:
            self._running += 1
            task = asyncio.create_task(self._commit())
            self._committers.add(task)
            task.add_done_callback(self._committers.discard)
        return await done

    async def _commit(self) -> None:
        try:
            await self._commit_waiting()
        finally:
            self._running -= 1

    async def _commit_waiting(self) -> None:
        while self._waiting:
            group: list[tuple[list[T], asyncio.Future[list[R]]]] = []
            count = 0
            while self._waiting and (
                not group or count + len(self._waiting[0][0]) <= self.max_items
            ):
                entry = self._waiting.pop(0)
                group.append(entry)
                count += len(entry[0])
            flat = [item for items, _ in group for item in items]
            self.groups += 1
            try:
                results = await asyncio.to_thread(self.fn, flat)
                if len(results) != len(flat):
                    raise RuntimeError(f"{len(results)} results for {len(flat)} items")
            except asyncio.CancelledError:  # shutting down: nobody learns an outcome
                for _, done in group + self._waiting:
                    done.cancel()
                self._waiting.clear()
                raise
            except Exception as exc:  # the whole group failed: each caller learns why
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            start = 0
            for items, done in group:
                if not done.done():
                    done.set_result(list(results[start : start + len(items)]))
                start += len(items)
