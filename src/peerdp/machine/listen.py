"""A serving agent's listening socket and the URL it registered with the site.

A DP registers its URL once (the identity is kept), so it should come back on the
same port: without --port it binds the port of its last run when that is free. The
registered URL is remembered in `<data-dir>/listen.json`; a run that serves elsewhere
tells the site its new URL (`POST /mp/v1/announce`). Every start announces that it is up
(`announce_up`, no URL), so the site retries at once what failed while the DP was down.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from peerdp.logs import get_logger
from peerdp.machine.mp_client import MPClient, MPError
from peerdp.net import bind, url_of

log = get_logger("peerdp.machine")

LISTEN_FILE = "listen.json"


def listen(
    data_dir: Path, host: str, port: int | None, public_url: str | None, *, tls: bool = False
) -> tuple[socket.socket, str]:
    """The bound socket (--port, else last run's port if free, else any) and the public URL
    (https:// when the DP serves TLS)."""
    previous_port = None
    if port is None and (previous := registered_url(data_dir)):
        previous_port = urlsplit(previous).port
    sock = None
    if previous_port:
        try:
            sock = bind(host, previous_port)
        except OSError:
            log.warning("port of the last run is taken; picking another", port=previous_port)
    if sock is None:
        sock = bind(host, port or 0)
    return sock, (public_url or url_of(sock, host, tls=tls)).rstrip("/")


def registered_url(data_dir: Path) -> str | None:
    try:
        return str(json.loads((data_dir / LISTEN_FILE).read_text())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def announce_up(mp: MPClient) -> bool:
    """Tell the site this DP has started (at the URL the site knows; an administrator may
    have set it): what failed only because the site could not reach it is retried at once.
    Whether the site took it (else logged)."""
    try:
        mp.announce(None)
    except MPError as exc:
        log.warning("could not tell the site this DP is up: %s", exc)
        return False
    return True


def keep_url(data_dir: Path, url: str, mp: MPClient, announce: Callable[[str], None]) -> None:
    """Remember the URL this DP serves at; if it moved since it registered, tell the site.

    If the site cannot be told, `announce` gets a warning for the operator.
    """
    previous = registered_url(data_dir)
    if previous is not None and previous != url:
        try:
            mp.announce(url)
        except MPError as exc:
            announce(
                f"warning: this DP registered {previous} but now listens on {url}, and the "
                f"site could not be told ({exc}); it sends clients to the old URL"
            )
            return
        log.info("told the site this DP moved", previous_url=previous, url=url)
    (data_dir / LISTEN_FILE).write_text(json.dumps({"url": url}))
