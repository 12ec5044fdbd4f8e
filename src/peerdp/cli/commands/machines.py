"""`peerdp client` and `peerdp on-demand`: registered clients, on-demand requests."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from peerdp.cli.connection import JsonOption, SiteOption, connect
from peerdp.cli.output import Column, emit, say, state, when
from peerdp.cli.resources import (
    DP,
    PACKAGE,
    Resource,
    add_list_show_delete,
    add_show,
    at,
    list_rows,
)
from peerdp.domain.boundaries import PLACED_BY, LocateBy

CLIENTS = Resource(
    "client",
    "clients",
    "/clients",
    (
        Column("ID", "id", justify="right"),
        Column("Name", "name"),
        Column("IP addresses", "ip_addresses"),
        Column("Seen from", "peer_address"),
        Column("AD site", "ad_site"),
        Column("Placed by", "locate_by"),
        Column("Last contact", "last_seen", when, no_wrap=True),
    ),
    name_query=True,
)
ON_DEMAND = Resource(
    "on-demand request",
    "on-demand requests",
    "/on-demand-requests",
    (
        Column("ID", "id", justify="right"),
        Column("Package", "package_id", no_wrap=True),
        Column("Version", "source_version", justify="right"),
        Column("DP", "dp_id", justify="right"),
        Column("Client", "client_name"),
        Column("State", "state", state),
        Column("Requested", "created_at", when, no_wrap=True),
        Column("Provisioned", "provisioned_at", when, no_wrap=True),
    ),
    named=False,
)


def add_client_commands(group: typer.Typer) -> None:
    """`list`, `show ID`, `delete ID`, `set NAME` and `reenrol NAME` of registered clients,
    onto `peerdp client`."""
    add_list_show_delete(group, CLIENTS)
    group.command("set")(set_client)
    group.command("reenrol")(reenrol)


def set_client(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="The client's name (as `peerdp client list` shows) or ID."
        ),
    ],
    locate_by: Annotated[
        LocateBy,
        typer.Option(
            "--locate-by",
            help="What places it in boundaries: the addresses and AD site it reports, or "
            "the address its requests come from as the management point sees it.",
        ),
    ],
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Pin how a client is placed in boundaries (or unpin it with --locate-by reported).

    A client reports its own addresses and AD site, and the site takes them on trust.
    With --locate-by peer only the address its requests come from counts, as SCCM's
    management point does; use it where no NAT or proxy stands between clients and the site.
    """
    with connect(site) as api:
        row = api.patch(at(api, CLIENTS.item(name)), {"locate_by": locate_by})
    emit(
        row,
        json_out,
        lambda r: say(f"{name} is placed in boundaries by {PLACED_BY[r['locate_by']]}."),
    )


def reenrol(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="The client's name (as `peerdp client list` shows) or ID."
        ),
    ],
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Let a rebuilt machine register again under NAME (with a client enrolment token).

    Until then a registration under a name already registered is refused as a conflicting
    record. The registration that uses this permission revokes the old credential.
    """
    with connect(site) as api:
        row = api.post(at(api, CLIENTS.item(name, "reenrol")))
    emit(
        row,
        json_out,
        lambda _: say(f"{name} may register again; its old credential is revoked then."),
    )


on_demand = typer.Typer(
    help="On-demand provisioning requests: branch DPs added for their clients.",
    no_args_is_help=True,
)


@on_demand.command("list")
def list_on_demand(
    package: Annotated[
        str | None, typer.Option("--package", metavar="PACKAGE", help="Only this package.")
    ] = None,
    dp: Annotated[str | None, typer.Option("--dp", metavar="DP", help="Only this DP.")] = None,
    state_: Annotated[
        Literal["delayed", "provisioned"] | None,
        typer.Option("--state", help="Only requests in this state."),
    ] = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """List on-demand requests: delayed ones wait for a BITS-enabled standard DP."""
    params = {
        "package_id": PACKAGE.id_of(package) if package else None,
        "dp_id": DP.id_of(dp) if dp else None,
        "state": state_,
    }
    list_rows(
        site,
        json_out,
        ON_DEMAND.path,
        ON_DEMAND.columns,
        empty="No on-demand requests.",
        params=params,
    )


add_show(on_demand, ON_DEMAND)
