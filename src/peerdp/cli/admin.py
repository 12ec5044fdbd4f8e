"""Admin commands mirroring the API (filled in per resource)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the admin command groups to `app`."""
