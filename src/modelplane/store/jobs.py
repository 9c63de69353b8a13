"""The durable job queue: rows in the store, claimed with leases.

Execution is at-least-once: a job whose lease runs out (its runner died, the platform was killed)
is claimed again. Output keys are derived from input keys, so running a job twice writes the
same object twice, never two objects. A claim is a conditional UPDATE, so two runners can never
both hold one job, on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from modelplane.clock import Clock, SystemClock, utc
from modelplane.store.db import Store
from modelplane.store.models import BucketRow, JobRow

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED)


@dataclass(frozen=True)
class NewJob:
    deployment: str
    owner: str
    input_bucket: str
    input_key: str
    input_etag: str
    content_type: str
    output_bucket: str
    max_attempts: int = 3


class JobStore:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        """Leases, retry times and finish times are read from here (a fake clock in tests)."""

    def _now(self) -> datetime:
        return utc(self.clock)

    # -- buckets --------------------------------------------------------------------------------
    def claim_bucket(self, name: str, owner: str) -> str:
        """Record ``owner`` as the bucket's owner if nobody owns it yet; return the owner."""
        with self.store.session() as s:
            row = s.get(BucketRow, name)
            if row is None:
                s.add(BucketRow(name=name, owner=owner))
                return owner
            return row.owner

    def bucket_owner(self, name: str) -> str | None:
        with self.store.session() as s:
            row = s.get(BucketRow, name)
            return row.owner if row else None

    def buckets(self, owner: str | None = None) -> list[BucketRow]:
        with self.store.session() as s:
            q = select(BucketRow).order_by(BucketRow.name)
            if owner is not None:
                q = q.where(BucketRow.owner == owner)
            return list(s.scalars(q))

    def forget_bucket(self, name: str) -> None:
        with self.store.session() as s:
            row = s.get(BucketRow, name)
            if row is not None:
                s.delete(row)

    # -- enqueue --------------------------------------------------------------------------------
    def enqueue(self, job: NewJob) -> tuple[JobRow, bool]:
        """Add a job; ``(row, False)`` if this very input object already has one."""
        try:
            with self.store.session() as s:
                row = self._row(job)
                s.add(row)
                s.flush()
                return row, True
        except IntegrityError:
            with self.store.session() as s:
                existing = s.scalars(
                    select(JobRow).where(
                        JobRow.deployment == job.deployment,
                        JobRow.input_bucket == job.input_bucket,
                        JobRow.input_key == job.input_key,
                        JobRow.input_etag == job.input_etag,
                    )
                ).one()
                return existing, False

    def enqueue_many(self, jobs: list[NewJob]) -> list[tuple[JobRow, bool]]:
        """Add many jobs in one transaction; ``(row, False)`` for inputs that already had one.

        One commit for a whole upload instead of one per file: the store's cost per job is then
        a row, not a transaction."""
        if not jobs:
            return []
        try:
            with self.store.session() as s:
                existing = {
                    (r.deployment, r.input_bucket, r.input_key, r.input_etag): r
                    for r in s.scalars(
                        select(JobRow).where(
                            JobRow.input_key.in_({j.input_key for j in jobs}),
                            JobRow.deployment.in_({j.deployment for j in jobs}),
                        )
                    )
                }
                out: list[tuple[JobRow, bool]] = []
                for job in jobs:
                    ident = (job.deployment, job.input_bucket, job.input_key, job.input_etag)
                    if ident in existing:
                        out.append((existing[ident], False))
                        continue
                    row = self._row(job)
                    s.add(row)
                    existing[ident] = row
                    out.append((row, True))
                s.flush()
                return out
        except IntegrityError:  # another writer raced us for one of them: go one by one
            return [self.enqueue(job) for job in jobs]

    @staticmethod
    def _row(job: NewJob) -> JobRow:
        return JobRow(
            id=uuid.uuid4().hex,
            deployment=job.deployment,
            owner=job.owner,
            state=QUEUED,
            input_bucket=job.input_bucket,
            input_key=job.input_key,
            input_etag=job.input_etag,
            content_type=job.content_type,
            output_bucket=job.output_bucket,
            max_attempts=job.max_attempts,
            attempts=0,
        )

    # -- claim, heartbeat, finish ---------------------------------------------------------------
    def claim(
        self, deployment: str, runner: str, lease: float, limit: int, now: datetime | None = None
    ) -> list[JobRow]:
        """Take up to ``limit`` runnable jobs: queued ones, or running ones whose lease expired."""
        now = now or self._now()

        def runnable(j: Any) -> Any:
            return and_(
                j.deployment == deployment,
                or_(
                    and_(j.state == QUEUED, or_(j.not_before.is_(None), j.not_before <= now)),
                    and_(j.state == RUNNING, j.lease_expires_at < now),
                ),
            )

        # One statement: the subquery picks candidates, and the outer condition is checked again
        # on each row as it is updated, so a job another runner took meanwhile is skipped. On
        # PostgreSQL the candidates are locked with SKIP LOCKED: runners in several platform
        # processes each take different jobs at once instead of queueing on the same rows.
        # (SQLite has one writer at a time and no row locks; SQLAlchemy renders no FOR UPDATE.)
        # The candidates are a CTE over an alias: a subquery over the UPDATE's own table would be
        # correlated with the row being updated, and PostgreSQL may rerun an IN (subquery) per
        # row; either way its LIMIT would no longer hold for the statement. A CTE runs once.
        pick = aliased(JobRow)
        picked = (
            select(pick.id)
            .where(runnable(pick))
            .order_by(pick.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).cte("picked")
        candidates = select(picked.c.id)
        with self.store.session() as s:
            rows = s.scalars(
                update(JobRow)
                .where(JobRow.id.in_(candidates), runnable(JobRow))
                .values(
                    state=RUNNING,
                    lease_owner=runner,
                    lease_expires_at=now + timedelta(seconds=lease),
                    attempts=JobRow.attempts + 1,
                    started_at=now,
                )
                .returning(JobRow)
                .execution_options(synchronize_session=False)
            )
            return sorted(rows, key=lambda r: r.created_at)

    def heartbeat(self, job_ids: list[str], runner: str, lease: float) -> None:
        if not job_ids:
            return
        with self.store.session() as s:
            s.execute(
                update(JobRow)
                .where(
                    JobRow.id.in_(job_ids), JobRow.lease_owner == runner, JobRow.state == RUNNING
                )
                .values(lease_expires_at=self._now() + timedelta(seconds=lease))
            )

    def succeed(self, job_id: str, runner: str, output_key: str) -> bool:
        with self.store.session() as s:
            result = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lease_owner == runner, JobRow.state == RUNNING)
                .values(
                    state=SUCCEEDED,
                    output_key=output_key,
                    finished_at=self._now(),
                    error=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    def succeed_many(self, runner: str, done: list[tuple[str, str]]) -> None:
        """:meth:`succeed` for many ``(job_id, output_key)`` in one transaction: the runner
        commits the jobs that finished within a few milliseconds of each other together."""
        if not done:
            return
        table: Table = JobRow.__table__  # type: ignore[assignment]
        stmt = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.lease_owner == runner,
                table.c.state == RUNNING,
            )
            .values(
                state=SUCCEEDED,
                output_key=bindparam("b_key"),
                finished_at=self._now(),
                error=None,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        with self.store.session() as s:
            s.connection().execute(stmt, [{"b_id": i, "b_key": k} for i, k in done])

    def fail(self, job_id: str, runner: str, error: str, *, retry_in: float | None) -> str:
        """Record a failure: back to the queue after ``retry_in`` seconds while attempts remain
        (``None``: never retry, e.g. the input itself is bad). Returns the new state."""
        with self.store.session() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.lease_owner != runner or row.state != RUNNING:
                return row.state if row else FAILED
            if retry_in is not None and row.attempts < row.max_attempts:
                row.state = QUEUED
                row.not_before = self._now() + timedelta(seconds=retry_in)
            else:
                row.state = FAILED
                row.finished_at = self._now()
            row.error = error
            row.lease_owner = None
            row.lease_expires_at = None
            return row.state

    def note_error(self, job_id: str, runner: str, error: str) -> None:
        """Show ``error`` on a job its runner still holds (it waits; its state is unchanged)."""
        with self.store.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lease_owner == runner, JobRow.state == RUNNING)
                .values(error=error)
            )

    def retry(self, job_id: str) -> bool:
        """Put a failed job back in the queue with fresh attempts. False if it is not failed."""
        with self.store.session() as s:
            result = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == FAILED)
                .values(
                    state=QUEUED,
                    attempts=0,
                    error=None,
                    not_before=None,
                    started_at=None,
                    finished_at=None,
                )
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    def release_all(self, runner: str | None = None) -> int:
        """Put running jobs back in the queue (at start-up: whoever ran them is gone)."""
        with self.store.session() as s:
            q = update(JobRow).where(JobRow.state == RUNNING)
            if runner is not None:
                q = q.where(JobRow.lease_owner == runner)
            result = s.execute(q.values(state=QUEUED, lease_owner=None, lease_expires_at=None))
            return result.rowcount  # type: ignore[attr-defined]

    # -- reading --------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRow | None:
        with self.store.session() as s:
            return s.get(JobRow, job_id)

    def list(
        self, deployment: str, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[JobRow]:
        with self.store.session() as s:
            q = select(JobRow).where(JobRow.deployment == deployment)
            if state is not None:
                q = q.where(JobRow.state == state)
            q = q.order_by(JobRow.created_at, JobRow.id).limit(limit).offset(offset)
            return list(s.scalars(q))

    def counts(self) -> dict[str, dict[str, int]]:
        """``{deployment: {state: n}}`` for every deployment with jobs."""
        with self.store.session() as s:
            rows = s.execute(
                select(JobRow.deployment, JobRow.state, func.count()).group_by(
                    JobRow.deployment, JobRow.state
                )
            )
            out: dict[str, dict[str, int]] = {}
            for deployment, state, n in rows:
                out.setdefault(deployment, {})[state] = n
            return out

    def active_counts(self) -> dict[str, int]:
        """``{deployment: queued + running}``, for deployments with such jobs; reads only those
        rows (through the state index), however many finished jobs the table keeps."""
        with self.store.session() as s:
            rows = s.execute(
                select(JobRow.deployment, func.count())
                .where(JobRow.state.in_((QUEUED, RUNNING)))
                .group_by(JobRow.deployment)
            )
            return {deployment: n for deployment, n in rows}

    def delete_for(self, deployment: str) -> None:
        with self.store.session() as s:
            s.execute(delete(JobRow).where(JobRow.deployment == deployment))
