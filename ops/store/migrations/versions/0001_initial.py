"""Runs and their snapshots.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # runs.latest_snapshot_id and snapshots.run_id reference each other: SQLite takes the
    # forward reference inline (it cannot ALTER in a constraint), other databases add it after.
    latest_fk = (
        [
            sa.ForeignKeyConstraint(
                ["latest_snapshot_id"], ["snapshots.id"], name="fk_runs_latest_snapshot"
            )
        ]
        if sqlite
        else []
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latest_snapshot_id", sa.Integer(), nullable=True),
        *latest_fk,
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("examples_seen", sa.BigInteger(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=True),
        sa.Column("offsets", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "version", name="uq_snapshots_run_version"),
    )
    op.create_index("ix_snapshots_run_id", "snapshots", ["run_id"])
    if not sqlite:
        op.create_foreign_key(
            "fk_runs_latest_snapshot", "runs", "snapshots", ["latest_snapshot_id"], ["id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_runs_latest_snapshot", "runs", type_="foreignkey")
    op.drop_index("ix_snapshots_run_id", table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_table("runs")
