"""The durable job queue: rows in the store, claimed with leases.

Execution is at-least-once: a job whose lease runs out (its runner died, the platform was killed)
is claimed again. Output keys are derived from input keys, so running a job twice writes the
same object twice, never two objects. A claim is a conditional UPDATE, so two runners can never
both hold one job, on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import (
    BindParameter,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    union_all,
    update,
)

from modelplane.clock import Clock, SystemClock, utc
from modelplane.store.db import Store
from modelplane.store.models import BucketRow, JobRow

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED)
OWNER_TTL = 5.0
"""Seconds a bucket owner read from the store is reused (see :meth:`JobStore.bucket_owner`)."""


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


@dataclass(slots=True)
class Job:
    """A job's row as the queue's hot path hands it out (enqueue, claim): a plain record with
    :class:`~modelplane.store.models.JobRow`'s fields, not an ORM instance. Building and reading
    instrumented ORM objects was a sixth of the platform's Python time per job."""

    id: str
    deployment: str
    owner: str
    state: str
    input_bucket: str
    input_key: str
    input_etag: str
    content_type: str
    output_bucket: str
    max_attempts: int
    created_at: datetime
    attempts: int = 0
    interrupted: int = 0
    output_key: str | None = None
    not_before: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobStore:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        """Leases, retry times and finish times are read from here (a fake clock in tests)."""
        self._owners: dict[str, tuple[str, float]] = {}
        """Bucket owners seen lately, with when: every upload checks its bucket's owner."""

    def _now(self) -> datetime:
        return utc(self.clock)

    @functools.cached_property
    def _sql(self) -> _DriverSql:
        return _DriverSql(self.store)

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
        """The bucket's owner, ``None`` if nobody has it.

        Ownership is set once and only ends when the bucket is forgotten, so a known owner is
        reused for ``OWNER_TTL`` seconds rather than read on every upload; forgetting a bucket
        here drops it at once, and another platform process on the same store sees that within
        the TTL. An unknown bucket is always read (it may be claimed any moment)."""
        cached = self.cached_owner(name)
        if cached is not None:
            return cached
        now = self.clock.now()
        with self.store.begin() as conn:
            owner = conn.execute(_OWNER, {"b_name": name}).scalar()
        if owner is None:
            self._owners.pop(name, None)
            return None
        if len(self._owners) > 10_000:
            self._owners.clear()
        self._owners[name] = (owner, now)
        return str(owner)

    def cached_owner(self, name: str) -> str | None:
        """The owner :meth:`bucket_owner` read less than ``OWNER_TTL`` ago, without reading the
        store (``None``: not known lately, ask :meth:`bucket_owner`)."""
        cached = self._owners.get(name)
        if cached is not None and self.clock.now() - cached[1] < OWNER_TTL:
            return cached[0]
        return None

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
        self._owners.pop(name, None)

    # -- enqueue --------------------------------------------------------------------------------
    def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        """Add a job; ``(row, False)`` if this very input object already has one."""
        return self.enqueue_many([job])[0]

    def enqueue_many(self, jobs: list[NewJob]) -> list[tuple[Job, bool]]:
        """Add many jobs in one transaction; ``(row, False)`` for inputs that already had one.

        One commit for a whole upload instead of one per file: the store's cost per job is then
        a row, not a transaction. It is ``INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING
        RETURNING id`` in the driver's own SQL (see :class:`_DriverSql`: SQLAlchemy's work per
        row was three quarters of the CPU of an upload's insert); only inputs that already had
        a job are read back."""
        if not jobs:
            return []
        now = self._now()
        rows = [self._values(job, now) for job in jobs]
        sql = self._sql
        when = sql.stamp(now)
        inserted: set[str] = set()
        with self.store.begin() as conn:
            for first in range(0, len(rows), sql.insert_rows):
                chunk = rows[first : first + sql.insert_rows]
                params = [v for r in chunk for v in sql.insert_values(r, when)]
                statement = sql.insert(len(chunk))
                inserted.update(r[0] for r in conn.exec_driver_sql(statement, tuple(params)))
            out: list[tuple[Job, bool]] = []
            for job, values in zip(jobs, rows, strict=True):
                if values["id"] in inserted:
                    out.append((Job(**values), True))
                    continue
                found = conn.execute(
                    select(*_TABLE.c).where(
                        _TABLE.c.deployment == job.deployment,
                        _TABLE.c.input_bucket == job.input_bucket,
                        _TABLE.c.input_key == job.input_key,
                        _TABLE.c.input_etag == job.input_etag,
                    )
                ).one()
                out.append((Job(**found._mapping), False))
            return out

    @staticmethod
    def _values(job: NewJob, now: datetime) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "deployment": job.deployment,
            "owner": job.owner,
            "state": QUEUED,
            "input_bucket": job.input_bucket,
            "input_key": job.input_key,
            "input_etag": job.input_etag,
            "content_type": job.content_type,
            "output_bucket": job.output_bucket,
            "max_attempts": job.max_attempts,
            "attempts": 0,
            "interrupted": 0,
            "created_at": now,
        }

    # -- claim, heartbeat, finish ---------------------------------------------------------------
    def claim(
        self, deployment: str, runner: str, lease: float, limit: int, now: datetime | None = None
    ) -> list[Job]:
        """Take up to ``limit`` runnable jobs: queued ones, or running ones whose lease expired."""
        now = (now or self._now()).astimezone(UTC)
        until = now + timedelta(seconds=lease)
        params = {
            "c_deployment": deployment,
            "c_now": now,
            "c_limit": limit,
            "c_runner": runner,
            "c_until": until,
        }
        with self.store.begin() as conn:
            rows = conn.execute(_claim(self.store.engine.dialect.name), params).all()
        # What the claim itself set is not read back: turning each row's timestamps into
        # datetimes was half of a claim's Python, per job.
        known: dict[str, Any] = {
            "state": RUNNING,
            "lease_owner": runner,
            "lease_expires_at": until,
            "started_at": now,
            "finished_at": None,
        }
        jobs = [Job(**dict(zip(_CLAIM_NAMES, row, strict=True)), **known) for row in rows]
        return sorted(jobs, key=attrgetter("created_at"))

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
        sql = self._sql
        when = sql.stamp(self._now())
        params = [(key, when, job_id, runner) for job_id, key in done]
        with self.store.begin() as conn:
            conn.exec_driver_sql(sql.succeed, params)

    def fail(self, job_id: str, runner: str, error: str, *, retry_in: float | None) -> str:
        """Record a failure: back to the queue after ``retry_in`` seconds while attempts remain
        (``None``: never retry, e.g. the input itself is bad). Returns the new state."""
        with self.store.session() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.lease_owner != runner or row.state != RUNNING:
                return row.state if row else FAILED
            # Runs the platform's death cut short were not the job's: they use up no retries.
            if retry_in is not None and row.attempts - row.interrupted < row.max_attempts:
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
                    interrupted=0,
                    error=None,
                    not_before=None,
                    started_at=None,
                    finished_at=None,
                )
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    def release_all(self, runner: str | None = None) -> int:
        """Put running jobs back in the queue (at start-up: whoever ran them is gone). Their
        runs were cut short by the platform, not by the job: counted as ``interrupted``, so they
        use up none of the job's attempts."""
        with self.store.session() as s:
            q = update(JobRow).where(JobRow.state == RUNNING)
            if runner is not None:
                q = q.where(JobRow.lease_owner == runner)
            result = s.execute(
                q.values(
                    state=QUEUED,
                    lease_owner=None,
                    lease_expires_at=None,
                    interrupted=JobRow.interrupted + 1,
                )
            )
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


