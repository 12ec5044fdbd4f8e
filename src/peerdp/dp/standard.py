"""`peerdp dp serve`: a standard distribution point.

It serves ``/content`` (the one ``ContentService``, access tokens checked offline with
the pinned site key) and takes what the site's distribution manager pushes to it::

    PUT    /dp/v1/objects/{sha256}                   body: the file's bytes
    PUT    /dp/v1/packages/{package_id}/{version}    body: the manifest JSON
    DELETE /dp/v1/packages/{package_id}/{version}
    GET    /dp/v1/inventory

Those need a site-signed distribution token for this DP (``Authorization: Bearer``); a
client's access token is refused there, as a distribution token is refused for content.
It long-polls its policy for the site's settings (the transfer limit; its own
``--max-transfers`` overrides it). At start it checks its store, deletes damaged versions,
and reports to the management point what it holds (``installed``), what it found damaged
(``content_damaged``) and what it lost (``install_retrying``, with why). While it serves,
a version found damaged on a read or by content validation (dp/damage.py) is withdrawn and
reported the same way.

It logs (`peerdp.dp`) each version published, removed or refused, each object refused,
and each object received (at debug level); `/metrics` counts what it receives and what
it serves to clients (dp/served.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from peerdp.config import ConfigError, writable_data_dir
from peerdp.content.ids import is_sha256
from peerdp.content.manifest import ManifestError
from peerdp.content.objects import DigestMismatch
from peerdp.domain import dp_states
from peerdp.domain.backoff import backoff_delay
from peerdp.dp.damage import (
    DEFAULT_VALIDATE_INTERVAL_S,
    checked_validate_interval,
    damage_message,
    start_damage_threads,
)
from peerdp.dp.disk_full import answer_disk_full
from peerdp.dp.metrics import add_metrics_route
from peerdp.dp.routes import ContentService, content_options
from peerdp.dp.store import DPStore, MissingObjects, VersionCheck
from peerdp.dp.transfer_limit import TransferLimit, follow
from peerdp.dp.zerocopy import server_config
from peerdp.logs import bind_process, get_logger
from peerdp.machine.listen import announce_up, keep_url, listen
from peerdp.machine.mp_client import (
    Identity,
    MachineFacts,
    MPClient,
    MPError,
    check_enrolment_token,
    enrol,
)
from peerdp.machine.reporting import package_state
from peerdp.security.bearer import bearer_token
from peerdp.security.signing import SignatureError, SitePublicKey
from peerdp.security.tls import ServerCertificate

log = get_logger("peerdp.dp")

MAX_MANIFEST_BYTES = 16 << 20
RECEIVED_OBJECTS = Counter(
    "peerdp_dp_objects_received", "Objects pushed to this DP by the distribution manager"
)
RECEIVED_BYTES = Counter("peerdp_dp_bytes_received", "Bytes of objects pushed to this DP")
REFUSED_OBJECTS = Counter(
    "peerdp_dp_objects_refused", "Pushed objects refused because they did not hash right"
)
INSTALLED_VERSIONS = Counter(
    "peerdp_dp_versions_installed", "Package versions made visible by a pushed manifest"
)
REMOVED_VERSIONS = Counter("peerdp_dp_versions_removed", "Package versions removed")


@dataclass(frozen=True)
class DPOptions:
    site_url: str | None  # None: the saved identity's
    token: str | None
    data_dir: Path
    host: str = "127.0.0.1"
    port: int | None = None
    name: str | None = None
    ip_addresses: tuple[str, ...] = ()
    ad_site: str | None = None
    public_url: str | None = None
    # Its own --max-transfers, overriding the site's setting (None: follow the site's).
    max_transfers: int | None = None
    # The longest wait of its policy long-poll (a change of the site's settings ends it).
    policy_wait_s: float = 300.0
    report_retry_s: float = 2.0
    validate_interval_s: float = DEFAULT_VALIDATE_INTERVAL_S
    # HTTPS: the certificate to serve with (None: plain HTTP), and the CA file the site's
    # certificate is checked with (None: the CA pinned at registration, else the system's).
    certificate: ServerCertificate | None = None
    ca_file: Path | None = None
    metrics_token: str | None = None  # None: /metrics is open


# -- the receive endpoints -------------------------------------------------------


def distribution_auth(public_key: SitePublicKey, dp_id: int) -> Callable[[Request], None]:
    """A dependency: the request carries a distribution token for this DP."""

    def check(request: Request) -> None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise HTTPException(
                401, "a distribution token is required", {"WWW-Authenticate": "Bearer"}
            )
        try:
            public_key.check_distribution(token, dp_id)
        except SignatureError as exc:
            raise HTTPException(403, f"distribution token refused: {exc}") from exc

    return check


def receive_router(store: DPStore, public_key: SitePublicKey, dp_id: int) -> APIRouter:
    router = APIRouter(
        prefix="/dp/v1",
        tags=["distribution"],
        dependencies=[Depends(distribution_auth(public_key, dp_id))],
    )

    @router.put("/objects/{sha256}")
    async def put_object(sha256: str, request: Request) -> dict[str, Any]:
        """Store one file's bytes; kept only if they hash to `sha256` (else 422)."""
        if not is_sha256(sha256):
            raise HTTPException(422, "the object name must be a lowercase hex SHA-256")
        writer = await anyio.to_thread.run_sync(store.open_receiver, sha256)
        try:
            async for chunk in request.stream():
                if chunk:
                    await anyio.to_thread.run_sync(writer.write, chunk)
            stored = await anyio.to_thread.run_sync(store.finish_receive, writer)
        except DigestMismatch as exc:
            REFUSED_OBJECTS.inc()
            log.warning("object refused", sha256=sha256, reason=str(exc))
            raise HTTPException(422, f"object refused, nothing kept: {exc}") from exc
        except BaseException:
            # A push starts again from byte 0: what this one left would only take room.
            writer.discard()
            raise
        finally:
            writer.close()
        RECEIVED_OBJECTS.inc()
        RECEIVED_BYTES.inc(stored.size)
        log.debug("object received", sha256=stored.sha256, size=stored.size, added=stored.added)
        return {"sha256": stored.sha256, "size": stored.size, "added": stored.added}

    @router.put("/packages/{package_id}/{source_version}")
    async def put_manifest(package_id: str, source_version: int, request: Request) -> Response:
        """Make a version visible: accepted only when every file is held verified."""
        raw = await _read_capped(request, MAX_MANIFEST_BYTES)
        try:
            manifest = await anyio.to_thread.run_sync(
                store.install, package_id, source_version, raw
            )
        except MissingObjects as exc:
            fields = {"package_id": package_id, "source_version": source_version}
            log.warning("version not published yet", **fields, missing=len(exc.missing))
            return JSONResponse({"detail": str(exc), "missing": exc.missing}, status_code=409)
        except ManifestError as exc:
            log.warning(
                "manifest refused",
                package_id=package_id,
                source_version=source_version,
                reason=str(exc),
            )
            raise HTTPException(422, f"manifest refused: {exc}") from exc
        INSTALLED_VERSIONS.inc()
        log.info(
            "package published",
            package_id=package_id,
            source_version=source_version,
            files=len(manifest.files),
            bytes_total=manifest.total_size,
        )
        return JSONResponse(
            {
                "package_id": package_id,
                "source_version": source_version,
                "manifest_digest": manifest.digest(),
            }
        )

    @router.delete("/packages/{package_id}/{source_version}", status_code=204)
    async def delete_version(package_id: str, source_version: int) -> Response:
        """Delete a version, and every object no other held version needs."""
        if not await anyio.to_thread.run_sync(store.remove, package_id, source_version):
            raise HTTPException(404, f"{package_id} version {source_version} is not held here")
        REMOVED_VERSIONS.inc()
        log.info("package deleted", package_id=package_id, source_version=source_version)
        return Response(status_code=204)

    @router.get("/inventory")
    async def inventory() -> dict[str, Any]:
        """The versions held (with manifest digests) and the objects held verified."""
        held: dict[str, Any] = await anyio.to_thread.run_sync(store.inventory)
        return {"dp_id": dp_id, **held}

    return router


