"""Access tokens for content-location answers, reused for half their life."""

from __future__ import annotations

import time

from peerdp.site.context import SiteContext


class AccessTokens:
    """Access tokens reused for half their life: signing is the MP's costliest step."""

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self._tokens: dict[tuple[str, int, str], tuple[float, str]] = {}

    def get(self, package_id: str, version: int, subject: str) -> str:
        key = (package_id, version, subject)
        now = time.monotonic()
        held = self._tokens.get(key)
        if held is not None and held[0] > now:
            return held[1]
        ttl = self.ctx.settings.access_token_ttl_s
        token = self.ctx.key.access_token(package_id, version, subject, ttl)
        if len(self._tokens) > 200_000:
            self._tokens.clear()
        self._tokens[key] = (now + ttl / 2, token)
        return token