# -- statements of the hot path, built once ------------------------------------------------------
# Every upload enqueues and every job is claimed: these are built once, with bind parameters,
# so a call costs their execution, not the construction and compilation of an ORM statement
# (an ORM claim over an aliased CTE was 2.4 ms of CPU; this one is a tenth of that).

_TABLE: Table = JobRow.__table__  # type: ignore[assignment]


def _claim_statement(dialect: str) -> Any:
    t = _TABLE
    now = bindparam("c_now", type_=t.c.started_at.type)
    limit = bindparam("c_limit", type_=Integer)
    values = {
        "state": RUNNING,
        "lease_owner": bindparam("c_runner"),
        "lease_expires_at": bindparam("c_until", type_=t.c.lease_expires_at.type),
        "attempts": t.c.attempts + 1,
        # A running job claimed again lost its runner (its lease ran out): that run was cut
        # short by the platform, not by the job.
        "interrupted": t.c.interrupted + case((t.c.state == RUNNING, 1), else_=0),
        "started_at": now,
    }
    if dialect == "sqlite":
        return _claim_sqlite(now, limit, values)

    def runnable(c: Any) -> Any:
        # ``state IN (…)`` first: the (deployment, state, created_at) index then reads only the
        # deployment's active jobs, however many finished ones it keeps.
        return and_(
            c.deployment == bindparam("c_deployment"),
            c.state.in_((QUEUED, RUNNING)),
            or_(
                and_(c.state == QUEUED, or_(c.not_before.is_(None), c.not_before <= now)),
                and_(c.state == RUNNING, c.lease_expires_at < now),
            ),
        )

    # One statement: the CTE picks candidates, and the outer condition is checked again on each
    # row as it is updated, so a job another runner took meanwhile is skipped. On PostgreSQL the
    # candidates are locked with SKIP LOCKED: runners in several platform processes each take
    # different jobs at once instead of queueing on the same rows. The candidates are a CTE
    # over an alias: a subquery over the UPDATE's own table would be correlated with the row
    # being updated, and PostgreSQL may rerun an IN (subquery) per row; either way its LIMIT
    # would no longer hold for the statement. A CTE runs once.
    pick = t.alias("pick")
    picked = (
        select(pick.c.id)
        .where(runnable(pick.c))
        .order_by(pick.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).cte("picked")
    return (
        update(t)
        .where(t.c.id.in_(select(picked.c.id)), runnable(t.c))
        .values(**values)
        .returning(*_claim_returns(t))
    )


def _claim_sqlite(now: Any, limit: Any, values: dict[str, Any]) -> Any:
    """The claim on SQLite, whose cost does not grow with the backlog.

    The general statement reads every active job of the deployment twice per claim: ``state IN
    (queued, running) ORDER BY created_at`` cannot follow the (deployment, state, created_at)
    index across two states, so SQLite sorted the whole backlog to keep the oldest few, and its
    planner drove the UPDATE's re-check through that index rather than through the primary key
    (2 to 3 ms a claim at 4,000 queued jobs, a tenth of a millisecond per job). Here each state
    is read in index order up to the limit (queued, and running ones whose lease ran out), the
    two short lists merged, and the rows updated by id alone. No re-check is needed: SQLite has
    one writer at a time and an UPDATE takes the write lock before it reads, so no other runner
    can take a picked job between the pick and the update."""
    t = _TABLE
    deployment: BindParameter[str] = bindparam("c_deployment")
    queued, expired = t.alias("queued"), t.alias("expired")
    waiting = (
        select(queued.c.id, queued.c.created_at)
        .where(
            queued.c.deployment == deployment,
            queued.c.state == QUEUED,
            or_(queued.c.not_before.is_(None), queued.c.not_before <= now),
        )
        .order_by(queued.c.created_at)
        .limit(limit)
        .subquery()
    )
    lost = (
        select(expired.c.id, expired.c.created_at)
        .where(
            expired.c.deployment == deployment,
            expired.c.state == RUNNING,
            expired.c.lease_expires_at < now,
        )
        .order_by(expired.c.created_at)
        .limit(limit)
        .subquery()
    )
    both = union_all(
        select(waiting.c.id, waiting.c.created_at), select(lost.c.id, lost.c.created_at)
    ).subquery()
    picked = select(both.c.id).order_by(both.c.created_at).limit(limit).cte("picked")
    return (
        update(t)
        .where(t.c.id.in_(select(picked.c.id)))
        .values(**values)
        .returning(*_claim_returns(t))
    )


_CLAIM_SETS = ("state", "lease_owner", "lease_expires_at", "started_at", "finished_at")
"""Columns whose value after a claim the claim knows (finished_at: NULL while running)."""


def _claim_returns(t: Table) -> list[Any]:
    return [c for c in t.c if c.name not in _CLAIM_SETS]


def _claim(dialect: str) -> Any:
    stmt = _CLAIMS.get(dialect)
    if stmt is None:
        stmt = _CLAIMS[dialect] = _claim_statement(dialect)
    return stmt


_CLAIMS: dict[str, Any] = {}
_CLAIM_NAMES = tuple(c.name for c in _TABLE.c if c.name not in _CLAIM_SETS)
_INSERT_COLUMNS = (
    "id",
    "deployment",
    "owner",
    "state",
    "input_bucket",
    "input_key",
    "input_etag",
    "content_type",
    "output_bucket",
    "max_attempts",
    "attempts",
    "interrupted",
    "created_at",
)
_INSERT_FIELDS = itemgetter(*_INSERT_COLUMNS[:-1])
"""A new job's values in column order, but its time (see ``_DriverSql.stamp``)."""


class _DriverSql:
    """The queue's two per-job statements (a job's insert, its success) as the database
    driver's own SQL, run with ``exec_driver_sql``: SQLAlchemy's compiled-statement path built
    and type-processed every row's parameters in Python, 35 µs a job each for the insert and
    the update (four times SQLite's own work). Column values are passed as the driver takes
    them; timestamps go through the column type's own bind processor, once per statement, so
    they are stored exactly as SQLAlchemy stores them."""

    def __init__(self, store: Store) -> None:
        dialect = store.engine.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._stamp = _TABLE.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        # Bound variables per statement: SQLite's oldest default limit is 999.
        self.insert_rows = 999 // len(_INSERT_COLUMNS)
        self._row = "(" + ", ".join([mark] * len(_INSERT_COLUMNS)) + ")"
        self._inserts: dict[int, str] = {}
        self.succeed = (
            f"UPDATE jobs SET state = '{SUCCEEDED}', output_key = {mark}, finished_at = {mark}, "
            f"error = NULL, lease_owner = NULL, lease_expires_at = NULL "
            f"WHERE id = {mark} AND lease_owner = {mark} AND state = '{RUNNING}'"
        )

    def stamp(self, when: datetime) -> Any:
        return self._stamp(when) if self._stamp is not None else when

    def insert(self, rows: int) -> str:
        statement = self._inserts.get(rows)
        if statement is None:
            statement = self._inserts[rows] = (
                f"INSERT INTO jobs ({', '.join(_INSERT_COLUMNS)}) VALUES "
                + ", ".join([self._row] * rows)
                + " ON CONFLICT (deployment, input_bucket, input_key, input_etag) DO NOTHING"
                " RETURNING id"
            )
        return statement

    @staticmethod
    def insert_values(values: dict[str, Any], when: Any) -> tuple[Any, ...]:
        return (*_INSERT_FIELDS(values), when)


_BUCKETS: Table = BucketRow.__table__  # type: ignore[assignment]
_OWNER = select(_BUCKETS.c.owner).where(_BUCKETS.c.name == bindparam("b_name"))
