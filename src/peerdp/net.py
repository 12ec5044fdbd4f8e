"""Listening sockets for peerdp's servers (bound before the app starts, so port 0 works),
and a clean exit on SIGTERM."""

from __future__ import annotations

import signal
import socket
from types import FrameType

import httpx

from peerdp.logs import get_logger

log = get_logger("peerdp.net")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str, *, tls: bool = False) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def exit_zero_after_sigterm() -> None:
    """Make a SIGTERM end uvicorn's run in a normal return, so the process exits 0.

    uvicorn shuts down gracefully on SIGTERM, restores the handler that was there before,
    and raises the signal again; with this handler in place that second one is a no-op.
    """
    signal.signal(signal.SIGTERM, _stopped)


def _stopped(signum: int, frame: FrameType | None) -> None:
    log.info("stopping", signal=signal.Signals(signum).name)


def error_detail(response: httpx.Response) -> str:
    """What a peerdp server's error answer says (`{"detail": ...}`), in words."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) for item in detail if isinstance(item, dict))
    return f"HTTP {response.status_code}"
