"""Tables. Timestamps are timezone-aware UTC on the way in and out, whatever the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    quotas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenRow(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deployment: Mapped[str | None] = mapped_column(String(63), nullable=True, index=True)
    """Set: an inference token, good only for predictions with this deployment."""


class DeploymentRow(Base):
    __tablename__ = "deployments"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventRow(Base):
    """What happened to a deployment: replica starts, exits, restarts, load errors, scaling."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(63), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    replica: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Text, default="")


class BucketRow(Base):
    """Who owns a bucket; its objects live in the storage backend."""

    __tablename__ = "buckets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRow(Base):
    """One asynchronous prediction: an input object in, an output object out.

    ``(deployment, input_bucket, input_key, input_etag)`` is unique, so noticing the same upload
    twice (a watcher re-listing a bucket, a retried request) never makes two jobs.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint(
            "deployment", "input_bucket", "input_key", "input_etag", name="uq_jobs_input"
        ),
        # Claims: a deployment's queued and running jobs, oldest first (migration 0006).
        Index("ix_jobs_deployment_state_created", "deployment", "state", "created_at"),
        # Listing: a deployment's jobs in list order, a page without a sort (migration 0008).
        Index("ix_jobs_deployment_created", "deployment", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # No index of its own: it leads the two above and the input's unique key.
    deployment: Mapped[str] = mapped_column(String(63))
    owner: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # queued running succeeded failed
    input_bucket: Mapped[str] = mapped_column(String(63))
    input_key: Mapped[str] = mapped_column(String(1024))
    input_etag: Mapped[str] = mapped_column(String(64), default="")
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    output_bucket: Mapped[str] = mapped_column(String(63))
    output_key: Mapped[str | None] = mapped_column(String(1100), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    interrupted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Runs the platform's death cut short (requeued at a restart, or after a lost lease): not
    counted against ``max_attempts``."""
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BatchRow(Base):
    """One server-side batch run: every input under ``input`` predicted into ``output``.

    Counters are checkpoints (written every fraction of a second while it runs); what is
    really done is what has a result in the output, which is how a run resumes after a restart.
    """

    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    deployment: Mapped[str] = mapped_column(String(63), index=True)
    ephemeral: Mapped[bool] = mapped_column(Boolean, default=False)
    """The deployment was made for this run, from ``model``, and is removed after it."""
    input: Mapped[str] = mapped_column(String(2048))
    output: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16), index=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    replica_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BatchFailureRow(Base):
    """An input of a batch run that failed, with why; retrying the run clears them."""

    __tablename__ = "batch_failures"
    batch_id: Mapped[str] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)


class LeaseRow(Base):
    """A named lease: who holds it, where they answer, until when. ``term`` grows per holder."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    address: Mapped[str] = mapped_column(String(255))
    term: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClusterValueRow(Base):
    """Values every platform process on this store shares (e.g. the relay secret)."""

    __tablename__ = "cluster_values"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
