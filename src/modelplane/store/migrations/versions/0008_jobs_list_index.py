"""A deployment's jobs in list order, and two indexes that only cost writes.

Listing a deployment's jobs (``ORDER BY created_at, id`` with a limit, what ``GET …/jobs`` and
every client polling for progress ask) sorted all of the deployment's jobs to return the first
few: 6 ms a page at 8,000 jobs, growing with the history. An index in that order lets the
listing stop after the page.

``ix_jobs_claim`` (0002) and ``ix_jobs_deployment_state_created`` (0006) are the same index
twice, and ``ix_jobs_deployment`` is the leading column of both and of the input's unique key:
every job's insert, claim and finish updated all three for nothing. Dropped.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_deployment_created", "jobs", ["deployment", "created_at", "id"])
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.drop_index("ix_jobs_deployment", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_deployment", "jobs", ["deployment"])
    op.create_index("ix_jobs_claim", "jobs", ["deployment", "state", "created_at"])
    op.drop_index("ix_jobs_deployment_created", table_name="jobs")
