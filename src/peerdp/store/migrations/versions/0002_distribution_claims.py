"""distribution claims on DP-list rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("package_distribution_points") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(
            batch.f("ix_package_distribution_points_deadline_at"), ["deadline_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("package_distribution_points") as batch:
        batch.drop_index(batch.f("ix_package_distribution_points_deadline_at"))
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
