"""The audit log: every change asked of the admin API (any method but GET, HEAD and
OPTIONS), who asked, with which role, and the status it was answered with — refusals by
role (403) and bad input included, so that an attempt shows as well as a change.

Each route commits its change in its own transaction; the entry is written right after,
when the answer starts and before it is sent, so a caller that has its answer finds the
entry. A request with no valid credential (401) names nobody and is not logged.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from peerdp.logs import get_logger
from peerdp.site.admin.access import API, READS, route_template
from peerdp.site.auth import Credential
from peerdp.store.db import Database
from peerdp.store.models import AuditEntry

log = get_logger("peerdp.site.audit")
MAX_PATH = 2000


class AuditLog:
    """ASGI middleware writing an `AuditEntry` for each admin API change."""

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS or not _is_admin(scope["path"]):
            await self.app(scope, receive, send)
            return
        # The credential check (site/admin/access.py) leaves the credential in the
        # request's state; the same dict is seen here once the route has run.
        scope.setdefault("state", {})
        recorded = False

        async def send_recording(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._record(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        except Exception:
            if not recorded:
                await self._record(scope, 500)
            raise

    async def _record(self, scope: Scope, status: int) -> None:
        credential = scope["state"].get("admin")
        if not isinstance(credential, Credential):
            return
        route = route_template(scope)
        entry = {
            "who": credential.name,
            "account_id": credential.account_id,
            "role": credential.role,
            "method": scope["method"],
            "path": scope["path"][:MAX_PATH],
            "resource": route[:200],
            "status": status,
        }
        try:
            await run_in_threadpool(self._write, entry)
        except Exception:
            # The change itself is committed: answer it, and say loudly what is missing.
            log.exception("audit_write_failed", **entry)

    def _write(self, entry: dict[str, Any]) -> None:
        with self.db.transaction() as s:
            s.add(AuditEntry(**entry))


def _is_admin(path: str) -> bool:
    return path == API or path.startswith(API + "/")
