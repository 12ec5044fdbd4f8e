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
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="Program name.")]
CommandLine = Annotated[str, typer.Option("--command-line", help="What the client runs.")]
Timeout = Annotated[
    int | None,
    typer.Option("--timeout", metavar="SECONDS", min=1, help="Stop the program after this long."),
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
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a program to a package (default timeout: one hour)."""
    body = drop_unset(name=name, command_line=command_line, timeout_s=timeout)
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
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a program's command line or timeout."""
    changes = drop_unset(command_line=command_line, timeout_s=timeout)
    change_item(site, json_out, _path(package_id, name), changes, keep=())


@app.command("delete")
def delete(
    package_id: PackageId, name: Name, site: SiteOption = None, json_out: JsonOption = False
) -> None:
    """Delete a program (refused while an advertisement uses it)."""
    what = f"program {name!r} of package {package_id}"
    delete_item(site, json_out, _path(package_id, name), what)
