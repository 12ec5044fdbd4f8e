"""Admin commands mirroring the API: one command group per resource."""

from __future__ import annotations

import typer

from peerdp.cli import agents_cmd
from peerdp.cli.commands import (
    admin_account,
    advertisement,
    audit,
    boundary,
    collection,
    dp,
    machines,
    package,
    program,
    status,
    token,
)

GROUPS: tuple[tuple[str, typer.Typer], ...] = (
    ("boundary", boundary.app),
    ("dp", dp.app),
    ("package", package.app),
    ("program", program.app),
    ("collection", collection.app),
    ("advertisement", advertisement.app),
    ("token", token.app),
    ("on-demand", machines.on_demand),
    ("status", status.app),
    ("admin", admin_account.app),
)


def register(app: typer.Typer) -> None:
    """Add the admin command groups to `app`."""
    for name, group in GROUPS:
        app.add_typer(group, name=name)
    app.command(name="audit")(audit.audit)
    # `peerdp client` is shared with the agent's `client run` (agents_cmd.register adds the
    # group): the admin's list/show/delete join it there rather than replace it.
    machines.add_client_commands(agents_cmd.client_app)
