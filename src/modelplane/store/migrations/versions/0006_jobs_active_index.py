"""An index for claiming: a deployment's jobs by state, oldest first.

Claims read only a deployment's queued and running jobs; without this index SQLite walked every
job of the deployment, finished ones included, so a claim cost grew with the history (8.8 ms at
20,000 finished jobs, against 0.3 ms on an empty table).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_deployment_state_created", "jobs", ["deployment", "state", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_deployment_state_created", table_name="jobs")
