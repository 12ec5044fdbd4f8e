"""Which role each admin API route needs: the one table, and the one dependency that
enforces it on every route of `/api/v1`.

The table's routes are the templates below `/api/v1` (`/packages/{package_id}`). Every
GET needs `read_only` (except those in FULL_READS); every other method needs `full`
(configuration: boundaries, DPs' settings, packages, programs, collections,
advertisements, site settings, administrators) unless OPERATOR_ACTIONS lists it. A route
missing from the table therefore needs `full`: a new route is closed until classified.
"""

from __future__ import annotations

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from peerdp.domain.admin_roles import FULL, OPERATOR, READ_ONLY, AdminRole, allows
from peerdp.site.auth import Credential, account_credential, bearer, site_token_credential
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import Forbidden

API = "/api/v1"

# What an operator may do: act on deployments and DPs, never change configuration.
OPERATOR_ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/packages/{package_id}/distribution-points"): "add a DP to a package",
    ("DELETE", "/packages/{package_id}/distribution-points/{dp_id}"): (
        "remove a DP from a package"
    ),
    ("POST", "/packages/{package_id}/distribution-points/{dp_id}/refresh"): (
        "redistribute a package to a DP, or retry a failed one"
    ),
    ("POST", "/advertisements/{advertisement_id}/rerun"): "rerun an advertisement",
    ("POST", "/enrolment-tokens"): "create an enrolment token",
    ("DELETE", "/enrolment-tokens/{token_id}"): "revoke an enrolment token",
    ("DELETE", "/clients/{client_id}"): "delete a client",
    ("POST", "/clients/{client_id}/reenrol"): "allow a client's re-enrolment",
}
# Reads that show who administers the site: for `full` alone.
FULL_READS: frozenset[tuple[str, str]] = frozenset(
    {("GET", "/admin-accounts"), ("GET", "/admin-accounts/{account_id}")}
)
READS = frozenset({"GET", "HEAD", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the admin route a request matched, below the API's prefix
    (`/packages/{package_id}`): the table's key, and the audit log's resource."""
    template = getattr(scope.get("route"), "path_format", None) or scope["path"]
    return str(template).removeprefix(API)


def role_needed(method: str, route: str) -> AdminRole:
    """The role a request with `method` on the route template `route` needs."""
    if (method, route) in FULL_READS:
        return FULL
    if method in READS:
        return READ_ONLY
    return OPERATOR if (method, route) in OPERATOR_ACTIONS else FULL


async def require_role(request: Request, ctx: SiteContext = Depends(site)) -> Credential:
    """The request's credential, if its role allows the route; 401 or 403 otherwise.

    The credential is kept on the request for the audit log (site/audit.py), refused or not.
    """
    route = route_template(request.scope)
    given = bearer(request)
    credential = site_token_credential(ctx.admin_token, given)
    if credential is None:  # an account: read from the database, off the event loop
        credential = await run_in_threadpool(account_credential, ctx.db, given)
    request.state.admin = credential
    needed = role_needed(request.method, route)
    if not allows(credential.role, needed):
        refused = f"{request.method} {API}{route} needs the {needed} role"
        raise Forbidden(f"{refused}; {credential.describe()}")
    return credential
