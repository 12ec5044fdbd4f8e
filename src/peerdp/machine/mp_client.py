"""A managed machine's connection to the management point: enrolment, identity, policy, status.

Every agent (client, branch DP, standard DP) keeps its identity in its data
directory (`identity.json`, mode 0600): a second run does not register again.
The site's public key is pinned at registration; every policy is verified with it.
The site's URL is saved there too; a URL given later (`--site`, `PEERDP_SITE_URL`: the site
server moved) replaces it, so the machine follows its site without registering again.
Over HTTPS the CA the agent registered with (`--ca-file`) is pinned too, in the identity,
and every later call (to the MP, and to DPs for content) trusts that CA; an agent that
registered without one trusts the system's CAs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import ssl
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from peerdp.domain.backoff import backoff_delay, jittered
from peerdp.domain.timestamps import retry_after_s
from peerdp.net import error_detail
from peerdp.security.signing import SignatureError, SitePublicKey
from peerdp.security.tls import TLSSetupError, client_context, read_ca, untrusted_certificate

log = logging.getLogger(__name__)


class MPError(Exception):
    """The management point refused a request, or could not be reached.

    `status` is the HTTP status of a refusal (None: no answer); `retry_after_s` the wait
    the site asked for (Retry-After, e.g. with 503 when it holds all the long-polls it can).
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


# The longest a site's Retry-After makes an agent wait: a site asking for more is not
# taken at its word for longer than an hour.
RETRY_AFTER_MAX_S = 3600.0


def policy_retry_s(
    exc: MPError | None, failures: int, base_s: float, cap_s: float, rng: random.Random
) -> float:
    """How long an agent waits after its `failures`-th failed policy fetch in a row: the
    site's Retry-After when it gave one (a 503: it holds all the long-polls it can), else
    `base_s` doubling up to `cap_s`; stretched at random (domain/backoff.py `jittered`) so
    that machines refused together do not come back together."""
    if exc is not None and exc.retry_after_s is not None:
        delay = min(exc.retry_after_s, RETRY_AFTER_MAX_S)
    else:
        delay = backoff_delay(failures, base_s, cap_s)
    return jittered(delay, rng)


class PolicyRefused(MPError):
    """A policy whose signature does not verify with the pinned site key: never used."""


@dataclass(frozen=True)
class Identity:
    machine_id: str
    credential: str
    site_public_key: str
    site_code: str
    role: str
    name: str
    site_url: str
    dp_id: int | None = None
    client_id: int | None = None
    # The PEM text of the CA the site's certificate was verified with at registration.
    site_ca: str | None = None

    @property
    def public_key(self) -> SitePublicKey:
        return SitePublicKey.from_b64(self.site_public_key)

    def tls(self, ca_file: Path | None = None) -> ssl.SSLContext:
        """What HTTPS calls of this machine trust: `ca_file` if given, else the pinned CA,
        else the system's CAs. Raises MPError for a CA that cannot be used."""
        return trust(ca_file, self.site_ca)


def trust(ca_file: Path | None, pinned: str | None = None) -> ssl.SSLContext:
    try:
        if ca_file is not None:
            return client_context(ca_file)
        return client_context(ca_pem=pinned)
    except TLSSetupError as exc:
        raise MPError(str(exc)) from exc


def transport_problem(what: str, exc: httpx.TransportError) -> str:
    """A failed connection in one line; a refused certificate says so and what to do."""
    return untrusted_certificate(exc) or f"cannot reach {what}: {exc}"


@dataclass(frozen=True)
class MachineFacts:
    """What an agent reports about itself; `--name`, `--ip-address`, `--ad-site` override."""

    name: str
    ip_addresses: tuple[str, ...]
    ad_site: str | None

    @classmethod
    def detect(
        cls, name: str | None, ip_addresses: list[str] | None, ad_site: str | None
    ) -> MachineFacts:
        return cls(name or socket.gethostname(), tuple(ip_addresses or _local_addresses()), ad_site)


