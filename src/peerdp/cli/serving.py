"""What the `serve` and agent commands share: logging, the lines a server announces, and
its bad options.

The roles print nothing themselves: they log through `peerdp.logs` (set up here from
`--log-format`), hand their "listening on ..." lines to the `announce` callback, which
logs them too, and raise ConfigError for settings that cannot work; the commands report
those as a bad option (one line, exit code 2). A site that cannot be reached or refuses
the machine (its enrolment token, its credential, its certificate) is not a bad option:
it is one line `Error: ...` and exit code 1.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from peerdp.cli.connection import fail
from peerdp.config import ConfigError
from peerdp.logs import LOG_FORMAT_ENV, get_logger, setup
from peerdp.machine.mp_client import MPError
from peerdp.security.tls import ServerCertificate, TLSSetupError

LOG_FORMAT = typer.Option(
    None,
    "--log-format",
    envvar=LOG_FORMAT_ENV,
    help="How the log on stderr is written: console (one readable line per event, the "
    "default) or json (one JSON object per line).",
    show_default=False,
)

_log = get_logger("peerdp.serve")


def start_logging(log_format: str | None, role: str, level: int = logging.INFO) -> str:
    """Set up this process's log (`--log-format`); an unknown format is a bad option.
    The format used."""
    with options_checked():
        return setup(log_format, level=level, role=role)


def announce(line: str) -> None:
    """A line a starting server logs on stderr (tests and the demo read its URL there)."""
    _log.info(line)


@contextmanager
def options_checked() -> Iterator[None]:
    """Report a ConfigError raised inside as a bad option of the command, unless it comes
    from failing to talk to the site (an `MPError`): that is one line and exit code 1."""
    try:
        yield
    except ConfigError as exc:
        if isinstance(exc.__cause__, MPError):
            fail(str(exc))
        raise typer.BadParameter(str(exc)) from exc


VALIDATE_INTERVAL_HELP = (
    "How often to hash all held content again (content validation): 10s at least; "
    "damaged content is withdrawn, reported and sent again."
)


def validate_interval_s(text: str) -> float:
    """`--validate-interval` (`24h`, `30m`, `10s`) in seconds; a bad option below the minimum."""
    from peerdp.cli.timespec import parse_duration
    from peerdp.dp.damage import checked_validate_interval

    with options_checked():
        return checked_validate_interval(parse_duration(text).total_seconds())


def server_certificate(cert: Path | None, key: Path | None) -> ServerCertificate | None:
    """`--tls-cert`/`--tls-key` checked to load together (None for plain HTTP)."""
    try:
        return ServerCertificate.of(cert, key)
    except TLSSetupError as exc:
        raise ConfigError(str(exc)) from exc
