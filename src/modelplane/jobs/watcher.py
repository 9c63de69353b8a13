"""Notices objects written straight into input buckets (any S3 client, or a file dropped into a
local bucket folder) and makes them jobs.

Where the storage tells us what changed (local buckets: the kernel's file events, see
:mod:`.changes`), the watcher lists each input bucket once — at start and when a deployment
starts reading a bucket — and from then on only looks at the objects the events name, so a
quiet bucket costs nothing however large it is. Where it cannot (S3), it lists the input
buckets every ``interval``.

Each listing pass lists the bucket; the store's unique key on (deployment, bucket, key, etag) makes
enqueuing idempotent, and a memory of what was already seen keeps a pass over a large, quiet
bucket from touching the store at all. A listing cursor alone (``start_after``) would miss
objects whose keys sort before the newest one, which arrive all the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from modelplane.errors import ModelplaneError, TooManyRequests
from modelplane.jobs.changes import Changed
from modelplane.jobs.group import GroupCommit
from modelplane.jobs.triggers import triggers, watch_prefix
from modelplane.storage import BucketStore, ObjectInfo
from modelplane.store.jobs import Job, JobStore, NewJob

log = logging.getLogger("modelplane.jobs")

_SUBSCRIPTION_CHECK = 0.25
"""Seconds between looks at which buckets the deployments read (a dict in memory)."""


class BucketWatcher:
    def __init__(
        self,
        jobs: JobStore,
        storage: BucketStore,
        deployments: Any,
        *,
        interval: float = 2.0,
        on_new: Any = None,
        changes: Any = None,
        admit: Callable[[str, int], None] | None = None,
        enqueue: Callable[[list[NewJob]], Awaitable[list[tuple[Job, bool]]]] | None = None,
    ) -> None:
        self.jobs = jobs
        self.storage = storage
        self.deployments = deployments
        self.interval = interval
        self.on_new = on_new
        self.changes = changes
        """A change feed (``watch(buckets, stop)``, e.g. :class:`.changes.LocalChanges`), or
        ``None`` to list the buckets every ``interval``."""
        self.admit = admit
        """``admit(name, extra)`` raises :class:`~modelplane.errors.TooManyRequests` when a
        deployment's job queue, with ``extra`` more jobs on their way in, is at its bound
        (``max_queued_jobs``): a file dropped into its bucket then waits there, not as a job, and
        becomes one once the queue has room (the same bound as uploads)."""
        self._enqueue = enqueue
        """Enqueues jobs, ``JobStore.enqueue_many``'s answer; the platform passes its
        :class:`~modelplane.jobs.group.GroupCommit`, so dropped files and uploads that arrive
        together share transactions (without one, the watcher makes its own)."""
        self._seen: dict[str, SeenObjects] = {}
        self._deferred: set[tuple[str, str]] = set()
        self._admitting: dict[str, int] = {}
        """Jobs per deployment admitted under its queue bound and not yet enqueued."""
        self._own: set[tuple[str, str]] = set()
        """Objects the platform is writing itself (:meth:`expect`): their event is dropped."""
        self._closing = False
        self._stop = asyncio.Event()

    async def run(self) -> None:
        if self.changes is None:
            while not self._closing:
                await self._scan_logged()
                await self._pause(self.interval)
            return
        while not self._closing:
            buckets = self._input_buckets()
            # List, subscribe, and list again once the subscription is live: an object that
            # landed before it, or while it was being set up, is seen by a listing, and one
            # landing after by the feed (some by both: enqueuing is idempotent).
            await self._scan_logged()
            stop, ready = asyncio.Event(), asyncio.Event()
            self._stop = stop
            follow = asyncio.create_task(self._follow(buckets, stop, ready))
            live = asyncio.create_task(ready.wait())
            await asyncio.wait({follow, live}, return_when=asyncio.FIRST_COMPLETED)
            live.cancel()
            # Notes whose events went to the previous subscription are void: this listing
            # looks at every object anyway.
            self._own.clear()
            await self._scan_logged()
            # Deployments come and go: re-subscribe when the set of input buckets changes.
            # Checking that set is a look at a dict in memory, no I/O.
            while not self._closing and self._input_buckets() == buckets and not follow.done():
                await self._pause(_SUBSCRIPTION_CHECK)
                if self._deferred:
                    await self._retry_deferred()
            stop.set()
            await asyncio.gather(follow, return_exceptions=True)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _scan_logged(self) -> None:
        try:
            await self.scan()
        except Exception:
            log.exception("bucket scan failed; retrying")

    def _input_buckets(self) -> set[str]:
        return {
            dep.spec.input
            for dep in list(self.deployments.deployments.values())
            if dep.spec.input is not None and dep.spec.output is not None
        }

    async def _follow(
        self, buckets: set[str], stop: asyncio.Event, ready: asyncio.Event
    ) -> None:
        try:
            async for changed in self.changes.watch(buckets, stop, ready):
                await self.notice(changed)
        except Exception:
            log.exception("bucket change feed failed; listing the buckets again")

    async def notice(self, changed: Changed) -> int:
        """Make jobs of the objects ``changed`` names, for every deployment reading them: one
        thread hop looks them all up, and their jobs go to the store together."""
        readers: dict[str, list[tuple[str, Any]]] = {}
        for name, dep in list(self.deployments.deployments.items()):
            spec = dep.spec
            if spec.input is not None and spec.output is not None:
                readers.setdefault(spec.input, []).append((name, dep))
        wanted: list[tuple[str, str, list[tuple[str, Any]]]] = []
        extra: dict[str, int] = {}
        for bucket, key in sorted(changed):
            if bucket not in readers:
                continue
            if (bucket, key) in self._own:
                self._own.discard((bucket, key))
                continue  # an upload through the platform: it made its jobs itself
            deps = [
                (name, dep)
                for name, dep in readers[bucket]
                if triggers(dep.spec, bucket, key) and self._admitted(name, bucket, key, extra)
            ]
            if deps:
                wanted.append((bucket, key, deps))
        created = 0
        try:
            for start in range(0, len(wanted), BATCH):
                part = wanted[start : start + BATCH]
                found = await asyncio.to_thread(self._head_all, [(b, k) for b, k, _ in part])
                todo = [
                    (name, dep, bucket, obj)
                    for (bucket, _key, deps), obj in zip(part, found, strict=True)
                    if obj is not None  # gone again, or not an object
                    for name, dep in deps
                ]
                created += await self._enqueue_all(todo)
                missed = [(b, k) for (b, k, _), obj in zip(part, found, strict=True) if obj is None]
                if missed:
                    # A name that is no object may be a new folder. Files written into it before
                    # the kernel watched it have no event of their own: list it (its watch is
                    # in place by now, so what lands later has its event).
                    inside = await asyncio.to_thread(self._inside_folders, missed)
                    if inside:
                        created += await self.notice(inside)
        finally:
            self._admitted_done(extra)
        return created

    def _inside_folders(self, names: list[tuple[str, str]]) -> Changed:
        return {
            (bucket, obj.key)
            for bucket, key in names
            for obj in self._list_all(bucket, f"{key}/")
        }

    def _head_all(self, objects: list[tuple[str, str]]) -> list[ObjectInfo | None]:
        out: list[ObjectInfo | None] = []
        for bucket, key in objects:
            try:
                out.append(self.storage.head(bucket, key))
            except ModelplaneError:
                out.append(None)
        return out

    def _admitted(self, name: str, bucket: str, key: str, extra: dict[str, int]) -> bool:
        """Whether ``name``'s queue has room for one more job, counting those admitted and not
        yet enqueued by any pass (a listing and the change feed run side by side). Admitted
        ones are counted in ``extra``, to be handed to :meth:`_admitted_done` once enqueued (the
        runner's backlog counts them from then on)."""
        if self.admit is not None:
            try:
                self.admit(name, self._admitting.get(name, 0))
            except TooManyRequests:
                self._deferred.add((bucket, key))
                return False
        extra[name] = extra.get(name, 0) + 1
        self._admitting[name] = self._admitting.get(name, 0) + 1
        return True

    def _admitted_done(self, extra: dict[str, int]) -> None:
        for name, n in extra.items():
            left = self._admitting.get(name, 0) - n
            if left > 0:
                self._admitting[name] = left
            else:
                self._admitting.pop(name, None)

    async def _retry_deferred(self) -> None:
        deferred, self._deferred = self._deferred, set()
        await self.notice(deferred)

    async def scan(self) -> int:
        created = 0
        self._deferred.clear()  # a listing sees every object again
        for name, dep in list(self.deployments.deployments.items()):
            spec = dep.spec
            if spec.input is None or spec.output is None:
                continue
            objects = await asyncio.to_thread(self._list_all, spec.input, watch_prefix(spec))
            seen = self._seen.setdefault(name, SeenObjects())
            extra: dict[str, int] = {}
            new = [
                obj
                for obj in objects
                if not seen.has(obj.key, obj.etag)
                and triggers(spec, spec.input, obj.key)
                and self._admitted(name, spec.input, obj.key, extra)  # else: listed again
            ]
            try:
                # Listings carry no content type: look the new ones up, a batch per thread hop.
                for start in range(0, len(new), BATCH):
                    typed = await asyncio.to_thread(
                        self._typed_all, spec.input, new[start : start + BATCH]
                    )
                    created += await self._enqueue_all(
                        [(name, dep, spec.input, o) for o in typed]
                    )
            finally:
                self._admitted_done(extra)
        return created

    async def _enqueue_all(self, todo: list[tuple[str, Any, str, ObjectInfo]]) -> int:
        """Enqueue a job per ``(deployment, runtime, bucket, object)`` not seen yet, all through
        the store's group commit (with any uploads' enqueues of the moment)."""
        jobs: list[NewJob] = []
        for name, dep, bucket, obj in todo:
            if self._seen.setdefault(name, SeenObjects()).has(obj.key, obj.etag):
                continue
            jobs.append(
                NewJob(
                    name,
                    dep.owner,
                    bucket,
                    obj.key,
                    obj.etag,
                    obj.content_type or "application/octet-stream",
                    dep.spec.output,
                )
            )
        if not jobs:
            return 0
        try:
            results = await self._enqueuer()(jobs)
        except ModelplaneError:
            # Not recorded (the store's disk is full, say): looked at again soon, not lost.
            self._deferred.update((job.input_bucket, job.input_key) for job in jobs)
            return 0
        created = 0
        for row, new in results:
            self._seen.setdefault(row.deployment, SeenObjects()).add(row.input_key, row.input_etag)
            if new:
                created += 1
                if self.on_new is not None:
                    self.on_new(row.deployment)
        return created

    def _enqueuer(self) -> Callable[[list[NewJob]], Awaitable[list[tuple[Job, bool]]]]:
        if self._enqueue is None:
            self._enqueue = GroupCommit(self.jobs.enqueue_many).submit
        return self._enqueue

    def _list_all(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        after: str | None = None
        with contextlib.suppress(ModelplaneError):
            while True:
                page = self.storage.list(bucket, prefix, start_after=after, limit=1000)
                out.extend(page)
                if len(page) < 1000:
                    break
                after = page[-1].key
        return out

    def _typed_all(self, bucket: str, objects: list[ObjectInfo]) -> list[ObjectInfo]:
        out = []
        for obj in objects:
            if not obj.content_type:
                with contextlib.suppress(ModelplaneError):
                    obj = self.storage.head(bucket, obj.key)
            out.append(obj)
        return out

    def expect(self, bucket: str, key: str) -> bool:
        """The platform is about to write ``key`` and will make its jobs itself: drop the
        event that write causes instead of looking the object up again. True if noted (only
        for buckets followed by events); call :meth:`recheck` if the write or its jobs then fail.

        One note stands for one event: if the kernel merges two writes of the key into one
        event, both are covered; a note whose event never comes (the kernel's queue overflowed)
        makes the next event of that key be dropped once."""
        if bucket not in getattr(self.changes, "following", ()):
            return False  # no events from there now: nothing to drop
        if len(self._own) > 100_000:
            self._own.clear()  # events lost in bulk: looking up is always safe
        self._own.add((bucket, key))
        return True

    def recheck(self, bucket: str, keys: list[str]) -> None:
        """The platform's own write or its jobs failed part-way: look at these objects as if
        their events had come (soon, from the run loop), so whatever did land gets its jobs."""
        for key in keys:
            self._own.discard((bucket, key))
            self._deferred.add((bucket, key))

    def mark_seen(self, name: str, bucket: str, key: str, etag: str) -> None:
        """An upload through the platform already made its job: no need to look again.

        Only remembered where ``bucket`` is listed again and again (no change events): where
        its events are followed, the upload's own event is dropped (:meth:`expect`) and a
        listing runs only when the input buckets change, so remembering every upload there
        grew the platform by an entry a job for nothing."""
        if bucket not in getattr(self.changes, "following", ()):
            self._seen.setdefault(name, SeenObjects()).add(key, etag)

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)

    def close(self) -> None:
        self._closing = True
        self._stop.set()


BATCH = 256
"""Objects looked up per thread hop and enqueued per transaction. A listing at start finds every
object of the bucket unseen (10,000 after a restart, say): in one transaction their enqueue
(each already a job, read back) held SQLite's write lock for seconds, and the runner's commits
of the moment timed out waiting for it."""

SEEN_LIMIT = 100_000
"""Objects remembered per deployment as already having their job (15 MB at most). Past it
the older half is forgotten: forgetting costs one idempotent enqueue per object at the next
listing, never a job."""


class SeenObjects:
    """A bounded memory of ``(key, etag)`` pairs, kept as 16-byte digests.

    Every object a listing finds, and every upload into a bucket that is listed again and again
    (so that the next listing need not ask the store about it), is remembered, so this grows
    with the bucket: the pair of strings and their tuple took about 250 bytes an object, a
    digest in a set 90 to 150. A BLAKE2b digest of 128 bits makes telling two objects apart by
    it as sure as by their names (a collision would make one object's job be skipped by a
    listing; the chance is nil at 2**-128 a pair).

    Two generations of at most ``limit / 2`` each: when the newer one is full it becomes the
    older and the previous older one is dropped, so the most recent half is always kept."""

    __slots__ = ("_half", "_new", "_old")

    def __init__(self, limit: int | None = None) -> None:
        self._half = max(1, (SEEN_LIMIT if limit is None else limit) // 2)
        self._new: set[bytes] = set()
        self._old: set[bytes] = set()

    @staticmethod
    def _digest(key: str, etag: str) -> bytes:
        raw = key.encode("utf-8", "surrogatepass")
        h = hashlib.blake2b(len(raw).to_bytes(4, "big"), digest_size=16)
        h.update(raw)
        h.update(etag.encode("utf-8", "surrogatepass"))
        return h.digest()

    def has(self, key: str, etag: str) -> bool:
        d = self._digest(key, etag)
        return d in self._new or d in self._old

    def add(self, key: str, etag: str) -> None:
        d = self._digest(key, etag)
        if d in self._new:
            return
        if len(self._new) >= self._half:
            self._old, self._new = self._new, set()
        self._new.add(d)

    def __len__(self) -> int:
        return len(self._new) + len(self._old)
