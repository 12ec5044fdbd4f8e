"""`peerdp advertisement status` and `peerdp package status`: how a deployment went on its
clients, and where a package stands on its DPs (the API's status summaries)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from peerdp.cli.connection import JsonOption, SiteOption, connect
from peerdp.cli.output import Column, console, emit, print_table, say, size, state, when
from peerdp.cli.resources import ADVERTISEMENT, PACKAGE, IdArgument, PackageId
from peerdp.domain.deployment_states import DEPLOYMENT_STATES, DeploymentState

CLIENT_COLUMNS = (
    Column("Client", "client_name", no_wrap=True),
    Column("State", "state", state, no_wrap=True),
    Column("Version", "source_version", justify="right"),
    Column("Exit code", "exit_code", justify="right"),
    Column("Restart", lambda r: "yes" if r.get("restart_required") else ""),
    Column("Source DP", "source_dp_name"),
    Column("Boundary", "boundary_name"),
    Column("At", "at", when, no_wrap=True),
    Column("Reason", "reason"),
)
DP_COLUMNS = (
    Column("DP", lambda row: f"{row.get('dp_name')} ({row.get('dp_id')})"),
    Column("Kind", "dp_kind"),
    Column("State", "state", state, no_wrap=True),
    Column("Version", "source_version", justify="right"),
    Column("Origin", "origin"),
    Column("Attempts", "attempts", justify="right"),
    Column("Pulled (WAN)", "pulled_bytes", size, justify="right", no_wrap=True),
    Column("Served", "served_bytes", size, justify="right", no_wrap=True),
    Column("Updated", "updated_at", when, no_wrap=True),
    Column("Detail", "detail"),
)
ON_DEMAND_COLUMNS = (
    Column("ID", "id", justify="right"),
    Column("DP", "dp_id", justify="right"),
    Column("Version", "source_version", justify="right"),
    Column("State", "state", state),
    Column("Client", "client_name"),
    Column("Created", "created_at", when, no_wrap=True),
    Column("Provisioned", "provisioned_at", when, no_wrap=True),
)


def advertisement_status(
    ident: IdArgument,
    only_state: Annotated[
        DeploymentState | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="Only the clients in this state: " + ", ".join(DEPLOYMENT_STATES) + ".",
        ),
    ] = None,
    client: Annotated[
        str | None,
        typer.Option("--client", metavar="PREFIX", help="Only clients whose name starts so."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="Client rows to show.")
    ] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Client rows to skip.")] = 0,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """How an advertisement went: its clients per state, per boundary, and one by one.

    The states: policy_received, waiting_for_content (with the MP's reason), downloading,
    running, succeeded (exit code, restart), failed (exit code or reason) and not_run (a
    slow boundary where the advertisement does not run). Each client counts once, in the
    latest state it reported.
    """
    with connect(site) as api:
        advertisement_id = ADVERTISEMENT.resolve(api, ident)
        answer = api.advertisement_status(
            advertisement_id, state=only_state, client=client, limit=limit, offset=offset
        )
    emit(answer, json_out, _render_advertisement)


def _render_advertisement(answer: dict[str, Any]) -> None:
    say(
        f"Advertisement {answer['advertisement_id']} ({answer['advertisement_name']}): "
        f"package {answer['package_id']} v{answer['source_version']}, "
        f"{answer['total']} client(s) reported",
        "bold",
    )
    if answer["behind"]:
        say(f"{answer['behind']} of them last reported about an older source version.", "yellow")
    states = list(answer["counts"])
    counts_row = {"boundary": "all clients", "total": answer["total"], **answer["counts"]}
    boundary_rows = [
        {"boundary": b["boundary_name"] or "(no boundary)", "total": b["total"], **b["counts"]}
        for b in answer["boundaries"]
    ]
    columns = [Column("Boundary", "boundary"), Column("Total", "total", justify="right")]
    columns += [Column(name, name, justify="right") for name in states]
    print_table([counts_row, *boundary_rows], columns, empty="")
    console().print()
    rows = answer["clients"]
    print_table(rows, CLIENT_COLUMNS, empty="No client matches.")
    if rows:
        first = answer["offset"] + 1
        say(
            f"Clients {first}-{answer['offset'] + len(rows)} of {answer['matched']}"
            + (" (--offset for more)" if answer["offset"] + len(rows) < answer["matched"] else ""),
            "dim",
        )


def package_status(
    package_id: PackageId, site: SiteOption = None, json_out: JsonOption = False
) -> None:
    """Where a package stands on its DPs: installed on N of M, states, bytes, on-demand.

    Each DP's state and source version, the bytes of the package it pulled over the WAN
    (a branch DP's pulls) and served (as clients and branch DPs reported them), and the
    package's on-demand requests."""
    with connect(site) as api:
        resolved = PACKAGE.resolve(api, package_id)
        answer = api.package_status(resolved)
    emit(answer, json_out, _render_package)


def _render_package(answer: dict[str, Any]) -> None:
    say(
        f"Package {answer['package_id']} ({answer['name']}), source version "
        f"{answer['source_version']}: installed on {answer['installed']} of "
        f"{answer['dps_total']} DP(s)",
        "bold",
    )
    counts = ", ".join(f"{n} {s}" for s, n in answer["counts"].items() if n)
    if counts:
        say(counts)
    console().print()
    print_table(answer["distribution_points"], DP_COLUMNS, empty="The package is on no DP.")
    if answer["on_demand"]:
        console().print()
        say("On-demand requests:", "bold")
        print_table(answer["on_demand"], ON_DEMAND_COLUMNS, empty="")
