"""Pages of the console's long lists (2,000 DPs, 10,000 boundaries, 100,000 members): the
query values that choose a page and its filters, checked before any query (a hostile
value gets the refused page), and the links between the pages, which keep the filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import Query
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from peerdp.site.admin.schemas import NO_NUL

PER_PAGE = 100

PageNumber = Query(default=1, ge=1, le=1_000_000, description="the page of the list")


def prefix(what: str) -> Any:
    """A text filter: rows whose `what` starts with it, ignoring case ("" shows all)."""
    return Query(default="", max_length=200, pattern=NO_NUL, description=f"{what} starts with")


def one_of(values: tuple[str, ...]) -> Any:
    """A choice filter from a select whose first option ("any", the empty value) shows all."""
    return Query(default="", pattern=f"^({'|'.join(values)})?$")


def page_of(s: Session, query: Select[*tuple[Any, ...]], number: int) -> tuple[list[Any], int]:
    """Page `number` of `query`'s rows, and how many rows it has in all."""
    rows = list(s.execute(query.limit(PER_PAGE).offset((number - 1) * PER_PAGE)).all())
    if number == 1 and len(rows) < PER_PAGE:
        return rows, len(rows)  # the whole list is on this page: no second scan
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    return rows, s.scalar(counted) or 0


def starts_with(column: InstrumentedAttribute[str], text: str) -> ColumnElement[bool]:
    """`column` starts with `text`, ignoring case; `%` and `_` in it are plain characters."""
    return column.istartswith(text, autoescape=True)


@dataclass(frozen=True)
class Paging:
    """Page `number` of a list of `matched` rows at `path`, chosen by `filters`."""

    path: str
    number: int
    matched: int
    filters: dict[str, str] = field(default_factory=dict)

    @property
    def offset(self) -> int:
        return (self.number - 1) * PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.matched // PER_PAGE))

    def link(self, number: int, suffix: str = "") -> str:
        """The URL of page `number` (of `path + suffix`: "/live", its changing part)."""
        kept = {name: value for name, value in self.filters.items() if value}
        return f"{self.path}{suffix}?{urlencode({**kept, 'number': number})}"

    @property
    def live(self) -> str:
        return self.link(self.number, "/live")
