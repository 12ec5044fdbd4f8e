"""`peerdp advertisement`: a package's program offered to a collection."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from peerdp.cli.commands import deployment
from peerdp.cli.connection import JsonOption, SiteOption, fail
from peerdp.cli.output import Column, say, when, yes_no
from peerdp.cli.resources import (
    COLLECTION,
    PACKAGE,
    IdArgument,
    Resource,
    add_list_show_delete,
    change_item,
    create_item,
    drop_unset,
)
from peerdp.cli.timespec import api_time

ADVERTISEMENTS = Resource(
    "advertisement",
    "advertisements",
    "/advertisements",
    (
        Column("ID", "id", justify="right"),
        Column("Name", "name"),
        Column("Package", "package_id", no_wrap=True),
        Column("Program", "program_name"),
        Column("Collection", "collection_id", justify="right"),
        Column("Available", "available_at", when, no_wrap=True),
        Column("Mandatory", "mandatory_at", when, no_wrap=True),
        Column("Protected only", "protected_only", yes_no),
        Column("On slow", "on_slow"),
        Column("Remote", "allow_remote", yes_no),
    ),
)

TIME_HELP = "now, a time from now (2h: in two hours; 1d) or a local time (2024-05-01T08:00)."
AvailableAt = Annotated[
    str | None,
    typer.Option("--available-at", metavar="WHEN", help=f"Offered from: {TIME_HELP}"),
]
MandatoryAt = Annotated[
    str | None,
    typer.Option("--mandatory-at", metavar="WHEN", help=f"Runs by itself at: {TIME_HELP}"),
]
OnSlow = Annotated[
    Literal["do_not_run", "download"] | None,
    typer.Option(
        "--on-slow",
        metavar="ACTION",
        help="On a slow boundary: do_not_run, or download (and run).",
    ),
]
PROTECTED_ONLY_HELP = (
    "If the client is in the boundaries of one or more protected distribution points, "
    "allow the client to access the content only from the protected distribution points."
)
REMOTE_HELP = "Allow a remote DP when no local DP has the content."

app = typer.Typer(
    help="Advertisements: a package's program offered to a collection.", no_args_is_help=True
)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Advertisement name.")],
    package: Annotated[
        str, typer.Option("--package", metavar="PACKAGE", help="Package ID or name.")
    ],
    program: Annotated[str, typer.Option("--program", metavar="NAME", help="Program name.")],
    collection: Annotated[
        str, typer.Option("--collection", metavar="COLLECTION", help="Collection ID or name.")
    ],
    available_at: AvailableAt = None,
    mandatory_at: MandatoryAt = None,
    protected_only: Annotated[
        bool, typer.Option("--protected-only", help=PROTECTED_ONLY_HELP)
    ] = False,
    on_slow: OnSlow = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help=REMOTE_HELP)] = False,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Advertise a package's program to a collection (available now unless --available-at)."""
    body = drop_unset(
        name=name,
        package_id=PACKAGE.id_of(package),
        program_name=program,
        collection_id=COLLECTION.id_of(collection),
        available_at=api_time(available_at),
        mandatory_at=api_time(mandatory_at),
        protected_only=protected_only,
        on_slow=on_slow,
        allow_remote=allow_remote,
    )
    create_item(site, json_out, ADVERTISEMENTS.path, body, ADVERTISEMENTS.render_created)


@app.command("set")
def set_(
    ident: IdArgument,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    program: Annotated[
        str | None, typer.Option("--program", metavar="NAME", help="Another program.")
    ] = None,
    available_at: AvailableAt = None,
    mandatory_at: MandatoryAt = None,
    not_mandatory: Annotated[
        bool, typer.Option("--not-mandatory", help="Remove the mandatory time.")
    ] = False,
    protected_only: Annotated[
        bool | None,
        typer.Option("--protected-only/--not-protected-only", help=PROTECTED_ONLY_HELP),
    ] = None,
    on_slow: OnSlow = None,
    allow_remote: Annotated[
        bool | None, typer.Option("--allow-remote/--no-remote", help=REMOTE_HELP)
    ] = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change an advertisement (only the options given)."""
    changes = drop_unset(
        name=name,
        program_name=program,
        available_at=api_time(available_at),
        mandatory_at=api_time(mandatory_at),
        protected_only=protected_only,
        on_slow=on_slow,
        allow_remote=allow_remote,
    )
    if not_mandatory:
        changes["mandatory_at"] = None
    keep = ("name", "program_name")
    change_item(site, json_out, ADVERTISEMENTS.item(ident), changes, keep=keep)


@app.command("rerun")
def rerun(
    ident: IdArgument,
    client: Annotated[
        str | None,
        typer.Option("--client", metavar="NAME", help="Only this client (default: every one)."),
    ] = None,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed", help="Only the clients it failed on (one rerun each; not with --client)."
        ),
    ] = False,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run an advertisement again: on one client, on the clients it failed on, or on every
    client of its collection.

    The clients learn of it through their policy and run the program again from its first
    attempt, whether it succeeded or failed after its last retry. The status message
    `advertisement_rerun` records it. With --failed and no client failed, nothing is rerun
    and the command fails.
    """
    if failed and client is not None:
        fail("give --client or --failed, not both")

    def render(row: Any) -> None:
        if row.get("failed_clients") is not None:
            who = f"the {row['failed_clients']} client(s) it failed on"
        else:
            who = f"client {row['client_name']}" if row["client_name"] else "every client"
        say(f"Advertisement {row['advertisement_id']} will run again on {who}.", "green")

    body = drop_unset(client_name=client, failed=True if failed else None)
    create_item(site, json_out, ADVERTISEMENTS.item(ident) + "/rerun", body, render)


app.command("status")(deployment.advertisement_status)
add_list_show_delete(app, ADVERTISEMENTS)
