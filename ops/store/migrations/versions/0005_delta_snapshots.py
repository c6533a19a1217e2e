"""Delta snapshots and bounded retention.

- snapshots.parent_version, base_version: a delta snapshot's file holds what changed since
  its parent; base_version is the full snapshot its chain starts from. Null for full
  snapshots, which every older row is.
- experiments.low_water: the oldest impression time the experiment's evaluator may still
  score; null until it records one (retention then keeps every snapshot of its runs).
- experiment_served_versions: (experiment, arm, snapshot version) for every version that
  served stored predictions, filled here once from the predictions already stored, then
  by the evaluator as it writes rows, so that retention never scans the predictions.

Revision ID: 0005_delta_snapshots
Revises: 0004_checkpoints
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_delta_snapshots"
down_revision = "0004_checkpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("parent_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("base_version", sa.Integer(), nullable=True))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("low_water", sa.BigInteger(), nullable=True))
    op.create_table(
        "experiment_served_versions",
        sa.Column(
            "experiment_id",
            sa.Integer(),
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("arm", sa.String(100), primary_key=True),
        sa.Column("snapshot_version", sa.Integer(), primary_key=True),
    )
    op.execute(
        "INSERT INTO experiment_served_versions (experiment_id, arm, snapshot_version) "
        "SELECT DISTINCT experiment_id, arm, snapshot_version FROM experiment_predictions "
        "WHERE snapshot_version IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("experiment_served_versions")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("low_water")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("base_version")
        batch.drop_column("parent_version")
