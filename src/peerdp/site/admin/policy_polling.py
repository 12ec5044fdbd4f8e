"""`/api/v1/site/policy-polling`: how the site's clients fetch their policy.

A change reaches every client through its policy: those long-polling are woken at once;
those polling at an interval learn it at their next poll.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from peerdp.domain.policy_polling import PolicyPolling, PollingRefused
from peerdp.site.admin.schemas import PolicyPollingIn, PolicyPollingOut
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import Invalid
from peerdp.site.mp import polling
from peerdp.site.status import site_event

router = APIRouter(prefix="/site", tags=["site"])


@router.get("/policy-polling", response_model=PolicyPollingOut)
def get_policy_polling(ctx: SiteContext = Depends(site)) -> PolicyPollingOut:
    with ctx.transaction() as s:
        return _out(polling.read(s))


@router.put("/policy-polling", response_model=PolicyPollingOut)
def put_policy_polling(body: PolicyPollingIn, ctx: SiteContext = Depends(site)) -> PolicyPollingOut:
    """Set how clients fetch policy: long-polling, or polling at an interval (at least
    a minute, PEERDP_POLICY_INTERVAL_MIN_S) plus a random delay of up to the interval."""
    wanted = _checked(body, ctx.settings.policy_interval_min_s)
    with ctx.transaction() as s:
        if polling.read(s) != wanted:
            polling.write(s, wanted)
            site_event(
                s,
                ctx,
                "policy_polling_changed",
                detail=f"clients fetch policy by {wanted.describe()}",
            )
            ctx.changes.publish(s)  # every client's policy changes: wake every waiter
        return _out(wanted)


def _checked(body: PolicyPollingIn, min_interval_s: int) -> PolicyPolling:
    if body.mode == "long_poll":
        given = [name for name in ("interval_s", "randomise_s") if getattr(body, name) is not None]
        if given:
            raise Invalid(f"{given[0]}: only with mode 'interval' (mode is 'long_poll')")
        return PolicyPolling()
    if body.interval_s is None:
        raise Invalid("interval_s: is required with mode 'interval'")
    try:
        return PolicyPolling.every(
            body.interval_s, body.randomise_s or 0, min_interval_s=min_interval_s
        )
    except PollingRefused as exc:
        raise Invalid(str(exc)) from None


def _out(value: PolicyPolling) -> PolicyPollingOut:
    return PolicyPollingOut(
        mode=value.mode,
        interval_s=value.interval_s,
        randomise_s=value.randomise_s,
        description=value.describe(),
    )
