"""Resume checkpoints apart from serving snapshots.

- snapshots.checkpoint_path, checkpoint_sha256: the file with what only a resume needs
  (optimizer state, gathered rows, dedupe keys) beside the serving file `path`; null when
  the serving file holds everything (snapshots registered before this revision) or once
  the checkpoint has been pruned.
- snapshots.resumable: whether a trainer can resume from this snapshot (its checkpoint, or
  its complete serving file, is kept). True for every older row: their files are complete.

Revision ID: 0004_checkpoints
Revises: 0003_status_leases
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_checkpoints"
down_revision = "0003_status_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("checkpoint_path", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("checkpoint_sha256", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("resumable", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("resumable")
        batch.drop_column("checkpoint_sha256")
        batch.drop_column("checkpoint_path")