async def _read_capped(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, f"a manifest may be at most {limit} bytes")
    return bytes(body)


def create_dp_app(
    store: DPStore,
    identity: Identity,
    max_transfers: int | None,
    metrics_token: str | None = None,
    *,
    tls: bool = False,
) -> FastAPI:
    """The standard DP's app: `/content`, the receive endpoints, health and metrics."""
    assert identity.dp_id is not None
    app = FastAPI(title=f"peerdp standard DP {identity.name}", docs_url=None, redoc_url=None)
    content = ContentService(store, identity.public_key, content_options(max_transfers, tls=tls))
    app.state.content_service = content
    app.include_router(content.router())
    app.include_router(receive_router(store, identity.public_key, identity.dp_id))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "name": identity.name, "dp_id": identity.dp_id}

    add_metrics_route(app, metrics_token)
    answer_disk_full(app, store.root)
    return app


# -- the start-up report ------------------------------------------------------------


@dataclass
class StartReport:
    """Tells the MP that this DP is up and what the start-up check found, retrying until
    the MP takes it. Being up has the site retry at once what it could not send while this
    DP was down, rather than at the end of the row's backoff."""

    mp: MPClient
    store: DPStore
    checks: list[VersionCheck]
    retry_s: float = 2.0
    announce: bool = False  # tell the site first that this DP is up (once)
    sent: threading.Event = field(default_factory=threading.Event)

    def run(self, stop: threading.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                self.send()
                self.sent.set()
                return
            except MPError as exc:
                attempt += 1
                delay = backoff_delay(attempt, self.retry_s, cap_s=60.0)
                log.warning("start-up report not sent", retry_in_s=round(delay, 3), reason=str(exc))
                stop.wait(delay)

    def send(self) -> None:
        if self.announce:
            self.announce = not announce_up(self.mp)
        policy = self.mp.policy()
        messages = self.messages(policy)
        if not messages:
            return
        answer = self.mp.status(*messages)
        for message in messages:
            log.info(
                "status reported",
                type=message["type"],
                package_id=message["package_id"],
                source_version=message["source_version"],
                state=message.get("state"),
                detail=message.get("detail"),
            )
        for rejected in answer.get("rejected", []):
            log.info("start-up report refused by the MP", reason=rejected.get("detail"))

    def messages(self, policy: dict[str, Any]) -> list[dict[str, Any]]:
        """`installed` for intact versions on this DP's list, `content_damaged` for damaged
        ones (the site sends them again), `install_retrying` for lost ones."""
        found = {(c.package_id, c.source_version): c for c in self.checks}
        out = []
        for entry in policy.get("packages", []):
            check = found.get((entry["id"], entry["source_version"]))
            if check is not None and not check.intact:
                out.append(damage_message(check, "found at start"))
                continue
            if check is not None:
                state, detail = dp_states.INSTALLED, "held and verified at start"
            elif entry.get("state") == dp_states.INSTALLED:
                state, detail = dp_states.INSTALL_RETRYING, "not in this DP's store at start"
            else:
                continue  # not held yet: the distribution manager sends it
            out.append(package_state(entry["id"], entry["source_version"], state, detail))
        for entry in policy.get("remove", []):
            for package_id, version in self.store.versions():
                if package_id == entry["id"]:
                    self.store.remove(package_id, version)
            detail = "removed at start (to be removed from this DP)"
            out.append(
                package_state(entry["id"], entry["source_version"], dp_states.REMOVED, detail)
            )
        return out


# -- the process -----------------------------------------------------------------------


def serve(options: DPOptions, announce: Callable[[str], None]) -> None:
    """Run the standard DP until SIGTERM (or Ctrl-C).

    `announce` gets the line that says where it listens (and a warning if the site could
    not be told it moved). Raises ConfigError when it cannot register with these options.
    """
    import uvicorn

    from peerdp.net import exit_zero_after_sigterm

    checked_validate_interval(options.validate_interval_s)
    _check_token(options)  # a wrong token is refused before the data dir is made
    writable_data_dir(options.data_dir)
    tls = options.certificate is not None
    sock, url = listen(options.data_dir, options.host, options.port, options.public_url, tls=tls)
    identity = _identity(options, url)
    bind_process(dp=identity.name, dp_id=identity.dp_id)
    store = DPStore(options.data_dir / "content")
    checks = store.check()
    for check in checks:
        fields = {"package_id": check.package_id, "source_version": check.source_version}
        if not check.intact:
            log.warning("damaged version deleted at start", **fields, reason=check.reason)
        else:
            log.info("version held and verified at start", **fields)
    try:
        mp = MPClient(identity, ca_file=options.ca_file)
    except MPError as exc:
        raise ConfigError(str(exc)) from exc
    keep_url(options.data_dir, url, mp, announce)
    report = StartReport(mp, store, checks, retry_s=options.report_retry_s, announce=True)
    stop = threading.Event()
    thread = threading.Thread(target=report.run, args=(stop,), name="report", daemon=True)
    announce(f"peerdp dp {identity.name} listening on {url}")
    thread.start()
    damage_threads = start_damage_threads(store, mp, options.validate_interval_s, stop)
    app = create_dp_app(store, identity, options.max_transfers, options.metrics_token, tls=tls)
    limit = TransferLimit.start(
        app.state.content_service.limiter, "standard", options.max_transfers
    )
    follower = threading.Thread(
        target=follow, args=(mp, limit, stop, options.policy_wait_s), name="policy", daemon=True
    )
    follower.start()
    config = server_config(app, options.certificate)
    exit_zero_after_sigterm()  # the finally below runs; exit code 0
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        stop.set()
        for running in (thread, follower, *damage_threads):
            running.join(timeout=2)
        store.flush()
        mp.close()


def _check_token(options: DPOptions) -> None:
    try:
        check_enrolment_token(
            options.site_url, options.token or "", "standard_dp", options.data_dir, options.ca_file
        )
    except MPError as exc:
        raise ConfigError(str(exc)) from exc


def _identity(options: DPOptions, url: str) -> Identity:
    facts = MachineFacts.detect(options.name, list(options.ip_addresses), options.ad_site)
    if options.token is None and not (options.data_dir / "identity.json").exists():
        raise ConfigError("--token is needed the first time (to register with the site)")
    try:
        identity = enrol(
            options.site_url,
            options.token or "",
            facts,
            options.data_dir,
            url=url,
            ca_file=options.ca_file,
            role="standard_dp",
        )
    except MPError as exc:
        raise ConfigError(str(exc)) from exc
    if identity.role != "standard_dp" or identity.dp_id is None:
        raise ConfigError(
            f"this data directory holds a {identity.role} identity, not a standard DP's"
        )
    return identity
