"""programs' own success exit codes, advertisement reruns, a client's attempt in its status

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("programs") as batch:
        batch.add_column(
            sa.Column("success_exit_codes", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("programs") as batch:
        batch.alter_column("success_exit_codes", server_default=None)
    op.create_table(
        "advertisement_reruns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("advertisement_id", sa.Integer(), nullable=False),
        sa.Column("client_name", sa.String(length=200), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["advertisement_id"],
            ["advertisements.id"],
            name=op.f("fk_advertisement_reruns_advertisement_id_advertisements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advertisement_reruns")),
    )
    op.create_index(
        op.f("ix_advertisement_reruns_advertisement_id"),
        "advertisement_reruns",
        ["advertisement_id"],
        unique=False,
    )
    with op.batch_alter_table("status_messages") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("status_messages") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempt")
    op.drop_index(
        op.f("ix_advertisement_reruns_advertisement_id"), table_name="advertisement_reruns"
    )
    op.drop_table("advertisement_reruns")
    with op.batch_alter_table("programs") as batch:
        batch.drop_column("success_exit_codes")
