"""The admin commands' connection to a site, and their one way to fail.

The site URL comes from `--site` or PEERDP_SITE_URL, the admin token from
PEERDP_ADMIN_TOKEN, the CA file an HTTPS site's certificate is checked with from
PEERDP_CA_FILE (or `peerdp --ca-file`; default: the system's CAs). Every failure (an
error answer, a refused connection, a timeout, a folder that cannot be sent) becomes one
line on stderr and exit code 1: never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from peerdp.admin_client import (
    CA_FILE_ENV,
    SITE_ENV,
    TOKEN_ENV,
    AdminClient,
    AdminError,
    site_url,
)

DEFAULT_SITE_URL = "http://127.0.0.1:8080"

SiteOption = Annotated[
    str | None,
    typer.Option(
        "--site",
        envvar=SITE_ENV,
        metavar="URL",
        show_default=False,
        help=f"Site server URL (default: ${SITE_ENV}, else {DEFAULT_SITE_URL}).",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the API's JSON answer instead of a table (for scripts)."),
]


def fail(message: str) -> NoReturn:
    """Print `message` as one line on stderr and exit with code 1."""
    typer.echo(f"Error: {' '.join(message.split())}", err=True)
    raise typer.Exit(1)


@contextmanager
def admin_errors_reported() -> Iterator[None]:
    """An `AdminError` raised inside becomes the CLI's one-line failure."""
    try:
        yield
    except AdminError as exc:
        fail(exc.message)


def admin_token() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        fail(
            f"no admin token: set {TOKEN_ENV} to the site's admin token "
            "(the site server prints where it keeps it when it starts)"
        )
    return token


def ca_file() -> Path | None:
    value = os.environ.get(CA_FILE_ENV, "").strip()
    return Path(value) if value else None


@contextmanager
def connect(site: str | None) -> Iterator[AdminClient]:
    """A client for the site named by `--site`/PEERDP_SITE_URL and PEERDP_ADMIN_TOKEN;
    any `AdminError` inside the block ends the command with its one-line failure."""
    with admin_errors_reported():
        url = site_url(site or DEFAULT_SITE_URL)
        with AdminClient(url, admin_token(), ca_file=ca_file()) as client:
            yield client
