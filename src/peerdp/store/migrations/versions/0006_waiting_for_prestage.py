"""a branch DP waiting for a prestage archive: the DP-list state waiting_for_prestage

On-demand distribution now needs automatic download (as in SCCM): a package that had both
`on_demand` and no automatic download, which never worked (the branch DP added on demand
never pulled, its row failed at its deadline and was added again), downloads automatically
from now on, as its on-demand setting always required.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SEVEN = (
    "installed",
    "install_pending",
    "install_retrying",
    "install_failed",
    "removal_pending",
    "removal_retrying",
    "removal_failed",
)


def _one_of(values: tuple[str, ...]) -> str:
    return f"state IN ({', '.join(repr(v) for v in values)})"


def _state_check(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("package_distribution_points", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_package_distribution_points_state"), type_="check")
        batch.create_check_constraint(op.f("ck_package_distribution_points_state"), _one_of(values))


def upgrade() -> None:
    _state_check((*_SEVEN, "waiting_for_prestage"))
    packages = sa.table(
        "packages",
        sa.column("on_demand", sa.Boolean()),
        sa.column("auto_download_branch", sa.Boolean()),
    )
    op.execute(
        packages.update()
        .where(packages.c.on_demand == sa.true(), packages.c.auto_download_branch == sa.false())
        .values(auto_download_branch=True)
    )


def downgrade() -> None:
    # Rows waiting for a prestage go back to what they were before this state: pending.
    op.execute(
        "UPDATE package_distribution_points SET state = 'install_pending' "
        "WHERE state = 'waiting_for_prestage'"
    )
    _state_check(_SEVEN)
