"""how clients fetch policy: held long-polls, or polling at an interval

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column(
                "policy_polling", sa.String(length=16), nullable=False, server_default="long_poll"
            )
        )
        batch.add_column(sa.Column("policy_poll_interval_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("policy_poll_randomise_s", sa.Integer(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_sites_policy_polling"), "policy_polling IN ('long_poll', 'interval')"
        )
    with op.batch_alter_table("sites") as batch:
        batch.alter_column("policy_polling", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_constraint(op.f("ck_sites_policy_polling"), type_="check")
        batch.drop_column("policy_poll_randomise_s")
        batch.drop_column("policy_poll_interval_s")
        batch.drop_column("policy_polling")
