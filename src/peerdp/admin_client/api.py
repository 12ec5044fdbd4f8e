"""A client for one site's admin API (`/api/v1`).

Every answer is decoded JSON (None for an empty one). Every failure (an error answer, a
refused connection, a timeout, an answer that is not JSON) raises `AdminError` with one
sentence that says what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from peerdp.admin_client.errors import AdminError
from peerdp.net import error_detail
from peerdp.security.tls import (
    CA_FILE_ENV as CA_FILE_ENV,
)
from peerdp.security.tls import (
    TLSSetupError,
    client_context,
    untrusted_certificate,
)
from peerdp.transfer.download import NullProgress, ProgressSink

# The environment variables peerdp's tools read the site URL and the admin token from;
# the messages below name them because that is where a person fixes the problem.
SITE_ENV = "PEERDP_SITE_URL"
TOKEN_ENV = "PEERDP_ADMIN_TOKEN"
API_PREFIX = "/api/v1"

Params = Mapping[str, str | int | None]
# The audit log's largest page (the API's own limit).
AUDIT_PAGE = 1000


def site_url(given: str) -> str:
    """The site's base URL without a trailing slash or API prefix."""
    url = given.strip().rstrip("/").removesuffix(API_PREFIX)
    if not url.startswith(("http://", "https://")):
        raise AdminError(f"the site URL must start with http:// or https://, not {url!r}")
    return url


class AdminClient:
    """Calls to one site's admin API with its admin token; each answer is decoded JSON.

    Over HTTPS the site's certificate is verified against `ca_file` (PEM), else the
    system's certificate authorities.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        ca_file: Path | None = None,
        user_agent: str = "peerdp-cli",
    ) -> None:
        self.url = site_url(url)
        try:
            verify = client_context(ca_file) if self.url.startswith("https://") else True
        except TLSSetupError as exc:
            raise AdminError(str(exc)) from exc
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers={"Authorization": f"Bearer {token}", "User-Agent": user_agent},
            timeout=httpx.Timeout(30.0, connect=10.0),
            verify=verify,
        )

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("PATCH", path, json=body)

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def advertisement_status(
        self,
        advertisement_id: int | str,
        *,
        state: str | None = None,
        client: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        """How an advertisement went: its clients per state (and per boundary and state)
        and a page of its client rows, filtered by `state` and client-name prefix."""
        params = {"state": state, "client": client, "limit": limit, "offset": offset}
        answer: dict[str, Any] = self.get(f"/advertisements/{advertisement_id}/status", params)
        return answer

    def package_status(self, package_id: str) -> dict[str, Any]:
        """Where a package stands on its DPs: installed on N of M, per state, each DP's
        version and bytes, and its on-demand requests."""
        answer: dict[str, Any] = self.get(f"/packages/{package_id}/status")
        return answer

    def admin_accounts(self) -> list[dict[str, Any]]:
        """The administrator accounts, revoked ones included (needs the full role)."""
        answer: list[dict[str, Any]] = self.get("/admin-accounts")
        return answer

    def create_admin_account(
        self, name: str, role: str, *, expires_at: str | None = None
    ) -> dict[str, Any]:
        """A new administrator account; its secret (`token`) is in this answer alone."""
        body = {"name": name, "role": role, "expires_at": expires_at}
        answer: dict[str, Any] = self.post("/admin-accounts", body)
        return answer

    def revoke_admin_account(self, account_id: int) -> dict[str, Any]:
        """Revoke an account: its secret stops working at once. Answers the account."""
        answer: dict[str, Any] = self.delete(f"/admin-accounts/{account_id}")
        return answer

    def audit(
        self,
        *,
        who: str | None = None,
        since: str | None = None,
        path_prefix: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The newest `limit` audit entries (changes asked of the admin API), newest
        first, fetched a page at a time."""
        entries: list[dict[str, Any]] = []
        before_id: int | None = None
        while len(entries) < limit:
            page_size = min(AUDIT_PAGE, limit - len(entries))
            params: Params = {
                "who": who,
                "since": since,
                "path_prefix": path_prefix,
                "limit": page_size,
                "before_id": before_id,
            }
            page: list[dict[str, Any]] = self.get("/audit", params)
            entries.extend(page)
            if len(page) < page_size:
                break
            before_id = page[-1]["id"]
        return entries

    def upload(self, path: str, chunks: Iterable[bytes], size: int, content_type: str) -> Any:
        """POST a streamed body of exactly `size` bytes; waits as long as the site needs."""
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        timeout = httpx.Timeout(30.0, connect=10.0, read=None)
        return self.request("POST", path, content=chunks, headers=headers, timeout=timeout)

    def download(self, path: str, out: IO[bytes], progress: ProgressSink | None = None) -> int:
        """GET a streamed body into `out`; the bytes written. AdminError (nothing kept by the
        caller) on an error answer or an incomplete body."""
        timeout = httpx.Timeout(30.0, connect=10.0, read=None)
        progress = progress or NullProgress()
        written = 0
        try:
            with self._http.stream("GET", path, timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    raise AdminError(describe_error(response), response.status_code)
                expected = response.headers.get("Content-Length")
                progress.start(int(expected or 0))
                for chunk in response.iter_raw():
                    out.write(chunk)
                    written += len(chunk)
                    progress.advance(len(chunk))
        except httpx.HTTPError as exc:
            raise AdminError(self._transport_problem(exc)) from exc
        finally:
            progress.done()
        if expected is not None and int(expected) != written:
            raise AdminError(f"the site sent {written} of {expected} bytes; try again")
        return written

    def request(self, method: str, path: str, **options: Any) -> Any:
        params = options.pop("params", None)
        if params is not None:
            options["params"] = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise AdminError(self._transport_problem(exc)) from exc
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> Any:
        if not response.is_success:
            raise AdminError(describe_error(response), response.status_code)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AdminError(
                f"{self.url} answered with something that is not JSON: is it a peerdp site?",
                response.status_code,
            ) from None

    def _transport_problem(self, exc: httpx.HTTPError) -> str:
        if untrusted := untrusted_certificate(exc):
            return untrusted
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
