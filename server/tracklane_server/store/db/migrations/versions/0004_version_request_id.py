"""Model versions: the CreateModelVersion idempotency key, unique per model.

Plain ALTERs, not batch mode: SQLite adds the column and the index in place, where a batch rebuild
would drop the old table and so cascade to the versions' tags and aliases (foreign_keys is on).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:32:11.208416
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("request_id", sa.String(length=128), nullable=True))
    op.create_index(
        "ix_model_versions_model_request_id", "model_versions", ["model_id", "request_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_model_versions_model_request_id", table_name="model_versions")
    op.drop_column("model_versions", "request_id")  # SQLite >= 3.35 drops a column in place
