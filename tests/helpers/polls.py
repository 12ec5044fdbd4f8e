"""Policy long-polls held open on raw sockets, and the site's policy metrics, for tests of
the held-poll limit."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import httpx


def hold_poll(site_url: str, authorization: str, since: int, wait: int = 300) -> socket.socket:
    """Send one policy long-poll and leave it open, unread: the site holds it until the
    socket is closed or `wait` runs out."""
    where = urlsplit(site_url)
    assert where.hostname is not None and where.port is not None
    sock = socket.create_connection((where.hostname, where.port), timeout=30)
    sock.sendall(
        (
            f"GET /mp/v1/policy?since={since}&wait={wait} HTTP/1.1\r\n"
            f"Host: {where.netloc}\r\nAuthorization: {authorization}\r\n\r\n"
        ).encode()
    )
    return sock


def metric(site_url: str, name: str, labels: str = "") -> float:
    """One sample of the site's /metrics (0 when it has none yet)."""
    text = httpx.get(site_url + "/metrics", timeout=30).text
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(found[1]) if found else 0.0


def held(site_url: str) -> int:
    return int(metric(site_url, "peerdp_mp_policy_held"))


def refusals(site_url: str) -> int:
    return int(metric(site_url, "peerdp_mp_policy_refused_total"))


def answers(site_url: str, status: int) -> int:
    return int(metric(site_url, "peerdp_mp_policy_answers_total", f'{{status="{status}"}}'))
