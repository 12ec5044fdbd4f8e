"""a deleted package stays until every DP removed it; a DP's reported transfer limit

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("packages") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("distribution_points") as batch:
        batch.add_column(sa.Column("max_transfers_override", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("distribution_points") as batch:
        batch.drop_column("max_transfers_override")
    with op.batch_alter_table("packages") as batch:
        batch.drop_column("deleted_at")
