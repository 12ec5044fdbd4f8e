"""the console's clients: one client's deployment states, and clients found by the start
of their name in any case, each by index

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deployment_states_client", "deployment_states", ["client_name"], unique=False
    )
    op.create_index(
        "ix_clients_name_folded",
        "clients",
        [sa.text("lower(name)")],
        unique=False,
        postgresql_ops={"lower(name)": "text_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_clients_name_folded", table_name="clients")
    op.drop_index("ix_deployment_states_client", table_name="deployment_states")
