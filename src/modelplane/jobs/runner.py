"""The job runner: claims jobs with a lease, runs them on replicas, writes results.

It sends each job's input through the data plane's one entry, like synchronous predictions (as
the platform itself: the job was authorised when it was made), so jobs share replicas, the
cold-start queue and the autoscaler with them: a serverless deployment at zero scales up for
queued jobs and back down once they are done. It claims no more jobs than twice what the
deployment's ready replicas can take at their target concurrency, or ``IO_DEPTH`` (enough to keep
the disk busy while replicas predict, and to wake a deployment at zero), so the queue, not the
gateway, holds the backlog.
Successes of jobs that finish together are committed in one transaction; on local storage, in the
same thread hop that wrote their results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from modelplane.errors import (
    InsufficientStorage,
    ModelplaneError,
    NotFound,
    Timeout,
    Unavailable,
)
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.reply import PredictRequest
from modelplane.jobs.group import GroupCommit
from modelplane.jobs.keys import failure_message, retry_delay, retry_in
from modelplane.jobs.results import Output, result_objects, store_results
from modelplane.jobs.triggers import request_meta
from modelplane.security import PLATFORM
from modelplane.storage import BucketStore, LocalBucketStore
from modelplane.store.jobs import QUEUED, Job, JobStore

log = logging.getLogger("modelplane.jobs")

IO_DEPTH = 32
"""Jobs of one deployment in flight at least, however few its replicas (see ``_pass``)."""

WRITE_LANES = 2
"""Groups of local results written at once (see ``_write_results``): more only queued on
the output folder's lock, spinning (measured on ext4 and tmpfs)."""

STORAGE_RETRY = 2.0
"""Seconds at most between tries of a job waiting for full or unreachable storage."""

_T = TypeVar("_T")
_Result = tuple[Any, str, str, str, bytes]
"""What :func:`store_results` takes after the storage: spec, output bucket, input key, content
type, body."""


