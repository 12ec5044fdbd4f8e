"""deployment states found by client: the console's client page lists one client's rows

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-04 22:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deployment_states_client", "deployment_states", ["client_name"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_deployment_states_client", table_name="deployment_states")
