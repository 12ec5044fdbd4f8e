"""`peerdp dp`: standard and branch distribution points."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from peerdp.cli.connection import JsonOption, SiteOption
from peerdp.cli.output import Column, plain, when, yes_no
from peerdp.cli.resources import (
    BOUNDARY,
    IdArgument,
    Resource,
    add_list_show_delete,
    change_item,
    create_item,
    drop_unset,
)

DPS = Resource(
    "distribution point",
    "distribution points",
    "/distribution-points",
    (
        Column("ID", "id", justify="right"),
        Column("Name", "name"),
        Column("Kind", "kind"),
        Column("BITS", "bits_enabled", yes_no),
        Column("Protects", "protected_boundary_ids", plain),
        Column("URL", "url"),
        Column("AD site", "ad_site"),
        Column("Last contact", "last_seen", when, no_wrap=True),
    ),
)

Bits = Annotated[
    bool | None,
    typer.Option("--bits/--no-bits", help="Serve BITS-style resumable range downloads."),
]
Protect = Annotated[
    list[str] | None,
    typer.Option(
        "--protect",
        metavar="BOUNDARY",
        help="A boundary (ID or name) this DP protects (repeat for several): only clients "
        "inside its protected boundaries may use a protected DP.",
    ),
]
Url = Annotated[str | None, typer.Option("--url", help="Base URL of the DP's content server.")]
Addresses = Annotated[
    list[str] | None,
    typer.Option("--ip-address", metavar="ADDRESS", help="The DP's IP address (repeatable)."),
]
AdSite = Annotated[str | None, typer.Option("--ad-site", help="The DP's AD site.")]
MaxTransfers = Annotated[
    int | None,
    typer.Option(
        "--max-transfers",
        metavar="N",
        min=1,
        help="Transfers served at once (sent to the DP in its policy; its own "
        "--max-transfers overrides it).",
    ),
]

app = typer.Typer(help="Distribution points: standard and branch DPs.", no_args_is_help=True)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the DP (usually its host name).")],
    kind: Annotated[Literal["standard", "branch"], typer.Option("--kind", help="DP kind.")],
    bits: Bits = None,
    protect: Protect = None,
    url: Url = None,
    ip_address: Addresses = None,
    ad_site: AdSite = None,
    max_transfers: MaxTransfers = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a distribution point (BITS-enabled unless --no-bits)."""
    body = drop_unset(
        name=name,
        kind=kind,
        bits_enabled=bits,
        protected_boundary_ids=BOUNDARY.ids_of(protect) if protect else protect,
        url=url,
        ip_addresses=ip_address,
        ad_site=ad_site,
        max_transfers=max_transfers,
    )
    create_item(site, json_out, DPS.path, body, DPS.render_created)


@app.command("set")
def set_(
    ident: IdArgument,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    bits: Bits = None,
    protect: Protect = None,
    unprotect: Annotated[
        bool, typer.Option("--unprotect", help="Protect no boundary any more.")
    ] = False,
    url: Url = None,
    ip_address: Addresses = None,
    ad_site: AdSite = None,
    max_transfers: MaxTransfers = None,
    no_max_transfers: Annotated[
        bool,
        typer.Option(
            "--no-max-transfers",
            help="Drop the site's transfer limit: the DP's own --max-transfers applies, "
            "else its kind's default (branch 10, standard none).",
        ),
    ] = False,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a distribution point (only the options given; --protect replaces the list).

    A new --max-transfers reaches the running DP through its policy, without a restart.
    """
    changes = drop_unset(
        name=name,
        bits_enabled=bits,
        protected_boundary_ids=[] if unprotect else BOUNDARY.ids_of(protect) if protect else None,
        url=url,
        ip_addresses=ip_address,
        ad_site=ad_site,
        max_transfers=max_transfers,
    )
    if no_max_transfers:
        changes["max_transfers"] = None
    change_item(site, json_out, DPS.item(ident), changes)


add_list_show_delete(app, DPS)
