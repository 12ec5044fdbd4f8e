"""The `peerdp` command: servers, agents and admin commands mirroring the API."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from peerdp.cli import admin, agents_cmd, demo_cmd, dp_cmd, explain_cmd, simulate_cmd, site_cmd

app = typer.Typer(
    name="peerdp",
    help="peerdp: software distribution with on-demand branch distribution points.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(site_cmd.app, name="site")
admin.register(app)
dp_cmd.register()
agents_cmd.register(app)
app.command(name="explain")(explain_cmd.explain)
app.command(name="demo")(demo_cmd.demo)
app.command(name="simulate")(simulate_cmd.simulate)


@app.callback()
def main(
    ca_file: Path | None = typer.Option(
        None,
        "--ca-file",
        envvar="PEERDP_CA_FILE",
        help="CA certificates (PEM) to check HTTPS servers' certificates with "
        "(default: the system's); the same as PEERDP_CA_FILE.",
    ),
) -> None:
    """peerdp: software distribution with on-demand branch distribution points."""
    if ca_file is not None:
        # Every command reads it from there (the admin commands, and agents' --ca-file).
        os.environ["PEERDP_CA_FILE"] = str(ca_file)
