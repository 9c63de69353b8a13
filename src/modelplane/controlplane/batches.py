"""Batch runs behind the REST routes: where a run reads and writes, who may, and its views.

Where a run reads or writes is one of:

- ``bucket[/prefix]`` — one of the platform's buckets (the caller's own; an output bucket is
  created for them);
- ``s3://bucket/prefix`` — the same when the platform keeps its buckets on S3 and that bucket is
  one of them; otherwise any bucket the platform's S3 credentials reach (admins only);
- an absolute folder path or ``file:///…`` on the platform's machine (admins only: it is the
  platform's filesystem, not the caller's).

The row keeps the canonical form (``bucket://name/prefix``, ``file:///path``, ``s3://…``), which
:func:`side_of` turns into a :class:`~modelplane.storage.sides.Side` when the run executes.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

from modelplane.core.deployments import Deployments
from modelplane.core.deps import Deps
from modelplane.core.jobs import Jobs
from modelplane.errors import Forbidden, InvalidInput, NotFound
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec
from modelplane.storage import BucketStore, S3BucketStore, validate_bucket_name
from modelplane.storage.keys import validate_prefix
from modelplane.storage.sides import BucketSide, LocalSide, S3Side, Side
from modelplane.storage.uri import LocalLocation, S3Location, parse_location
from modelplane.store.batches import ACTIVE, BatchStore, NewBatch
from modelplane.store.models import BatchRow, utcnow

_BUCKET = "bucket://"


class Batches:
    def __init__(self, deps: Deps) -> None:
        if deps.batches is None or deps.storage is None:
            raise NotFound("batch runs are not enabled on this platform")
        self.deps = deps
        self.batches: BatchStore = deps.batches
        self.storage: BucketStore = deps.storage

    # -- submitting ---------------------------------------------------------------------------
    async def create(self, body: dict[str, Any], principal: Principal) -> dict[str, Any]:
        deployments = Deployments(self.deps)
        options: dict[str, Any] = {"admin": principal.admin}
        if body.get("concurrency"):
            options["concurrency"] = body["concurrency"]
        if body.get("deployment"):
            deployment = await deployments.get_row(body["deployment"], principal)
            name, ephemeral = deployment.name, False
        else:
            name, ephemeral = f"batch-{secrets.token_hex(4)}", True
            spec = DeploymentSpec.parse(
                {
                    "name": name,
                    "model": body["model"],
                    "mode": "dedicated",
                    "scale": {"replicas": body.get("replicas") or 1},
                    "resources": {
                        k: v for k, v in (body.get("resources") or {}).items() if v is not None
                    },
                }
            )
            deployments.check_model(spec)
            options["spec"] = spec.model_dump(mode="json")
        source = await self._where(body["input"], principal, output=False)
        target = await self._where(body["output"], principal, output=True)
        if source == target:
            raise InvalidInput("input and output are the same place; give the results their own")
        row = await asyncio.to_thread(
            self.batches.create,
            NewBatch(principal.user, name, source, target, ephemeral=ephemeral, options=options),
        )
        if self.deps.batch_runner is not None:
            self.deps.batch_runner.wake()
        return view(row)

    async def _where(self, text: str, principal: Principal, *, output: bool) -> str:
        field = "output" if output else "input"
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"{field}: give a bucket/prefix, s3://bucket/prefix or a folder")
        location = parse_location(text)
        if isinstance(location, S3Location):
            if isinstance(self.storage, S3BucketStore) and await self._known(location.bucket):
                return await self._bucket(location.bucket, location.prefix, principal, output)
            if not principal.admin:
                raise Forbidden(
                    f"{field}: {text!r} is not one of your buckets on this platform",
                    hint="upload your files to one of your buckets and name it as bucket/prefix",
                )
            return str(location)
        path = location.path
        if text.startswith("file://") or path.is_absolute():
            if not principal.admin:
                raise Forbidden(
                    f"{field}: folders on the platform's machine are for admins",
                    hint="upload the files to one of your buckets and name it as bucket/prefix",
                )
            if not output and not path.is_dir():
                raise InvalidInput(f"input: {path} is not a folder on the platform's machine")
            return f"file://{path.resolve()}"
        bucket, _, prefix = text.partition("/")
        return await self._bucket(bucket, prefix, principal, output)

    async def _bucket(self, bucket: str, prefix: str, principal: Principal, output: bool) -> str:
        validate_bucket_name(bucket)
        validate_prefix(prefix)
        jobs = Jobs(self.deps)
        if output:
            owner = await asyncio.to_thread(self.deps.jobs.bucket_owner, bucket)  # type: ignore[union-attr]
            if owner is None or owner == principal.user:
                await jobs.ensure_bucket(bucket, principal.user)
            else:
                await jobs.check_bucket(bucket, principal)
        else:
            await jobs.check_bucket(bucket, principal)
        return f"{_BUCKET}{bucket}/{prefix}"

    async def _known(self, bucket: str) -> bool:
        owner = await asyncio.to_thread(self.deps.jobs.bucket_owner, bucket)  # type: ignore[union-attr]
        return owner is not None

    # -- reading and changing -----------------------------------------------------------------
    async def get_row(self, batch_id: str, principal: Principal) -> BatchRow:
        row = await asyncio.to_thread(self.batches.get, batch_id)
        if row is None or not principal.can_see(row.owner):
            raise NotFound(f"batch run {batch_id!r} does not exist", batch=batch_id)
        return row

    async def get(self, batch_id: str, principal: Principal, wait: float = 0.0) -> dict[str, Any]:
        """The run's view. ``wait`` > 0: held up to that many seconds until the run has
        finished (answered the moment it ends here; a run that another platform process
        executes is looked at again every second)."""
        runner = self.deps.batch_runner
        ended = runner.ended(batch_id) if wait > 0 and runner is not None else None
        try:
            row = await self.get_row(batch_id, principal)
            if ended is not None:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + wait
                while row.finished_at is None and (left := deadline - loop.time()) > 0:
                    await asyncio.wait({ended}, timeout=min(left, 1.0))
                    if ended.done():  # ended here; a retry may have queued it again since
                        ended = runner.ended(batch_id)  # type: ignore[union-attr]
                    row = await self.get_row(batch_id, principal)
        finally:
            if ended is not None:
                ended.cancel()
        failures = await asyncio.to_thread(self.batches.failures, row.id, 20)
        return {**view(row), "failures": [failure_view(f) for f in failures]}

    async def runs(self, principal: Principal) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(
            self.batches.runs, None if principal.admin else principal.user
        )
        return [view(r) for r in rows]

    async def failures(
        self, batch_id: str, principal: Principal, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        row = await self.get_row(batch_id, principal)
        rows = await asyncio.to_thread(self.batches.failures, row.id, limit, offset)
        return [failure_view(f) for f in rows]

    async def cancel(self, batch_id: str, principal: Principal) -> dict[str, Any]:
        row = await self.get_row(batch_id, principal)
        await asyncio.to_thread(self.batches.cancel, row.id)
        return await self.get(row.id, principal)

    async def retry(self, batch_id: str, principal: Principal) -> dict[str, Any]:
        row = await self.get_row(batch_id, principal)
        if row.state in ACTIVE:
            raise InvalidInput(f"batch run {batch_id!r} is still {row.state}; retry it after")
        await asyncio.to_thread(self.batches.retry, row.id)
        if self.deps.batch_runner is not None:
            self.deps.batch_runner.wake()
        return await self.get(row.id, principal)


def view(row: BatchRow) -> dict[str, Any]:
    elapsed = None
    if row.started_at is not None:
        end = row.finished_at or utcnow()
        elapsed = max(0.0, (end - row.started_at).total_seconds())
    computed = max(0, row.done - row.skipped)
    rate = computed / elapsed if elapsed else None
    remaining = max(0, row.total - row.done - row.failed)
    eta = remaining / rate if rate and row.state in ACTIVE else None
    return {
        "id": row.id,
        "state": row.state,
        "deployment": row.deployment,
        "ephemeral": row.ephemeral,
        "input": row.input,
        "output": row.output,
        "total": row.total,
        "done": row.done,
        "failed": row.failed,
        "skipped": row.skipped,
        "remaining": remaining,
        "rate_per_second": round(rate, 2) if rate is not None else None,
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "elapsed_seconds": round(elapsed, 3) if elapsed is not None else None,
        "replica_seconds": round(row.replica_seconds, 3),
        "gpu_seconds": round(row.gpu_seconds, 3),
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


def failure_view(row: Any) -> dict[str, Any]:
    return {"name": row.name, "error": row.error, "attempts": row.attempts}


def side_of(where: str, storage: BucketStore, s3_client: Any = None) -> Side:
    """The side a stored location names (see the module's docstring)."""
    if where.startswith(_BUCKET):
        bucket, _, prefix = where[len(_BUCKET) :].partition("/")
        return BucketSide(storage, bucket, prefix)
    location = parse_location(where)
    if isinstance(location, LocalLocation):
        return LocalSide(Path(location.path))
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    return S3Side(location, s3_client)
