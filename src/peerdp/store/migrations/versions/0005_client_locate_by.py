"""how a client is placed in boundaries: by what it reports, or by the address the MP sees

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 13:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("locate_by", sa.String(length=16), nullable=False, server_default="reported")
        )
        batch.create_check_constraint(
            op.f("ck_clients_locate_by"), "locate_by IN ('reported', 'peer')"
        )
    with op.batch_alter_table("clients") as batch:
        batch.alter_column("locate_by", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_constraint(op.f("ck_clients_locate_by"), type_="check")
        batch.drop_column("locate_by")
