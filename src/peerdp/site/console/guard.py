"""What every console form must carry: the session's CSRF token (a hidden field), and an
Origin (or, failing that, a Referer) of the console's own origin. A forged form fails
one or both and is refused 403 with a page saying why; nothing is changed."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import FormData

from peerdp.site.auth import same_secret
from peerdp.site.console.sessions import SignedIn

CSRF_FIELD = "csrf_token"


class FormRefused(Exception):
    """A form the console will not act on (403), and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_origin(request: Request) -> None:
    """The request comes from a page of this site (same scheme, host and port)."""
    own = _origin(str(request.base_url))
    sent = request.headers.get("origin")
    if sent is None:
        referer = request.headers.get("referer")
        if referer is None:
            raise FormRefused("the request names no origin (neither Origin nor Referer)")
        sent = _origin(referer)
    if sent != own:
        raise FormRefused(f"the form was sent from {sent!r}, not from this site ({own!r})")


def check_csrf(form: FormData, user: SignedIn) -> None:
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not given:
        raise FormRefused("the form carries no CSRF token: it was not made by this console")
    if not same_secret(given, user.csrf_token):
        raise FormRefused("the form's CSRF token is not this session's (an old or forged form)")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
