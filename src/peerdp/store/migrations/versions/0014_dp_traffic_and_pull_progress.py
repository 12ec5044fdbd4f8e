"""dashboard: bytes each DP moved per UTC day, a branch DP's pull in progress on its package
row, and the newest status messages of a severity found by index

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 22:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

PULL_COLUMNS = ("pull_done_bytes", "pull_total_bytes", "pull_bytes_per_s")


def upgrade() -> None:
    op.create_table(
        "dp_traffic_days",
        sa.Column("dp_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pulled_bytes", sa.BigInteger(), nullable=False),
        sa.Column("served_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dp_id"],
            ["distribution_points.id"],
            name=op.f("fk_dp_traffic_days_dp_id_distribution_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dp_id", "day", name=op.f("pk_dp_traffic_days")),
    )
    op.create_index("ix_dp_traffic_days_day", "dp_traffic_days", ["day"], unique=False)
    with op.batch_alter_table("package_distribution_points") as batch:
        for name in PULL_COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("pull_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_package_distribution_points_pull_at", ["pull_at"], unique=False)
    op.create_index(
        "ix_status_messages_severity_at", "status_messages", ["severity", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_status_messages_severity_at", table_name="status_messages")
    with op.batch_alter_table("package_distribution_points") as batch:
        batch.drop_index("ix_package_distribution_points_pull_at")
        batch.drop_column("pull_at")
        for name in reversed(PULL_COLUMNS):
            batch.drop_column(name)
    op.drop_index("ix_dp_traffic_days_day", table_name="dp_traffic_days")
    op.drop_table("dp_traffic_days")