def _local_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return []
    # A link-local address comes with its interface (fe80::1%eth0); the site takes the
    # address alone, since no boundary can name an interface of this machine.
    found = {str(info[4][0]).split("%", 1)[0] for info in infos}
    return sorted(a for a in found if not a.startswith("127."))


def load_identity(data_dir: Path) -> Identity | None:
    path = data_dir / "identity.json"
    if not path.exists():
        return None
    return Identity(**json.loads(path.read_text()))


def save_identity(data_dir: Path, identity: Identity) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "identity.json"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(identity), fh)
    os.replace(tmp, path)


def check_enrolment_token(
    site_url: str | None, token: str, role: str, data_dir: Path, ca_file: Path | None = None
) -> None:
    """Before a first start touches its data directory: MPError unless the site takes
    `token` for `role` (nothing is spent). A saved identity or no token: nothing to check."""
    if not token or load_identity(data_dir) is not None:
        return
    site_url = _registering_at(site_url)
    body = {"token": token, "role": role}
    try:
        response = httpx.post(
            f"{site_url}/mp/v1/register/check", json=body, timeout=30, verify=trust(ca_file)
        )
    except httpx.TransportError as exc:
        raise MPError(transport_problem(f"the site at {site_url}", exc)) from exc
    if response.status_code != 200:
        raise MPError(f"registration refused: {error_detail(response)}")


def _registering_at(site_url: str | None) -> str:
    if not site_url:
        raise MPError(
            "no identity in the data directory yet: pass --site (or PEERDP_SITE_URL) "
            "and --token to register"
        )
    return site_url


def follow_site(
    identity: Identity, site_url: str | None, data_dir: Path, ca_file: Path | None = None
) -> Identity:
    """The saved identity at `site_url` when one is given and differs from the saved URL
    (the site server moved), saved so, and logged; otherwise the identity as saved. A
    `ca_file` given with an HTTPS URL is pinned in place of the old CA.

    Nothing else changes: the credential and the pinned site key stay, so a URL that is
    not this machine's site gets its requests refused or its policy rejected."""
    if not site_url or site_url == identity.site_url:
        return identity
    pinned = identity.site_ca
    if ca_file is not None and site_url.startswith("https:"):
        pinned = _read_ca(ca_file)
    moved = replace(identity, site_url=site_url, site_ca=pinned)
    save_identity(data_dir, moved)
    log.warning("the site's URL is now %s (was %s); saved", site_url, identity.site_url)
    return moved


def enrol(
    site_url: str | None,
    token: str,
    facts: MachineFacts,
    data_dir: Path,
    *,
    url: str | None = None,
    ca_file: Path | None = None,
    role: str | None = None,
    timeout: float = 30,
) -> Identity:
    """The agent's identity: the saved one, or a new one made with the enrolment token.

    Over HTTPS the site's certificate must verify with `ca_file` (else the system's CAs);
    that CA is pinned in the new identity.

    With `role`, the site refuses a token of another role without spending it.

    `site_url` (the agent's `--site` or `PEERDP_SITE_URL`) is needed to register; with a
    saved identity it may be left out (the saved URL is used), and when given it replaces
    the saved one (`follow_site`).
    """
    saved = load_identity(data_dir)
    if saved is not None:
        return follow_site(saved, site_url, data_dir, ca_file)
    site_url = _registering_at(site_url)
    pinned = _read_ca(ca_file) if ca_file is not None and site_url.startswith("https:") else None
    body: dict[str, Any] = {
        "token": token,
        "role": role,
        "name": facts.name,
        "ip_addresses": list(facts.ip_addresses),
        "ad_site": facts.ad_site,
    }
    if url is not None:
        body["url"] = url
    try:
        response = httpx.post(
            f"{site_url}/mp/v1/register", json=body, timeout=timeout, verify=trust(None, pinned)
        )
    except httpx.TransportError as exc:
        raise MPError(transport_problem(f"the site at {site_url}", exc)) from exc
    if response.status_code != 201:
        raise MPError(f"registration refused: {error_detail(response)}")
    answer = response.json()
    identity = Identity(
        machine_id=answer["machine_id"],
        credential=answer["credential"],
        site_public_key=answer["site_public_key"],
        site_code=answer["site_code"],
        role=answer["role"],
        name=facts.name,
        site_url=site_url,
        dp_id=answer.get("dp_id"),
        client_id=answer.get("client_id"),
        site_ca=pinned,
    )
    save_identity(data_dir, identity)
    return identity


