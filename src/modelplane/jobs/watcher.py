"""Notices objects written straight into input buckets (any S3 client, or a file dropped into a
local bucket folder) and makes them jobs.

Each pass lists the bucket; the store's unique key on (deployment, bucket, key, etag) makes
enqueuing idempotent, and a memory of what was already seen keeps a pass over a large, quiet
bucket from touching the store at all. A listing cursor alone (``start_after``) would miss
objects whose keys sort before the newest one, which arrive all the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from modelplane.errors import ModelplaneError
from modelplane.jobs.triggers import triggers, watch_prefix
from modelplane.storage import BucketStore, ObjectInfo
from modelplane.store.jobs import JobStore, NewJob

log = logging.getLogger("modelplane.jobs")


class BucketWatcher:
    def __init__(
        self,
        jobs: JobStore,
        storage: BucketStore,
        deployments: Any,
        *,
        interval: float = 2.0,
        on_new: Any = None,
    ) -> None:
        self.jobs = jobs
        self.storage = storage
        self.deployments = deployments
        self.interval = interval
        self.on_new = on_new
        self._seen: dict[str, set[tuple[str, str]]] = {}
        self._closing = False

    async def run(self) -> None:
        while not self._closing:
            try:
                await self.scan()
            except Exception:
                log.exception("bucket scan failed; retrying")
            await asyncio.sleep(self.interval)

    async def scan(self) -> int:
        created = 0
        for name, dep in list(self.deployments.deployments.items()):
            spec = dep.spec
            if spec.input is None or spec.output is None:
                continue
            objects = await asyncio.to_thread(self._list_all, spec.input, watch_prefix(spec))
            seen = self._seen.setdefault(name, set())
            for obj in objects:
                if (obj.key, obj.etag) in seen or not triggers(spec, spec.input, obj.key):
                    continue
                if not obj.content_type:  # listings carry none; look it up once per object
                    obj = await asyncio.to_thread(self._typed, spec.input, obj)
                job = NewJob(
                    name,
                    dep.owner,
                    spec.input,
                    obj.key,
                    obj.etag,
                    obj.content_type or "application/octet-stream",
                    spec.output,
                )
                try:
                    _, new = await asyncio.to_thread(self.jobs.enqueue, job)
                except ModelplaneError:
                    continue
                seen.add((obj.key, obj.etag))
                created += new
                if new and self.on_new is not None:
                    self.on_new(name)
        return created

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

    def _typed(self, bucket: str, obj: ObjectInfo) -> ObjectInfo:
        try:
            return self.storage.head(bucket, obj.key)
        except ModelplaneError:
            return obj

    def mark_seen(self, name: str, key: str, etag: str) -> None:
        """An upload through the platform already made its job: no need to look again."""
        self._seen.setdefault(name, set()).add((key, etag))

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)

    def close(self) -> None:
        self._closing = True
