"""Runs: mark the ones deleted together with their experiment explicitly.

Until now a restore of an experiment revived the runs whose ``deleted_time`` equalled the
experiment's ``last_update_time``, which also caught runs deleted on their own in the same
millisecond. Existing rows get the mark where that rule would have restored them: for runs deleted
before this migration it is the only record of what the experiment delete did.

A plain ADD COLUMN with a constant default, not batch mode: SQLite adds it in place (a batch rebuild
would drop the old table and cascade to the runs' params, tags and metrics; foreign_keys is on).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 16:40:02.518203
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "runs",
        sa.Column("deleted_with_experiment", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    runs = sa.table(
        "runs",
        sa.column("experiment_id", sa.BigInteger()),
        sa.column("lifecycle_stage", sa.String()),
        sa.column("deleted_time", sa.BigInteger()),
        sa.column("deleted_with_experiment", sa.Boolean()),
    )
    experiments = sa.table(
        "experiments",
        sa.column("experiment_id", sa.BigInteger()),
        sa.column("lifecycle_stage", sa.String()),
        sa.column("last_update_time", sa.BigInteger()),
    )
    deleted_with_it = (
        sa.select(experiments.c.experiment_id)
        .where(
            experiments.c.experiment_id == runs.c.experiment_id,
            experiments.c.lifecycle_stage == "deleted",
            experiments.c.last_update_time == runs.c.deleted_time,
        )
        .exists()
    )
    op.execute(
        runs.update()
        .where(runs.c.lifecycle_stage == "deleted", deleted_with_it)
        .values(deleted_with_experiment=True)
    )


def downgrade() -> None:
    op.drop_column("runs", "deleted_with_experiment")  # SQLite >= 3.35 drops a column in place
