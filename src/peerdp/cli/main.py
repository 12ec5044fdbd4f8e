"""The `peerdp` command: servers, agents and admin commands mirroring the API."""

from __future__ import annotations

import typer

from peerdp.cli import admin, agents_cmd, demo_cmd, dp_cmd, explain_cmd, site_cmd

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
