"""A/B experiments and their scored examples; quality metrics with every snapshot.

Revision ID: 0002_experiments
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_experiments"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("offsets", sa.JSON(), nullable=False),
        sa.Column("end_offsets", sa.JSON(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=True),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "experiment_predictions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "experiment_id",
            sa.Integer(),
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("arm", sa.String(100), nullable=False),
        sa.Column("impression_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("conv_type", sa.String(200), nullable=False),
        sa.Column("scenario", sa.String(200), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("final_ts", sa.BigInteger(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("assigned", sa.Boolean(), nullable=False),
        sa.Column("snapshot_version", sa.Integer(), nullable=True),
        sa.Column("prediction", sa.Double(), nullable=True),
        sa.Column("label", sa.SmallInteger(), nullable=False),
        sa.UniqueConstraint(
            "experiment_id", "arm", "impression_id", name="uq_experiment_predictions_example"
        ),
    )
    op.create_index(
        "ix_experiment_predictions_experiment_id", "experiment_predictions", ["experiment_id"]
    )
    op.add_column("snapshots", sa.Column("metrics", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("metrics")
    op.drop_index("ix_experiment_predictions_experiment_id", table_name="experiment_predictions")
    op.drop_table("experiment_predictions")
    op.drop_table("experiments")
