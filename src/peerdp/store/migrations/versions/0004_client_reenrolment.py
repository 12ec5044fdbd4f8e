"""a client's re-enrolment, allowed by an administrator

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("reenrol_allowed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("clients") as batch:
        batch.alter_column("reenrol_allowed", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("reenrol_allowed")
