"""Buckets and the durable job queue.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelplane.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "buckets",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("owner", sa.String(64), sa.ForeignKey("users.name"), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("deployment", sa.String(63), nullable=False, index=True),
        sa.Column("owner", sa.String(64), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("input_bucket", sa.String(63), nullable=False),
        sa.Column("input_key", sa.String(1024), nullable=False),
        sa.Column("input_etag", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("output_bucket", sa.String(63), nullable=False),
        sa.Column("output_key", sa.String(1100), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("not_before", UTCDateTime, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint(
            "deployment", "input_bucket", "input_key", "input_etag", name="uq_jobs_input"
        ),
    )
    op.create_index("ix_jobs_claim", "jobs", ["deployment", "state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_claim", "jobs")
    op.drop_table("jobs")
    op.drop_table("buckets")
