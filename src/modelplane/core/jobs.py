"""Jobs and buckets behind the REST and OSCAR routes: ownership, uploads that enqueue, results."""

from __future__ import annotations

import asyncio
from typing import Any

from modelplane.core.deps import Deps
from modelplane.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from modelplane.jobs.triggers import triggers
from modelplane.resources.quota import check_job_queue
from modelplane.security import Principal
from modelplane.storage import (
    LocalBucketStore,
    ObjectInfo,
    validate_bucket_name,
    validate_key,
)
from modelplane.store.jobs import Job, NewJob
from modelplane.store.models import DeploymentRow, JobRow

UPLOAD_THREADS = 6
"""Threads an upload of many files to S3 writes them from, a share each: fewer than the
platform's I/O threads, so the runner's calls still find one free."""


def job_view(job: JobRow | Job) -> dict[str, Any]:
    duration = None
    if job.started_at and job.finished_at:
        duration = round((job.finished_at - job.started_at).total_seconds(), 4)
    return {
        "id": job.id,
        "deployment": job.deployment,
        "state": job.state,
        "input": {"bucket": job.input_bucket, "key": job.input_key},
        "output": {"bucket": job.output_bucket, "key": job.output_key},
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "interrupted": job.interrupted,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "duration_seconds": duration,
    }


def object_view(obj: ObjectInfo) -> dict[str, Any]:
    return {
        "key": obj.key,
        "size": obj.size,
        "etag": obj.etag,
        "last_modified": obj.last_modified.isoformat(),
        "content_type": obj.content_type,
    }


