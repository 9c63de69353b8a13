"""Runs of a job that the platform's death cut short, counted apart from its attempts.

A job running when the platform is killed is requeued at the restart (or claimed again once its
lease runs out); that run was the platform's failure, not the job's, so it must not use up the
job's retries: ``attempts - interrupted`` is what ``max_attempts`` bounds. ``attempts`` still
counts every run started (a job that ran twice shows 2).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("interrupted", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("interrupted")
