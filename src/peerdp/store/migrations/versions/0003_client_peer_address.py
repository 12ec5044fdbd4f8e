"""the address a client's requests come from, next to the addresses it reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 10:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("peer_address", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("peer_address")