class MPClient:
    """Authenticated calls to the management point."""

    def __init__(
        self, identity: Identity, *, ca_file: Path | None = None, timeout: float = 30
    ) -> None:
        self.identity = identity
        # What this machine's HTTPS calls trust; downloads from DPs use it too.
        self.tls = identity.tls(ca_file)
        self.http = httpx.Client(
            base_url=identity.site_url + "/mp/v1",
            headers={"Authorization": f"Bearer {identity.credential}"},
            timeout=timeout,
            verify=self.tls,
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._answered(method, path, **kwargs).json()

    def _answered(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The MP's answer below 400; MPError for a refusal or no answer."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            where = f"the management point at {self.identity.site_url}"
            raise MPError(transport_problem(where, exc)) from exc
        if response.status_code >= 400:
            raise MPError(
                f"{method} {path}: {response.status_code} {error_detail(response)}",
                status=response.status_code,
                retry_after_s=retry_after_s(response.headers.get("retry-after"), datetime.now(UTC)),
            )
        return response

    def policy(
        self, since: int | None = None, wait: float = 0, held: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The verified policy; waits up to `wait` s for a version newer than `since`.

        With `held` (the verified policy the machine holds) the site is asked to answer
        `304 Not Modified` if that version is still in force, and `held` is returned then.
        """
        params: dict[str, Any] = {"wait": wait}
        if since is not None:
            params["since"] = since
        headers = {"If-None-Match": f'"{held["version"]}"'} if held is not None else {}
        timeout = httpx.Timeout(self.http.timeout.read or 30, read=wait + 30)
        response = self._answered("GET", "/policy", params=params, headers=headers, timeout=timeout)
        if response.status_code == 304:
            if held is None:
                raise MPError("GET /policy: 304 Not Modified, but no policy is held")
            return held
        return verify_policy(self.identity.public_key, response.json())

    def content_location(
        self,
        advertisement_id: int,
        package_id: str,
        source_version: int,
        ip_addresses: tuple[str, ...],
        ad_site: str | None,
    ) -> dict[str, Any]:
        body = {
            "advertisement_id": advertisement_id,
            "package_id": package_id,
            "source_version": source_version,
            "ip_addresses": list(ip_addresses),
            "ad_site": ad_site,
        }
        answer: dict[str, Any] = self._call("POST", "/content-location", json=body)
        return answer

    def announce(self, url: str | None) -> None:
        """Tell the site this DP now serves at `url` (None: it is up at the URL it had)."""
        self._call("POST", "/announce", json={} if url is None else {"url": url})

    def dp_settings(self, max_transfers_override: int | None) -> dict[str, Any]:
        """Tell the site the --max-transfers this DP was started with (None: none)."""
        body = {"max_transfers_override": max_transfers_override}
        answer: dict[str, Any] = self._call("POST", "/dp-settings", json=body)
        return answer

    def status(self, *messages: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("POST", "/status", json={"messages": list(messages)})
        return answer


def _read_ca(ca_file: Path) -> str:
    try:
        return read_ca(ca_file)
    except TLSSetupError as exc:
        raise MPError(str(exc)) from exc


def verify_policy(public_key: SitePublicKey, policy: dict[str, Any]) -> dict[str, Any]:
    """The policy if its signature verifies with the pinned key; MPError otherwise."""
    signed = {k: v for k, v in policy.items() if k != "signature"}
    try:
        public_key.verify_json(signed, str(policy.get("signature", "")))
    except SignatureError as exc:
        raise PolicyRefused(f"policy refused: {exc}") from exc
    return policy
