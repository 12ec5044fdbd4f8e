"""deployment status: each advertisement's latest state per client, a DP's bytes per package

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STATES = (
    "'policy_received', 'waiting_for_content', 'downloading', 'running', 'succeeded', "
    "'failed', 'not_run'"
)


def upgrade() -> None:
    op.create_table(
        "deployment_states",
        sa.Column("advertisement_id", sa.Integer(), nullable=False),
        sa.Column("client_name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("restart_required", sa.Boolean(), nullable=False),
        sa.Column("source_dp_id", sa.Integer(), nullable=True),
        sa.Column("boundary_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("ck_deployment_states_state")),
        sa.ForeignKeyConstraint(
            ["advertisement_id"],
            ["advertisements.id"],
            name=op.f("fk_deployment_states_advertisement_id_advertisements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "advertisement_id", "client_name", name=op.f("pk_deployment_states")
        ),
    )
    op.create_index(
        "ix_deployment_states_counts",
        "deployment_states",
        ["advertisement_id", "boundary_id", "state", "source_version"],
        unique=False,
    )
    op.create_index(
        "ix_deployment_states_rows",
        "deployment_states",
        ["advertisement_id", "state", "client_name"],
        unique=False,
    )
    with op.batch_alter_table("package_distribution_points") as batch:
        for name in ("pulled_bytes", "served_bytes"):
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("package_distribution_points") as batch:
        for name in ("pulled_bytes", "served_bytes"):
            batch.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("package_distribution_points") as batch:
        batch.drop_column("served_bytes")
        batch.drop_column("pulled_bytes")
    op.drop_index("ix_deployment_states_rows", table_name="deployment_states")
    op.drop_index("ix_deployment_states_counts", table_name="deployment_states")
    op.drop_table("deployment_states")
