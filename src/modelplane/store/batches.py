"""Server-side batch runs in the store: the run, its checkpoints, its failed inputs.

A run is claimed with a lease, like a job, so a platform that dies mid-run leaves it to be
picked up again (by itself after a restart, or by another platform process on a shared store).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from modelplane.store.db import Store
from modelplane.store.models import BatchFailureRow, BatchRow, utcnow

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
ACTIVE = (QUEUED, RUNNING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


@dataclass(frozen=True)
class NewBatch:
    owner: str
    deployment: str
    input: str
    output: str
    ephemeral: bool = False
    options: dict[str, Any] = field(default_factory=dict)


class BatchStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, batch: NewBatch) -> BatchRow:
        with self.store.session() as s:
            row = BatchRow(
                id=uuid.uuid4().hex,
                owner=batch.owner,
                deployment=batch.deployment,
                ephemeral=batch.ephemeral,
                input=batch.input,
                output=batch.output,
                state=QUEUED,
                options=dict(batch.options),
                total=0,
                done=0,
                failed=0,
                skipped=0,
                replica_seconds=0.0,
                gpu_seconds=0.0,
            )
            s.add(row)
            s.flush()
            return row

    def get(self, batch_id: str) -> BatchRow | None:
        with self.store.session() as s:
            return s.get(BatchRow, batch_id)

    def runs(self, owner: str | None = None, limit: int = 100, offset: int = 0) -> list[BatchRow]:
        with self.store.session() as s:
            q = select(BatchRow).order_by(BatchRow.created_at.desc(), BatchRow.id)
            if owner is not None:
                q = q.where(BatchRow.owner == owner)
            return list(s.scalars(q.limit(limit).offset(offset)))

    # -- running ----------------------------------------------------------------------------
    def claim(
        self, runner: str, lease: float, limit: int, now: datetime | None = None
    ) -> list[BatchRow]:
        """Take up to ``limit`` runs that are queued, or running under an expired lease."""
        now = now or utcnow()
        runnable = or_(
            BatchRow.state == QUEUED,
            and_(
                BatchRow.state == RUNNING,
                or_(BatchRow.lease_expires_at.is_(None), BatchRow.lease_expires_at < now),
            ),
        )
        candidates = (
            select(BatchRow.id).where(runnable).order_by(BatchRow.created_at).limit(limit)
        ).scalar_subquery()
        with self.store.session() as s:
            rows = s.scalars(
                update(BatchRow)
                .where(BatchRow.id.in_(candidates), runnable)
                .values(
                    state=RUNNING,
                    lease_owner=runner,
                    lease_expires_at=now + timedelta(seconds=lease),
                    started_at=func.coalesce(BatchRow.started_at, now),
                )
                .returning(BatchRow)
                .execution_options(synchronize_session=False)
            )
            return sorted(rows, key=lambda r: r.created_at)

    def checkpoint(
        self,
        batch_id: str,
        runner: str,
        lease: float,
        *,
        total: int,
        done: int,
        skipped: int,
        failures: Iterable[tuple[str, str, int]] = (),
    ) -> str | None:
        """Record progress and new failures, renew the lease; return the run's state (so the
        runner learns of a cancel), or ``None`` if the run is no longer this runner's."""
        now = utcnow()
        with self.store.session() as s:
            row = s.get(BatchRow, batch_id)
            if row is None or row.lease_owner != runner:
                return None
            for name, error, attempts in failures:
                s.merge(BatchFailureRow(batch_id=batch_id, name=name, error=error,
                                        attempts=attempts))
            s.flush()
            row.failed = s.scalar(
                select(func.count()).where(BatchFailureRow.batch_id == batch_id)
            ) or 0
            row.total, row.done, row.skipped = total, done, skipped
            if row.state == RUNNING:
                row.lease_expires_at = now + timedelta(seconds=lease)
            return row.state

    def finish(
        self,
        batch_id: str,
        runner: str,
        *,
        error: str | None = None,
        replica_seconds: float = 0.0,
        gpu_seconds: float = 0.0,
    ) -> str | None:
        """End the run: ``failed`` if any input failed (or ``error``), else ``succeeded``; a
        cancelled run stays cancelled. Returns the final state."""
        with self.store.session() as s:
            row = s.get(BatchRow, batch_id)
            if row is None or row.lease_owner != runner:
                return None
            if row.state != CANCELLED:
                row.state = FAILED if (error or row.failed) else SUCCEEDED
            row.error = error
            row.replica_seconds += replica_seconds
            row.gpu_seconds += gpu_seconds
            row.finished_at = utcnow()
            row.lease_owner = None
            row.lease_expires_at = None
            return row.state

    def release_all(self) -> int:
        """At start-up: runs that were running have nobody running them any more."""
        with self.store.session() as s:
            result = s.execute(
                update(BatchRow)
                .where(BatchRow.state == RUNNING)
                .values(lease_owner=None, lease_expires_at=None)
            )
            return result.rowcount  # type: ignore[attr-defined]

    # -- what users ask ---------------------------------------------------------------------
    def cancel(self, batch_id: str) -> str | None:
        with self.store.session() as s:
            row = s.get(BatchRow, batch_id)
            if row is None:
                return None
            if row.state in ACTIVE:
                row.state = CANCELLED
                if row.lease_owner is None:
                    row.finished_at = utcnow()
            return row.state

    def retry(self, batch_id: str) -> BatchRow | None:
        """Queue a finished run again for its failed inputs (the others have results)."""
        with self.store.session() as s:
            row = s.get(BatchRow, batch_id)
            if row is None or row.state in ACTIVE:
                return row
            s.execute(delete(BatchFailureRow).where(BatchFailureRow.batch_id == batch_id))
            row.state, row.failed, row.error, row.finished_at = QUEUED, 0, None, None
            return row

    def failures(
        self, batch_id: str, limit: int = 100, offset: int = 0
    ) -> list[BatchFailureRow]:
        with self.store.session() as s:
            q = (
                select(BatchFailureRow)
                .where(BatchFailureRow.batch_id == batch_id)
                .order_by(BatchFailureRow.name)
                .limit(limit)
                .offset(offset)
            )
            return list(s.scalars(q))

    def failed_names(self, batch_id: str) -> set[str]:
        with self.store.session() as s:
            return set(
                s.scalars(
                    select(BatchFailureRow.name).where(BatchFailureRow.batch_id == batch_id)
                )
            )
