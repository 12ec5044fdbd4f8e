"""The address a machine's request came from, as the MP sees the connection.

What a client reports about itself (its addresses, its AD site) places it in boundaries,
and the site takes it on trust; the connection's peer address is what the site itself
saw. Both are kept on the client's row, so that `explain` can show them side by side and
an administrator can tell a machine reporting addresses that are not its own (or a NAT or
proxy in between, which shows its own address).
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import update

from peerdp.site.context import SiteContext
from peerdp.store.models import Client


def peer_address(request: Request) -> str | None:
    """The connection's remote address (None when the server does not know it)."""
    return request.client.host if request.client is not None else None


def record_peer_address(ctx: SiteContext, client_id: int, address: str | None) -> None:
    """Keep where a client's registration came from (later requests update it in batches)."""
    with ctx.transaction() as s:
        s.execute(update(Client).where(Client.id == client_id).values(peer_address=address))
