"""a DP-list row whose last attempt failed only because its DP could not be reached

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("package_distribution_points") as batch:
        batch.add_column(
            sa.Column("dp_unreachable", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("package_distribution_points") as batch:
        batch.alter_column("dp_unreachable", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("package_distribution_points") as batch:
        batch.drop_column("dp_unreachable")
