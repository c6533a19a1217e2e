"""The label windows leave the experiment record.

The A/B evaluator reads the joiner's label windows (O, A) from the mini-batches, which
carry them since this revision, instead of taking them as options; an experiment's
stored config therefore no longer holds `observation_window_s` and `attribution_window_s`
(a restart compares its config with the stored one, so they are removed here from
experiments recorded before).

Revision ID: 0006_windows_from_batches
Revises: 0005_delta_snapshots
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_windows_from_batches"
down_revision = "0005_delta_snapshots"
branch_labels = None
depends_on = None

WINDOWS = ("observation_window_s", "attribution_window_s")
experiments = sa.table("experiments", sa.column("id", sa.Integer), sa.column("config", sa.JSON))


def upgrade() -> None:
    connection = op.get_bind()
    for id_, config in connection.execute(sa.select(experiments.c.id, experiments.c.config)):
        if any(key in config for key in WINDOWS):
            kept = {key: value for key, value in config.items() if key not in WINDOWS}
            connection.execute(
                experiments.update().where(experiments.c.id == id_).values(config=kept)
            )


def downgrade() -> None:
    # The windows an experiment ran with were the joiner's, not recorded here: an older
    # evaluator restarting such an experiment is refused until it is named anew.
    pass
