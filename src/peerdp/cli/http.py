"""The admin CLI's client for the site's admin API (`/api/v1`).

The site URL comes from `--site` or PEERDP_SITE_URL, the admin token from
PEERDP_ADMIN_TOKEN. Every failure (an error answer, a refused connection, a
timeout) becomes one line on stderr and exit code 1: never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import httpx
import typer

from peerdp.net import error_detail

SITE_ENV = "PEERDP_SITE_URL"
TOKEN_ENV = "PEERDP_ADMIN_TOKEN"
DEFAULT_SITE_URL = "http://127.0.0.1:8080"
API_PREFIX = "/api/v1"

SiteOption = Annotated[
    str | None,
    typer.Option(
        "--site",
        envvar=SITE_ENV,
        metavar="URL",
        show_default=False,
        help=f"Site server URL (default: ${SITE_ENV}, else {DEFAULT_SITE_URL}).",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the API's JSON answer instead of a table (for scripts)."),
]

Params = Mapping[str, str | int | None]


def fail(message: str) -> NoReturn:
    """Print `message` as one line on stderr and exit with code 1."""
    typer.echo(f"Error: {' '.join(message.split())}", err=True)
    raise typer.Exit(1)


def site_url(given: str | None) -> str:
    """The site's base URL without a trailing slash or API prefix."""
    url = (given or DEFAULT_SITE_URL).strip().rstrip("/").removesuffix(API_PREFIX)
    if not url.startswith(("http://", "https://")):
        fail(f"the site URL must start with http:// or https://, not {url!r}")
    return url


def admin_token() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        fail(
            f"no admin token: set {TOKEN_ENV} to the site's admin token "
            "(the site server prints where it keeps it when it starts)"
        )
    return token


class Api:
    """Calls to one site's admin API; each answer is decoded JSON (None for 204)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self._http = httpx.Client(
            base_url=url + API_PREFIX,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "peerdp-cli"},
            timeout=httpx.Timeout(30.0, connect=10.0),
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def upload(self, path: str, chunks: Iterable[bytes], size: int, content_type: str) -> Any:
        """POST a streamed body of exactly `size` bytes; waits as long as the site needs."""
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        timeout = httpx.Timeout(30.0, connect=10.0, read=None)
        return self.request("POST", path, content=chunks, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **options: Any) -> Any:
        params = options.pop("params", None)
        if params is not None:
            options["params"] = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as exc:
            fail(self._transport_problem(exc))
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> Any:
        if not response.is_success:
            fail(describe_error(response))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            fail(f"{self.url} answered with something that is not JSON: is it a peerdp site?")

    def _transport_problem(self, exc: httpx.HTTPError) -> str:
        if isinstance(exc, httpx.ConnectError):
            return (
                f"cannot connect to the site server at {self.url} ({_reason(exc)}); "
                f"is it running? Point --site or {SITE_ENV} at it"
            )
        if isinstance(exc, httpx.TimeoutException):
            return f"the site server at {self.url} did not answer in time"
        if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
            return f"{self.url} is not a usable site URL ({exc})"
        return f"talking to the site server at {self.url} failed: {_reason(exc)}"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.removeprefix("[Errno 111] ").removeprefix("[Errno 61] ")


def describe_error(response: httpx.Response) -> str:
    """An error answer as one sentence: the site's `detail`, with a hint where one helps."""
    detail = error_detail(response)
    status = response.status_code
    if status == 401:
        return f"the site refused the admin token ({detail}); set {TOKEN_ENV} to the site's token"
    if status >= 500:
        return f"the site server failed (HTTP {status}): {detail}"
    return detail


@contextmanager
def connect(site: str | None) -> Iterator[Api]:
    """An Api for the site named by `--site`/PEERDP_SITE_URL and PEERDP_ADMIN_TOKEN."""
    api = Api(site_url(site), admin_token())
    try:
        yield api
    finally:
        api.close()
