"""Console changes in the audit log, as the API's (site/audit.py): who, with which role,
the console path, the API route the action stands for (`resource`), and the status: 200
when done, else the refusal's (403 by role, 404, 409...). A form refused for its CSRF
token or origin changes nothing and names nobody for sure: it is not logged."""

from __future__ import annotations

from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext
from peerdp.store.models import AuditEntry

MAX_PATH = 2000


def record(ctx: SiteContext, user: SignedIn, path: str, api_route: str, status: int) -> None:
    with ctx.db.transaction() as s:
        s.add(
            AuditEntry(
                who=user.who,
                account_id=user.account_id,
                role=user.role,
                method="POST",
                path=path[:MAX_PATH],
                resource=api_route[:200],
                status=status,
            )
        )
