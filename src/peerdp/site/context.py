"""What every request handler of the site server needs: settings, database, keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from peerdp.config import SiteSettings
from peerdp.security.signing import SiteKey
from peerdp.site.errors import NotFound
from peerdp.site.notify import ChangeBus
from peerdp.store.db import Database

if TYPE_CHECKING:
    from peerdp.site.mp.management_point import ManagementPoint

T = TypeVar("T")


@dataclass
class SiteContext:
    settings: SiteSettings
    db: Database
    key: SiteKey
    admin_token: str
    admin_token_path: Path | None
    changes: ChangeBus
    # The MP's caches and batchers: made by create_app, so that opening a site to set it
    # up (before the server's workers start) starts no threads.
    mp: ManagementPoint = field(init=False)

    @property
    def site_code(self) -> str:
        return self.settings.site_code

    @property
    def library_dir(self) -> Path:
        return self.settings.data_dir / "library"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.db.transaction() as session:
            yield session


async def site(request: Request) -> SiteContext:
    # async: a sync dependency would cost a thread-pool hop on every request.
    ctx = request.app.state.site
    assert isinstance(ctx, SiteContext)
    return ctx


def get_or_404(session: Session, model: type[T], key: object, what: str) -> T:
    row = session.get(model, key)
    if row is None:
        raise NotFound(f"{what} {key} does not exist")
    return row


def exists_or_404(session: Session, model: type[Any], key: object, what: str) -> None:
    """As get_or_404 when only existence matters: reads the key alone, not the row with
    its eagerly loaded relations (a collection's members: 100,000 rows for `all`)."""
    column = inspect(model).primary_key[0]
    if session.scalar(select(column).where(column == key)) is None:
        raise NotFound(f"{what} {key} does not exist")
