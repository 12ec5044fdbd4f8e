"""The console's enrolment tokens: the list (never a secret: only its hash is kept), making
one (its secret shown on the answer page once, kept nowhere else), revoking one."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import FormData

from peerdp.site.admin.machines import create_token, list_tokens, revoke_token
from peerdp.site.admin.schemas import EnrolmentTokenIn, EnrolmentTokenOut
from peerdp.site.console.actions import CREATE_TOKEN, REVOKE_TOKEN, Posted, act, api_body, may
from peerdp.site.console.deps import posted, user
from peerdp.site.console.render import page
from peerdp.site.console.sessions import SignedIn
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import Invalid
from peerdp.store.models import DistributionPoint, utcnow

router = APIRouter()
TOKENS = "/console/enrolment-tokens"
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ROLE_WORDS = {"client": "client", "branch_dp": "branch DP", "standard_dp": "standard DP"}
MAX_DAYS = 3650


def standing(token: EnrolmentTokenOut) -> str:
    """Whether a registration may still use the token, in words."""
    if token.expires_at is not None and token.expires_at <= utcnow():
        return "expired"
    return "used up" if token.uses >= token.max_uses else "usable"


def _dps(ctx: SiteContext) -> list[Any]:
    with ctx.db.reading() as s:
        query = select(DistributionPoint.id, DistributionPoint.name, DistributionPoint.kind)
        return list(s.execute(query.order_by(DistributionPoint.name)).all())


@router.get("/enrolment-tokens")
def tokens_page(
    request: Request, who: SignedIn = Depends(user), ctx: SiteContext = Depends(site)
) -> Response:
    tokens = [EnrolmentTokenOut.model_validate(t) for t in list_tokens(ctx)]
    dps = _dps(ctx)
    return page(
        request,
        "enrolment_tokens.html",
        who,
        tokens=tokens,
        standing=standing,
        roles=ROLE_WORDS,
        dps=dps,
        dp_names={dp.id: dp.name for dp in dps},
        max_days=MAX_DAYS,
        may=may(who),
        note=request.query_params.get("note"),
    )


def _fields(form: FormData) -> dict[str, object]:
    """The API's body from the form: a lifetime in days becomes `expires_at`."""
    fields: dict[str, object] = {"role": form.get("role")}
    for name in ("dp_id", "max_uses"):
        given = form.get(name)
        if isinstance(given, str) and given.strip():
            fields[name] = given.strip()
    days = form.get("expires_in_days")
    if isinstance(days, str) and days.strip():
        if not days.strip().isdigit() or not 1 <= int(days) <= MAX_DAYS:
            raise Invalid(f"expires_in_days: a whole number of days from 1 to {MAX_DAYS}")
        fields["expires_at"] = utcnow() + timedelta(days=int(days))
    return fields


@router.post("/enrolment-tokens")
def create(
    request: Request, checked: Posted = Depends(posted), ctx: SiteContext = Depends(site)
) -> Response:
    """Make a token; its secret is on this answer page alone (no-store, not a redirect)."""
    who, form = checked

    def do() -> Response:
        made = create_token(api_body(EnrolmentTokenIn, _fields(form)), ctx)
        token = EnrolmentTokenOut.model_validate(made)
        dp_name = _dps_named(ctx, token.dp_id)
        return page(
            request,
            "enrolment_token_created.html",
            who,
            token=token,
            secret=made["token"],
            dp_name=dp_name,
            roles=ROLE_WORDS,
        )

    return act(request, ctx, who, CREATE_TOKEN, TOKENS, do)


def _dps_named(ctx: SiteContext, dp_id: int | None) -> str | None:
    if dp_id is None:
        return None
    with ctx.db.reading() as s:
        return s.scalar(select(DistributionPoint.name).where(DistributionPoint.id == dp_id))


@router.post("/enrolment-tokens/{token_id}/revoke")
def revoke(
    request: Request,
    token_id: TokenId,
    checked: Posted = Depends(posted),
    ctx: SiteContext = Depends(site),
) -> Response:
    def do() -> str:
        revoke_token(token_id, ctx)
        return f"Revoked enrolment token {token_id}: no machine can register with it."

    return act(request, ctx, checked[0], REVOKE_TOKEN, TOKENS, do)