class Jobs:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        assert deps.jobs is not None and deps.storage is not None
        self.jobs = deps.jobs
        self.storage = deps.storage

    # -- buckets --------------------------------------------------------------------------------
    async def ensure_bucket(self, name: str, owner: str) -> None:
        """Create ``name`` for ``owner``; refuse a bucket that someone else owns."""
        validate_bucket_name(name)
        holder = await asyncio.to_thread(self.jobs.claim_bucket, name, owner)
        if holder != owner:
            raise AlreadyExists(
                f"bucket name {name!r} is taken", hint="choose another bucket name", bucket=name
            )
        await asyncio.to_thread(self.storage.create_bucket, name)

    async def check_bucket(self, name: str, principal: Principal) -> None:
        validate_bucket_name(name)
        owner = self.jobs.cached_owner(name)  # every upload asks: no thread hop when known
        if owner is None:
            owner = await asyncio.to_thread(self.jobs.bucket_owner, name)
        if owner is None or not principal.can_see(owner):
            raise NotFound(f"bucket {name!r} does not exist", bucket=name)

    async def buckets(self, principal: Principal) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(
            self.jobs.buckets, None if principal.admin else principal.user
        )
        return [
            {"name": r.name, "owner": r.owner, "created_at": r.created_at.isoformat()} for r in rows
        ]

    async def put_object(
        self, bucket: str, key: str, data: bytes, content_type: str, principal: Principal
    ) -> tuple[ObjectInfo, list[Job]]:
        """Store an object; every deployment reading this bucket gets a job for it at once."""
        await self.check_bucket(bucket, principal)
        validate_key(key)
        try:
            info = await self._put(bucket, key, data, content_type)
            return info, await self.trigger(bucket, info)
        except BaseException:
            self._recheck(bucket, [key])  # what landed still gets its jobs, from the watcher
            raise

    async def _put(self, bucket: str, key: str, data: bytes, content_type: str) -> ObjectInfo:
        """Write an object whose jobs the caller makes: the watcher need not look at it."""
        if self.deps.watcher is not None:
            self.deps.watcher.expect(bucket, key)
        return await asyncio.to_thread(self.storage.put, bucket, key, data, content_type)

    def _put_share(self, bucket: str, items: list[tuple[str, bytes, str]]) -> list[ObjectInfo]:
        """Store a share of an upload; the first failure is raised once all were tried."""
        storage = self.storage
        if not isinstance(storage, LocalBucketStore):
            return [storage.put(bucket, key, data, ctype) for key, data, ctype in items]
        infos: list[ObjectInfo] = []
        for outcome in storage.put_many(bucket, items):
            if isinstance(outcome, Exception):
                raise outcome
            infos.append(outcome)
        return infos

    def _recheck(self, bucket: str, keys: list[str]) -> None:
        if self.deps.watcher is not None:
            self.deps.watcher.recheck(bucket, keys)

    async def trigger(self, bucket: str, info: ObjectInfo, *, only: str | None = None) -> list[Job]:
        """Enqueue a job for every deployment the object triggers (:func:`triggers`); ``only``:
        for that deployment alone, whatever its filters say (an OSCAR ``/job`` event)."""
        return await self.trigger_many(bucket, [info], only=only)

    async def trigger_many(
        self, bucket: str, infos: list[ObjectInfo], *, only: str | None = None
    ) -> list[Job]:
        """:meth:`trigger` for several objects of one bucket, in one store transaction."""
        runner = self.deps.runner
        wanted: list[NewJob] = []
        for name, dep in list(self.deps.reconciler.deployments.items()):
            spec = dep.spec
            mine = [
                info
                for info in infos
                if spec.output is not None
                and (
                    (name == only and spec.input == bucket)
                    if only is not None
                    else triggers(spec, bucket, info.key)
                )
            ]
            if not mine:
                continue
            if runner is not None:
                check_job_queue(
                    name, runner.backlog(name) + len(mine) - 1, self.deps.settings.max_queued_jobs
                )
            wanted += [
                NewJob(
                    name,
                    dep.owner,
                    bucket,
                    info.key,
                    info.etag,
                    info.content_type or "application/octet-stream",
                    spec.output,  # type: ignore[arg-type]
                )
                for info in mine
            ]
        results = await self.deps.enqueuer().submit(wanted)
        for row, new in results:
            if new and runner is not None:
                runner.wake(backlog_of=row.deployment)
            if self.deps.watcher is not None:
                self.deps.watcher.mark_seen(
                    row.deployment, row.input_bucket, row.input_key, row.input_etag
                )
        if results and runner is not None:
            runner.wake()
        return [row for row, _ in results]

    # -- jobs of a deployment -------------------------------------------------------------------
    def _buckets_of(self, row: DeploymentRow) -> tuple[str, str]:
        spec = row.spec
        if not spec.get("input") or not spec.get("output"):
            raise InvalidInput(
                f"deployment {row.name!r} has no input and output buckets",
                hint="set `input:` and `output:` bucket names in its spec to use jobs",
            )
        return spec["input"], spec["output"]

    async def upload(
        self, row: DeploymentRow, files: list[tuple[str, bytes, str]], prefix: str
    ) -> list[dict[str, Any]]:
        bucket, _ = self._buckets_of(row)
        if not files:
            raise InvalidInput("no files in the upload; send multipart/form-data with files")
        keys = [prefix + filename for filename, _, _ in files]
        for key in keys:
            validate_key(key)
        # On local storage, all in one thread hop (put_many: written, then flushed together);
        # threads writing side by side into one folder only queued on its lock, spinning. On
        # S3, a share per thread: each put is a round trip, and several go at once. Then one
        # transaction enqueues them all.
        items = [(key, data, ctype) for key, (_, data, ctype) in zip(keys, files, strict=True)]
        if self.deps.watcher is not None:
            for key in keys:
                self.deps.watcher.expect(bucket, key)
        local = isinstance(self.storage, LocalBucketStore)
        step = len(items) if local else -(-len(items) // UPLOAD_THREADS)
        try:
            shares = await asyncio.gather(
                *(
                    asyncio.to_thread(self._put_share, bucket, items[i : i + step])
                    for i in range(0, len(items), step)
                )
            )
            jobs = await self.trigger_many(bucket, [info for share in shares for info in share])
        except BaseException:
            self._recheck(bucket, keys)  # what landed still gets its jobs, from the watcher
            raise
        return [job_view(job) for job in jobs if job.deployment == row.name]

    async def list_jobs(
        self, row: DeploymentRow, state: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        # Counts first: jobs only move forward, so the list read after them is at least as far
        # along, and a client that waits for "all succeeded" never sees one still running.
        counts = (await asyncio.to_thread(self.jobs.counts)).get(row.name, {})
        rows = await asyncio.to_thread(self.jobs.list, row.name, state, limit, offset)
        return {"jobs": [job_view(j) for j in rows], "counts": counts}

    async def get(self, row: DeploymentRow, job_id: str) -> JobRow:
        job = await asyncio.to_thread(self.jobs.get, job_id)
        if job is None or job.deployment != row.name:
            raise NotFound(f"job {job_id!r} does not exist in deployment {row.name!r}")
        return job

    async def retry(self, row: DeploymentRow, job_id: str) -> JobRow:
        """Queue a failed job again (after its input or the model was fixed)."""
        job = await self.get(row, job_id)
        if not await asyncio.to_thread(self.jobs.retry, job.id):
            raise Conflict(
                f"job {job_id} is {job.state}: only a failed job can be retried",
                hint="a queued or running job runs anyway; a succeeded one has its result",
            )
        if self.deps.runner is not None:
            self.deps.runner.wake(backlog_of=row.name)
        return await self.get(row, job_id)

    async def result(self, row: DeploymentRow, job_id: str) -> tuple[bytes, str, str]:
        job = await self.get(row, job_id)
        if job.state != "succeeded" or job.output_key is None:
            raise NotFound(
                f"job {job_id} has no result (state: {job.state})",
                hint="wait until it succeeds; `modelplane jobs` shows its state and error",
            )
        info = await asyncio.to_thread(self.storage.head, job.output_bucket, job.output_key)
        data = await asyncio.to_thread(self.storage.get, job.output_bucket, job.output_key)
        return data, info.content_type or "application/octet-stream", job.output_key
