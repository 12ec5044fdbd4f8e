"""`peerdp explain`: why a client gets (or does not get) content from which DPs, now."""

from __future__ import annotations

from typing import Any

import typer

from peerdp.cli.connection import connect
from peerdp.cli.output import console, print_json
from peerdp.cli.resources import ADVERTISEMENT


def explain(
    client: str = typer.Option(..., "--client", help="The client's machine name."),
    advertisement: str = typer.Option(
        ..., "--advertisement", metavar="ADVERTISEMENT", help="The advertisement's ID or name."
    ),
    ip_address: list[str] | None = typer.Option(
        None, "--ip-address", help="Explain for these addresses instead of the registered ones."
    ),
    ad_site: str | None = typer.Option(None, "--ad-site", help="Explain for this AD site."),
    site: str | None = typer.Option(None, "--site", envvar="PEERDP_SITE_URL", help="Site URL."),
    json_out: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
) -> None:
    """Print the content-location rule's trace for a client and an advertisement.

    Shows the client's boundaries, each DP considered and why it was kept or dropped,
    the order, and whether on-demand provisioning would fire and, if not, why not.
    Nothing is changed.
    """
    with connect(site) as api:
        params: dict[str, Any] = {
            "client": client,
            "advertisement_id": ADVERTISEMENT.id_of(advertisement)(api),
            "ip_address": ip_address or None,
            "ad_site": ad_site,
        }
        answer = api.get("/explain", params=params)
    if json_out:
        print_json(answer)
        return
    out = console()
    out.print(
        f"[bold]{answer['client']}[/] · advertisement {answer['advertisement_id']} · "
        f"package {answer['package_id']} v{answer['source_version']}"
    )
    out.print(_addresses_line(answer), highlight=False, markup=False)
    for line in answer["trace"]:
        out.print(f"  {line}", highlight=False, markup=False)
    out.print(f"[bold]Answer:[/] {answer['summary']}")


def _addresses_line(answer: dict[str, Any]) -> str:
    """The addresses explained, what the client reported, and where its requests come from."""
    explained = ", ".join(answer["ip_addresses"]) or "none"
    reported = answer.get("reported_ip_addresses") or []
    peer = answer.get("peer_address")
    said = ", ".join(reported) or "none"
    line = f"  addresses: {explained}"
    if answer.get("located_by") == "peer":
        return line + f" (pinned to where its requests come from; it reported {said})"
    if reported != answer["ip_addresses"]:
        line += f" (it reported {said})"
    if peer is None:
        return line + "; no request from it seen yet"
    line += f"; its last request came from {peer}"
    if peer not in reported:
        line += " (not a reported address: a NAT or proxy, or it reports addresses not its own)"
    return line
