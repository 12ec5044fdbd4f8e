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
    # Plain ADD COLUMNs: a batch would recreate `sites`, which SQLite refuses while
    # distribution points refer to its row (foreign keys are on).
    op.add_column(
        "sites",
        sa.Column(
            "policy_polling", sa.String(length=16), nullable=False, server_default="long_poll"
        ),
    )
    op.add_column("sites", sa.Column("policy_poll_interval_s", sa.Integer(), nullable=True))
    op.add_column("sites", sa.Column("policy_poll_randomise_s", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":  # SQLite adds no CHECK to an existing table
        op.create_check_constraint(
            op.f("ck_sites_policy_polling"), "sites", "policy_polling IN ('long_poll', 'interval')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_sites_policy_polling"), "sites", type_="check")
    op.drop_column("sites", "policy_poll_randomise_s")
    op.drop_column("sites", "policy_poll_interval_s")
    op.drop_column("sites", "policy_polling")
