"""`peerdp package dp`: a package's distribution-point list and its states."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from peerdp.admin_client import AdminClient
from peerdp.cli.connection import JsonOption, SiteOption, connect
from peerdp.cli.output import Column, emit, print_record, say, state, when
from peerdp.cli.resources import (
    DP,
    PACKAGE,
    PackageId,
    Where,
    at,
    create_item,
    delete_item,
    list_rows,
)

COLUMNS = (
    Column("DP", lambda row: f"{row.get('dp_name')} ({row.get('dp_id')})"),
    Column("State", "state", state, no_wrap=True),
    Column("Version", "source_version", justify="right"),
    Column("Origin", "origin"),
    Column("Updated", "updated_at", when, no_wrap=True),
    Column("Detail", "detail"),
)

DpId = Annotated[str, typer.Argument(metavar="DP", help="Distribution point ID or name.")]

app = typer.Typer(
    help="A package's distribution points: add, remove, and their states.", no_args_is_help=True
)


def _path(package_id: str, dp: str | None = None, *rest: str) -> Where:
    """The package's DP list, or its row for `dp` (names resolved once connected)."""
    if dp is None:
        return PACKAGE.item(package_id, "distribution-points")

    def row(api: AdminClient) -> str:
        return at(api, PACKAGE.item(package_id, "distribution-points", DP.resolve(api, dp), *rest))

    return row


def _render_row(row: Any) -> None:
    say(f"Package {row['package_id']} on DP {row['dp_name']} ({row['dp_id']}):")
    print_record(row, COLUMNS[1:])


@app.command("list")
def list_(package_id: PackageId, site: SiteOption = None, json_out: JsonOption = False) -> None:
    """List the package's DPs: state, source version, how each was added."""
    list_rows(site, json_out, _path(package_id), COLUMNS, empty="The package is on no DP.")


@app.command("add")
def add(
    package_id: PackageId, dp_id: DpId, site: SiteOption = None, json_out: JsonOption = False
) -> None:
    """Put the package on a DP (install_pending until the DP has it)."""
    create_item(site, json_out, _path(package_id), {"dp_id": DP.id_of(dp_id)}, _render_row)


@app.command("remove")
def remove(
    package_id: PackageId, dp_id: DpId, site: SiteOption = None, json_out: JsonOption = False
) -> None:
    """Remove the package from a DP (removal_pending until the DP deleted it)."""
    path = _path(package_id, dp_id)
    delete_item(site, json_out, path, f"package {package_id} from DP {dp_id}", _render_row)


@app.command("refresh")
def refresh(
    package_id: PackageId, dp_id: DpId, site: SiteOption = None, json_out: JsonOption = False
) -> None:
    """Send the same source version to the DP again (it lost or damaged files)."""
    with connect(site) as api:
        row = api.post(at(api, _path(package_id, dp_id, "refresh")))
    emit(row, json_out, _render_row)
