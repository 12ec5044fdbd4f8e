"""status message filters: indexes for the console's viewer (component, severity, by id)

A page of the newest messages of a severity, a component, or both, reads one of these
indexes backwards and stops after a page, instead of scanning the log for rare matches
(bench/bench_status_messages.py).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 23:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0016"
# 0014 and 0015 are being written on other branches: re-chained on merge.
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_status_messages_severity_id", "status_messages", ["severity", "id"], unique=False
    )
    op.create_index(
        "ix_status_messages_component_id", "status_messages", ["component", "id"], unique=False
    )
    op.create_index(
        "ix_status_messages_component_severity_id",
        "status_messages",
        ["component", "severity", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_status_messages_component_severity_id", table_name="status_messages")
    op.drop_index("ix_status_messages_component_id", table_name="status_messages")
    op.drop_index("ix_status_messages_severity_id", table_name="status_messages")
