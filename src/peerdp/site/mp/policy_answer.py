"""A policy as the MP sends it: 200 with its version as the ETag, or 304 Not Modified
when the caller names that version in If-None-Match and it is still the one.

A client polling at an interval names the version it holds, so an unchanged policy
costs it an empty answer, and the site neither sends nor needs to sign one.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from peerdp.site.metrics import POLICY_ANSWERS


def etag(version: int) -> str:
    """A policy version as an entity tag: `"7"`."""
    return f'"{version}"'


def names_version(if_none_match: str | None, version: int) -> bool:
    """Whether an If-None-Match header names `version` (a weak `W/"7"` too, or `*`)."""
    if not if_none_match:
        return False
    wanted = etag(version)
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def answer(policy: dict[str, Any], if_none_match: str | None) -> Response:
    """304 with the ETag and no body if the caller holds this version; else the policy."""
    headers = {"ETag": etag(int(policy["version"]))}
    if names_version(if_none_match, int(policy["version"])):
        POLICY_ANSWERS.labels("304").inc()
        return Response(status_code=304, headers=headers)
    POLICY_ANSWERS.labels("200").inc()
    return JSONResponse(policy, headers=headers)