class JobRunner:
    def __init__(
        self,
        jobs: JobStore,
        storage: BucketStore,
        dataplane: DataPlane,
        deployments: Any,
        *,
        lease: float = 60.0,
        interval: float = 0.5,
        retry_base: float = 1.0,
    ) -> None:
        self.jobs = jobs
        self.storage = storage
        self.dataplane = dataplane
        self.deployments = deployments
        """Anything with ``.deployments: dict[name, runtime with .spec]`` (the reconciler)."""
        self.lease = lease
        self.interval = interval
        self.retry_base = retry_base
        self.runner_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._in_flight: dict[str, set[str]] = {}
        self._backlog: dict[str, int] = {}
        self._counted_at = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self._successes: GroupCommit[tuple[str, str], None] = GroupCommit(self._succeed_many)
        self._writes: GroupCommit[tuple[str, _Result], tuple[str, bool] | Exception] = GroupCommit(
            self._write_results, lanes=WRITE_LANES
        )
        self._wake = asyncio.Event()
        self._more: set[str] = set()
        """Deployments whose last claim filled all their room (more may be queued)."""
        self._closing = False
        self.storage_retry = STORAGE_RETRY
        self.storage_trouble: str | None = None
        """The last storage error jobs are waiting out ("503: cannot reach the S3 server…"), or
        None once a storage call succeeds again: shown by ``/api/v1/health``."""
        self.release_on_start = True
        """Requeue every running job at start: right when this is the only platform process
        (SQLite); with several on one store, their jobs stay theirs until their leases end."""

    # -- what others ask ------------------------------------------------------------------------
    def backlog(self, name: str) -> int:
        """Jobs queued or running for ``name``: extra demand for the autoscaler."""
        return self._backlog.get(name, 0)

    def wake(self, backlog_of: str | None = None) -> None:
        """Run a pass soon; ``backlog_of`` names a deployment that just got a job."""
        if backlog_of is not None:
            self._backlog[backlog_of] = self._backlog.get(backlog_of, 0) + 1
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        released = await asyncio.to_thread(self.jobs.release_all) if self.release_on_start else 0
        if released:
            log.info("requeued %d jobs that were running when the platform stopped", released)
        beat = 0.0
        loop = asyncio.get_running_loop()
        while not self._closing:
            try:
                await self._pass()
                if loop.time() - beat > self.lease / 3:
                    beat = loop.time()
                    ids = [j for ids in self._in_flight.values() for j in ids]
                    await asyncio.to_thread(self.jobs.heartbeat, ids, self.runner_id, self.lease)
            except Exception:
                log.exception("job runner pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def _pass(self) -> None:
        # Counting scans the table: refresh the backlog (for the autoscaler and for knowing
        # which deployments have work) at most every interval, not on every finished job.
        loop = asyncio.get_running_loop()
        if loop.time() - self._counted_at >= self.interval:
            self._counted_at = loop.time()
            self._backlog = await asyncio.to_thread(self.jobs.active_counts)
        for name, dep in list(self.deployments.deployments.items()):
            spec = dep.spec
            if spec.input is None or not self._backlog.get(name):
                continue
            if not self.dataplane.has(name):
                continue
            per_replica = max(1, math.ceil(spec.scale.target_concurrency))
            # Twice what the replicas take at once, and never fewer than IO_DEPTH: while one
            # round is being predicted, others read inputs and write (fsync) results, and
            # concurrent fsyncs are committed together, so neither the replicas nor the disk
            # wait for each other.
            replicas = max(1, self.dataplane.ready_count(name))
            capacity = max(2 * replicas * per_replica, IO_DEPTH)
            running = self._in_flight.setdefault(name, set())
            room = capacity - len(running)
            if room <= 0:
                self._more.add(name)
                continue
            claimed = await asyncio.to_thread(
                self.jobs.claim, name, self.runner_id, self.lease, room
            )
            # A claim that filled the room may have left jobs behind: a finished job then asks
            # for another pass. One that did not emptied the queue as far as this pass can see
            # (new jobs wake the runner themselves), and the finished jobs need not: at a
            # trickle of uploads, that was one empty claim per job.
            if len(claimed) >= room:
                self._more.add(name)
            else:
                self._more.discard(name)
            if not claimed and not running:
                self._backlog[name] = 0  # drained: nothing to claim until the next count
            # Ours already: its lease ran out while it waited (e.g. for storage, with the
            # heartbeat unable to write), and the claim renewed it; one task is enough.
            fresh = [job for job in claimed if job.id not in running]
            running.update(job.id for job in fresh)
            inputs: list[bytes | Exception | None] = [None] * len(fresh)
            if fresh and isinstance(self.storage, LocalBucketStore):
                # Local inputs are read in one thread hop for the whole claim (a read is a few
                # microseconds of page cache, the hop many times that); elsewhere (S3, a round
                # trip each) every job reads its own, side by side.
                inputs = await asyncio.to_thread(self._read_inputs, fresh)
            for job, data in zip(fresh, inputs, strict=True):
                task = asyncio.create_task(self._execute(job, data))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _read_inputs(self, jobs: list[Job]) -> list[bytes | Exception | None]:
        """The claimed jobs' inputs, a bucket's at a time (``get_many``): each job's content,
        a ``NotFound`` if it is gone, or None to read it again itself (it then waits out
        storage trouble)."""
        assert isinstance(self.storage, LocalBucketStore)
        out: list[bytes | Exception | None] = [None] * len(jobs)
        by_bucket: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            by_bucket.setdefault(job.input_bucket, []).append(i)
        for bucket, indexes in by_bucket.items():
            keys = [jobs[i].input_key for i in indexes]
            for i, data in zip(indexes, self.storage.get_many(bucket, keys), strict=True):
                out[i] = data if isinstance(data, bytes | NotFound) else None
        return out

    # -- one job --------------------------------------------------------------------------------
    async def _execute(self, job: Job, data: bytes | Exception | None = None) -> None:
        try:
            await self._run_job(job, data)
        except Exception as exc:  # storage down, a bug: the job goes back with a backoff
            log.exception("job %s failed unexpectedly", job.id)
            await self._fail(job, f"platform error: {type(exc).__name__}: {exc}", retry=True)
        finally:
            self._in_flight.get(job.deployment, set()).discard(job.id)
            if job.deployment in self._more:
                self.wake()
            else:
                # Done for good, and nothing was left to claim: the backlog the autoscaler
                # reads shrinks now, not at the next count.
                left = self._backlog.get(job.deployment, 0) - 1
                self._backlog[job.deployment] = max(left, 0)

    async def _run_job(self, job: Job, data: bytes | Exception | None = None) -> None:
        """Run ``job``; ``data`` is its input if already read (a ``NotFound`` if it is gone)."""
        try:
            if isinstance(data, Exception):
                raise data
            if data is None:
                data = await self._storage_call(
                    job,
                    lambda: asyncio.to_thread(self.storage.get, job.input_bucket, job.input_key),
                )
        except NotFound:
            await self._fail(job, f"input object {job.input_key!r} is gone", retry=False)
            return
        dep = self.deployments.deployments.get(job.deployment)
        spec = dep.spec if dep is not None else None
        meta = request_meta(spec, job.input_key) if spec is not None else b""
        request = PredictRequest(
            job.content_type.encode("latin-1"), data, principal=PLATFORM, meta=meta
        )
        reply = await self.dataplane.predict(job.deployment, request)
        err = reply.error
        if err is None:
            content_type = reply.content_type.decode("latin-1")
            key, recorded = await self._store_results(job, spec, content_type, reply.body)
            if not recorded:
                await self._succeed(job.id, key)
            return
        if isinstance(err, NotFound) and not self.dataplane.has(job.deployment):
            await self._fail(job, "the deployment was removed", retry=False)
            return
        delay = retry_in(err, job.attempts, base=self.retry_base)  # None: a 4xx, for good
        state = await asyncio.to_thread(
            self.jobs.fail, job.id, self.runner_id, failure_message(err), retry_in=delay
        )
        if state == QUEUED:
            self._more.add(job.deployment)  # back in the queue: a pass will look for it

    async def _store_results(
        self, job: Job, spec: Any, content_type: str, body: bytes
    ) -> tuple[str, bool]:
        """Write the results; ``(key, recorded)``: whether the job is recorded as succeeded too
        (local storage, where a group of results is written and recorded in one hop)."""
        result = (spec, job.output_bucket, job.input_key, content_type, body)
        if not isinstance(self.storage, LocalBucketStore):
            # A round trip each (S3): side by side, one thread hop per job.
            key = await self._storage_call(
                job, lambda: asyncio.to_thread(store_results, self.storage, *result)
            )
            return key, False
        return await self._storage_call(job, lambda: self._write_result(job.id, result))

    async def _write_result(self, job_id: str, result: _Result) -> tuple[str, bool]:
        [outcome] = await self._writes.submit([(job_id, result)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _write_results(
        self, items: list[tuple[str, _Result]]
    ) -> list[tuple[str, bool] | Exception]:
        """Write the results of the jobs that finished together and record those jobs as
        succeeded, in one thread hop and one transaction: on local storage a write is a few
        system calls, and a hop per job cost more CPU than that. The objects of a group go to
        each bucket in one :meth:`~LocalBucketStore.put_many`, flushed to disk together; a few
        groups at once (``WRITE_LANES``) keep several flushes in flight. A job is recorded only
        once all its results are on disk."""
        assert isinstance(self.storage, LocalBucketStore)
        out: list[tuple[str, bool] | Exception] = []
        planned: list[tuple[str, list[Output]]] = []
        by_bucket: dict[str, list[tuple[int, Output]]] = {}
        for i, (_, result) in enumerate(items):
            try:
                key, outputs = result_objects(*result)
            except Exception as exc:
                out.append(exc)
                planned.append(("", []))
                continue
            out.append((key, False))
            planned.append((key, outputs))
            for output in outputs:
                by_bucket.setdefault(output[0], []).append((i, output))
        for bucket, entries in by_bucket.items():
            stored = self.storage.put_many(bucket, [(k, d, c) for _, (_, k, d, c) in entries])
            for (i, _), outcome in zip(entries, stored, strict=True):
                if isinstance(outcome, Exception) and not isinstance(out[i], Exception):
                    out[i] = outcome  # this job's alone: each waits out or reports its own
        written = [
            (i, job_id, planned[i][0])
            for i, (job_id, _) in enumerate(items)
            if not isinstance(out[i], Exception)
        ]
        if written:
            try:
                self.jobs.succeed_many(
                    self.runner_id, [(job_id, key) for _, job_id, key in written]
                )
            except Exception:  # not recorded: each job goes the way of any success (_succeed),
                return out  # which waits out a full store and reports anything else
            for i, _, key in written:
                out[i] = (key, True)
        return out

    async def _storage_call(self, job: Job, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a storage operation for ``job``; while the storage is full or unreachable, wait
        (the job keeps its lease) and try again.

        Neither is the job's fault, and the store may sit on the same full disk, so nothing is
        recorded on the job but a best-effort note of the error: it stays running, its attempts
        untouched, and goes on once the storage is back. Nothing is half-written meanwhile (a
        local write is a temporary file renamed into place, an S3 write one PutObject)."""
        noted = False
        while True:
            try:
                result = await call()
            except (InsufficientStorage, Unavailable, Timeout) as exc:
                self.storage_trouble = failure_message(exc)
                if not noted:
                    noted = True
                    log.warning("job %s waits for storage: %s", job.id, exc.message)
                    with contextlib.suppress(ModelplaneError):
                        await asyncio.to_thread(
                            self.jobs.note_error,
                            job.id,
                            self.runner_id,
                            f"waiting for storage: {failure_message(exc)}",
                        )
                await asyncio.sleep(min(exc.retry_after or 1.0, self.storage_retry))
                continue
            self.storage_trouble = None
            return result

    async def _succeed(self, job_id: str, key: str) -> None:
        """Record a success; the successes of concurrent jobs are committed together."""
        while True:
            try:
                await self._successes.submit([(job_id, key)])
                return
            except InsufficientStorage as exc:
                # The store's disk is full: the result is written, only not yet recorded; keep
                # it and commit again once there is room (the lease is kept alive meanwhile).
                log.warning("recording job %s waits: %s", job_id, exc.message)
                await asyncio.sleep(exc.retry_after or 1.0)

    def _succeed_many(self, done: list[tuple[str, str]]) -> list[None]:
        self.jobs.succeed_many(self.runner_id, done)
        return [None] * len(done)

    async def _fail(self, job: Job, message: str, *, retry: bool) -> None:
        delay = retry_delay(job.attempts, base=self.retry_base) if retry else None
        state = await asyncio.to_thread(
            self.jobs.fail, job.id, self.runner_id, message, retry_in=delay
        )
        if state == QUEUED:
            self._more.add(job.deployment)

    async def close(self) -> None:
        self._closing = True
        self.wake()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


__all__ = ["JobRunner", "ModelplaneError"]
