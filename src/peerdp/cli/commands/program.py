"""`peerdp program`: the command lines that install a package."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from peerdp.cli.connection import JsonOption, SiteOption
from peerdp.cli.output import Column, print_record, say
from peerdp.cli.resources import (
    PACKAGE,
    PackageId,
    Ref,
    change_item,
    create_item,
    delete_item,
    drop_unset,
    list_rows,
    show_item,
)

COLUMNS = (
    Column("Name", "name"),
    Column("Command line", "command_line"),
    Column("Timeout (s)", "timeout_s", justify="right"),
    Column("Also success", lambda row: ", ".join(map(str, row.get("success_exit_codes") or []))),
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="Program name.")]
CommandLine = Annotated[str, typer.Option("--command-line", help="What the client runs.")]
Timeout = Annotated[
    int | None,
    typer.Option("--timeout", metavar="SECONDS", min=1, help="Stop the program after this long."),
]

SuccessCode = Annotated[
    list[int] | None,
    typer.Option(
        "--success-code",
        metavar="CODE",
        help="An exit code that also means success (repeat for several); 0, 3010 and 1641 "
        "always do (3010 and 1641: restart required).",
    ),
]

app = typer.Typer(help="Programs: a package's install command lines.", no_args_is_help=True)


def _path(package_id: str, *name: str) -> Ref:
    return PACKAGE.item(package_id, "programs", *name)


def _render_created(row: Any) -> None:
    say(f"Added program {row['name']!r} to package {row['package_id']}.", "green")
    print_record(row)


@app.command("add")
def add(
    package_id: PackageId,
    name: Name,
    command_line: CommandLine,
    timeout: Timeout = None,
    success_code: SuccessCode = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a program to a package (default timeout: one hour).

    Exit code 0 is success, 3010 and 1641 success with a restart required; any other
    code fails the run unless given with --success-code. A failed run is retried by the
    client agent a few times, then reported failed (see `peerdp advertisement rerun`).
    """
    body = drop_unset(
        name=name, command_line=command_line, timeout_s=timeout, success_exit_codes=success_code
    )
    create_item(site, json_out, _path(package_id), body, _render_created)


@app.command("list")
def list_(package_id: PackageId, site: SiteOption = None, json_out: JsonOption = False) -> None:
    """List a package's programs."""
    list_rows(site, json_out, _path(package_id), COLUMNS, empty="The package has no programs.")


@app.command("show")
def show(
    package_id: PackageId, name: Name, site: SiteOption = None, json_out: JsonOption = False
) -> None:
    """Show one program."""
    show_item(site, json_out, _path(package_id, name))


@app.command("set")
def set_(
    package_id: PackageId,
    name: Name,
    command_line: Annotated[
        str | None, typer.Option("--command-line", help="New command line.")
    ] = None,
    timeout: Timeout = None,
    success_code: SuccessCode = None,
    no_success_codes: Annotated[
        bool, typer.Option("--no-success-codes", help="Only 0, 3010 and 1641 mean success.")
    ] = False,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a program's command line, timeout or extra success exit codes.

    --success-code replaces the program's list of extra success codes.
    """
    codes = [] if no_success_codes else success_code
    changes = drop_unset(command_line=command_line, timeout_s=timeout, success_exit_codes=codes)
    change_item(site, json_out, _path(package_id, name), changes, keep=())


@app.command("delete")
def delete(
    package_id: PackageId, name: Name, site: SiteOption = None, json_out: JsonOption = False
) -> None:
    """Delete a program (refused while an advertisement uses it)."""
    what = f"program {name!r} of package {package_id}"
    delete_item(site, json_out, _path(package_id, name), what)
