"""`/console/explain`: the content-location rule's trace for a client and an advertisement,
as `peerdp explain` shows it (the API's own function, site/admin/explain.py): the
decision, the steps in order, and each DP considered with why it was kept or dropped.
A GET form: nothing is changed, and an explanation is a URL to share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from peerdp.site.admin.explain import explain
from peerdp.site.console.deps import user
from peerdp.site.console.render import page
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import ApiError, Invalid
from peerdp.store.models import Advertisement

router = APIRouter()
# A trace line judging a DP: `DP #3 'BR01-DP' (branch, protected): kept: local, fast, ...`
_VERDICT = re.compile(r"^(DP #\d+ '.*' \([^)]*\)): (kept|dropped): (.*)$")


@dataclass(frozen=True)
class Considered:
    """A DP the rule looked at, and what it made of it."""

    dp: str
    kept: bool
    why: str


def considered(trace: list[str]) -> list[Considered]:
    """The DPs the trace judged, in its order."""
    found = (_VERDICT.match(line) for line in trace)
    return [Considered(m[1], m[2] == "kept", m[3]) for m in found if m]


def steps(trace: list[str]) -> list[tuple[str, list[str]]]:
    """The trace's steps in order, each with its indented lines (a final order's DPs, the
    on-demand actions or failed conditions)."""
    grouped: list[tuple[str, list[str]]] = []
    for line in trace:
        if line.startswith(" ") and grouped:
            grouped[-1][1].append(line.strip())
        else:
            grouped.append((line, []))
    return grouped


def _form(request: Request) -> dict[str, str]:
    names = ("client", "advertisement_id", "ip_addresses", "ad_site")
    return {name: request.query_params.get(name, "").strip() for name in names}


def _ask(ctx: SiteContext, form: dict[str, str]) -> dict[str, Any]:
    """The API's explanation for the form (Invalid or NotFound: said on the page)."""
    for name, value in form.items():
        if len(value) > 1000 or not value.isprintable():
            raise Invalid(f"{name}: not a value this field can hold")
    if not form["client"] or len(form["client"]) > 200:
        raise Invalid("client: give the client's machine name (at most 200 characters)")
    given = form["advertisement_id"]
    if not given.isdigit() or not 1 <= int(given) <= 2**31 - 1:
        raise Invalid("advertisement: choose an advertisement")
    addresses = form["ip_addresses"].replace(",", " ").split()
    return explain(
        client=form["client"],
        advertisement_id=int(given),
        ip_address=addresses or None,
        ad_site=form["ad_site"] or None,
        ctx=ctx,
    )


@router.get("/explain")
def explain_page(
    request: Request, who: SignedIn = Depends(user), ctx: SiteContext = Depends(site)
) -> Response:
    form = _form(request)
    with ctx.db.reading() as s:
        advertisements = s.execute(
            select(Advertisement.id, Advertisement.name).order_by(Advertisement.name)
        ).all()
    answer, error, status = None, None, 200
    if form["client"] or form["advertisement_id"]:
        try:
            answer = _ask(ctx, form)
        except ApiError as exc:
            error, status = exc.detail, exc.status
    return page(
        request,
        "explain.html",
        who,
        status,
        form=form,
        advertisements=advertisements,
        answer=answer,
        considered=considered(answer["trace"]) if answer else [],
        steps=steps(answer["trace"]) if answer else [],
        error=error,
    )
