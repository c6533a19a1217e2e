"""Examples trained per snapshot, an experiment's status, one lease per run.

- snapshots.examples_trained: examples the snapshot's model took optimizer steps on
  (examples_seen also counts rows gathered but not yet stepped). Null for older rows.
- experiments.status (running, finished, stopped, failed), status_at and status_detail
  (the signal or the error): what the evaluator last recorded.
- run_leases: the one trainer that may write a run, whatever its snapshot folder: owner,
  host, pid and the heartbeat that keeps the lease.

Revision ID: 0003_status_leases
Revises: 0002_experiments
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_status_leases"
down_revision = "0002_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("snapshots", sa.Column("examples_trained", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column("status", sa.String(20), nullable=False, server_default="running")
        )
        batch.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("status_detail", sa.Text(), nullable=True))
    op.create_table(
        "run_leases",
        sa.Column("run", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_leases")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("status_detail")
        batch.drop_column("status_at")
        batch.drop_column("status")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("examples_trained")
