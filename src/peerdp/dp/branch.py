"""The branch DP: a managed machine that pulls the packages its policy assigns and serves them.

`serve()` binds its socket first (so port 0 works and the URL is known), registers
with that URL, then runs two things until SIGTERM: uvicorn serving the store with
the one ContentService (max-transfers limit, site access tokens), and a worker
thread that long-polls the policy and makes the store match it:

- each assigned package (when `auto_download` is set; otherwise it is reported
  `waiting_for_prestage` until `peerdp branch import` loads it) is pulled from its sources
  (BITS-enabled standard DPs of the site) with download_package: resumable, file
  by file verified, reusing held files, falling back from one source to the next;
  it becomes visible only when the whole version is there, and only if its
  manifest is the one the signed policy's `manifest_digest` names;
- failures are reported `install_retrying` (with the reason) and retried with a
  doubling delay, then `install_failed`; a policy that names a source the failed
  attempt did not have (a standard DP of the site came to hold the version, as after
  a package update) is tried at once, not at the end of the delay;
- a version no source holds yet is waited for, not failed: reported `install_retrying`
  with that reason (again every doubling delay, at most every `--poll-interval`, so
  the site hears from it), never given up on, and pulled as soon as a policy names a
  source;
- packages in `remove` (and any held version no longer assigned) are deleted,
  then reported `removed`;
- the transfer limit follows the site's setting in the policy (`--max-transfers`
  overrides it; dp/transfer_limit.py);
- a held version found damaged (on a read, by content validation every
  `--validate-interval`, or when the policy is applied) is withdrawn, reported
  `content_damaged` (dp/damage.py) and pulled again.

Every pull is logged (`peerdp.branch`, `peerdp.transfer`): started (from which sources,
which attempt), progress, resumed files, verified, published, or failed and when it is
tried again. `/metrics` counts the bytes pulled as they arrive
(`peerdp_branch_pulled_bytes_total`) and shows the pull in progress
(`peerdp_branch_pull_done_bytes` of `peerdp_branch_pull_size_bytes`); the site hears of
the pull in progress too, at most every 2 s (`pull_progress`, dp/pull_reports.py).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Gauge

from peerdp.config import writable_data_dir
from peerdp.content.ids import is_sha256
from peerdp.content.manifest import Manifest
from peerdp.content.objects import ContentError
from peerdp.domain import dp_states
from peerdp.domain.backoff import backoff_delay
from peerdp.dp.damage import (
    DEFAULT_VALIDATE_INTERVAL_S,
    checked_validate_interval,
    start_damage_threads,
)
from peerdp.dp.metrics import add_metrics_route
from peerdp.dp.pull_reports import PullReports
from peerdp.dp.routes import content_options, create_content_app
from peerdp.dp.store import DPStore
from peerdp.dp.transfer_limit import TransferLimit
from peerdp.dp.zerocopy import server_config
from peerdp.logs import bind_process, get_logger
from peerdp.machine.listen import announce_up, keep_url, listen
from peerdp.machine.manifests import ManifestRefused, checked_manifest
from peerdp.machine.mp_client import (
    Identity,
    MachineFacts,
    MPClient,
    MPError,
    PolicyRefused,
    check_enrolment_token,
    enrol,
    load_identity,
    policy_retry_s,
)
from peerdp.machine.reporting import (
    failure_summary,
    package_state,
    send_message,
    send_status,
    transfer_summary,
)
from peerdp.net import exit_zero_after_sigterm
from peerdp.security.tls import ServerCertificate
from peerdp.transfer.download import DownloadFailed, NullProgress, Source, download_package

log = get_logger("peerdp.branch")
# A policy call cut while this DP stops (its connection closed, or the site stopping with
# it) is not reported as the site being unreachable if the stop comes within this time.
STOPPING_GRACE_S = 0.5
# Spreads the retries of a failed policy fetch over time.
_RNG = random.Random()

PULLS = Counter("peerdp_branch_pulls", "Package versions pulled by this branch DP", ["result"])
PULLED_BYTES = Counter(
    "peerdp_branch_pulled_bytes",
    "Bytes this branch DP pulled over the WAN, counted as they arrive",
)
PULL_SIZE = Gauge(
    "peerdp_branch_pull_size_bytes", "Bytes the pull in progress fetches in all (0: none)"
)
PULL_DONE = Gauge(
    "peerdp_branch_pull_done_bytes",
    "Bytes of the pull in progress held so far, resumed partials included (0: none)",
)


class PullGauges(NullProgress):
    """Shows the pull in progress in /metrics."""

    def start(self, total_bytes: int) -> None:
        PULL_DONE.set(0)
        PULL_SIZE.set(total_bytes)

    def advance(self, n: int) -> None:
        PULL_DONE.inc(n)

    def done(self) -> None:
        PULL_SIZE.set(0)
        PULL_DONE.set(0)


NO_SOURCE = "no BITS-enabled standard DP of this site holds it yet"


@dataclass(frozen=True)
class BranchOptions:
    site_url: str | None  # None: the saved identity's
    token: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int | None = None  # None: the port used last time, else any free one
    public_url: str | None = None
    name: str | None = None
    ip_addresses: tuple[str, ...] = ()
    ad_site: str | None = None
    # Its own --max-transfers, overriding the site's setting (None: the site's, else 10).
    max_transfers: int | None = None
    bandwidth_limit: int | None = None
    poll_interval_s: float = 300.0
    retry_base_s: float = 30.0
    max_attempts: int = 10
    validate_interval_s: float = DEFAULT_VALIDATE_INTERVAL_S
    # HTTPS: the certificate to serve with (None: plain HTTP), and the CA file the site's
    # and the standard DPs' certificates are checked with (None: the CA pinned at
    # registration, else the system's).
    certificate: ServerCertificate | None = None
    ca_file: Path | None = None
    metrics_token: str | None = None  # None: /metrics is open


@dataclass(frozen=True)
class Assignment:
    """One entry of the policy's `packages`: a version this DP must hold."""

    package_id: str
    source_version: int
    manifest_digest: str
    manifest: Any
    auto_download: bool
    state: str
    sources: tuple[Source, ...]
    access_token: str

    @property
    def key(self) -> tuple[str, int]:
        return self.package_id, self.source_version

    @classmethod
    def from_policy(cls, entry: dict[str, Any]) -> Assignment:
        return cls(
            package_id=str(entry["id"]),
            source_version=int(entry["source_version"]),
            manifest_digest=str(entry["manifest_digest"]),
            manifest=entry["manifest"],
            auto_download=bool(entry.get("auto_download", True)),
            state=str(entry.get("state", "")),
            sources=tuple(
                Source(str(s["name"]), str(s["url"])) for s in entry["sources"] if s.get("url")
            ),
            access_token=str(entry.get("access_token", "")),
        )


@dataclass
class _Attempts:
    count: int = 0  # failed pulls, towards giving up
    waits: int = 0  # looks that found no source: not failures
    not_before: float = 0.0
    sources: frozenset[Source] = frozenset()  # what the failed attempt had to pull from

    def due(self, a: Assignment) -> bool:
        """Whether to try again now: the delay is over, or a new source holds it."""
        return self.not_before <= time.monotonic() or not set(a.sources) <= self.sources


@dataclass
class BranchWorker:
    """Makes the store hold what the policy assigns; reports each package's state."""

    mp: MPClient
    store: DPStore
    bandwidth_limit: int | None = None
    poll_interval_s: float = 300.0
    retry_base_s: float = 30.0
    max_attempts: int = 10
    limit: TransferLimit | None = None
    # Tell the site first that this DP is up (once): rows that failed only because it did
    # not report (it was down) are assigned again at once.
    announce: bool = False
    _attempts: dict[tuple[str, int], _Attempts] = field(default_factory=dict)
    _drop_errors: dict[tuple[str, int], str] = field(default_factory=dict)
    _noted: set[tuple[str, int]] = field(default_factory=set)

    # -- the loop ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Long-poll the policy and apply each one until `stop` is set."""
        version: int | None = None
        errors = 0
        while not stop.is_set():
            try:
                if self.limit is not None:
                    self.limit.report(self.mp)
                if self.announce:
                    self.announce = not announce_up(self.mp)
                policy = self.mp.policy(since=version, wait=self._wait_s())
                version = int(policy["version"])
                self.apply(policy)
                errors = 0
            except MPError as exc:
                errors += 1
                if stop.wait(STOPPING_GRACE_S):
                    break  # the site or this DP is stopping: nothing failed
                log.warning("policy not received", reason=str(exc))
                if isinstance(exc, PolicyRefused):
                    send_status(self.mp, "policy_refused", detail=str(exc))
                stop.wait(policy_retry_s(exc, errors, 1.0, 60.0, _RNG))
            except Exception:
                errors += 1
                log.exception("applying the policy failed; trying again")
                stop.wait(policy_retry_s(None, errors, 1.0, 60.0, _RNG))

    def _wait_s(self) -> float:
        """Long-poll no longer than until the next retry is due."""
        now = time.monotonic()
        due = [a.not_before - now for a in self._attempts.values()]
        return max(0.0, min([self.poll_interval_s, *due]))

    def apply(self, policy: dict[str, Any]) -> None:
        """Bring the store (and the transfer limit) in line with one verified policy."""
        if self.limit is not None:
            self.limit.apply(policy)
        assignments = [Assignment.from_policy(p) for p in policy.get("packages", [])]
        log.info(
            "policy received",
            policy_version=policy.get("version"),
            packages=[f"{a.package_id} v{a.source_version}" for a in assignments],
            remove=[f"{r.get('id')} v{r.get('source_version')}" for r in policy.get("remove", [])],
        )
        manifests = {a.key: self._manifest_of(a) for a in assignments}
        self._drop_unassigned(set(manifests))
        collect_leftovers(self.store, [m for m in manifests.values() if m is not None])
        for removal in policy.get("remove", []):
            self._report_removed(str(removal["id"]), int(removal["source_version"]))
        for assignment in assignments:
            manifest = manifests[assignment.key]
            if manifest is not None:
                self._install(assignment, manifest)
        live = set(manifests)
        self._attempts = {k: v for k, v in self._attempts.items() if k in live}

    # -- checks and removal ----------------------------------------------------

    def _manifest_of(self, a: Assignment) -> Manifest | None:
        """The assignment's manifest if it is the one the policy signs for; else report."""
        try:
            return checked_manifest(a.manifest, a.manifest_digest, a.package_id, a.source_version)
        except ManifestRefused as exc:
            if a.state not in (dp_states.INSTALL_FAILED, dp_states.INSTALLED):
                self._report(a.package_id, a.source_version, dp_states.INSTALL_FAILED, str(exc))
            log.error(
                "manifest refused",
                package_id=a.package_id,
                source_version=a.source_version,
                reason=str(exc),
            )
            return None

    def _drop_unassigned(self, assigned: set[tuple[str, int]]) -> None:
        self._drop_errors.clear()
        held = self.store.versions()
        # An older version of a package being updated stays until the new one is held:
        # its unchanged files are the new one's too, and must not be pulled again.
        updating = {package_id for package_id, version in assigned - set(held)}
        for key in held:
            if key in assigned or key[0] in updating:
                continue
            try:
                self.store.remove(*key)
                log.info(
                    "package deleted",
                    package_id=key[0],
                    source_version=key[1],
                    reason="no longer assigned",
                )
            except OSError as exc:
                self._drop_errors[key] = f"could not delete: {exc}"

    def _report_removed(self, package_id: str, version: int) -> None:
        failed = [err for (pkg, _), err in self._drop_errors.items() if pkg == package_id]
        if failed:
            self._report(package_id, version, dp_states.REMOVAL_RETRYING, failed[0])
        else:
            self._report(package_id, version, dp_states.REMOVED, "content deleted")

    # -- install -----------------------------------------------------------------

    def _holds(self, manifest: Manifest) -> bool:
        """Whether this exact version is published with every file intact."""
        held = self.store.manifest(manifest.package_id, manifest.source_version)
        if held is None or held.digest() != manifest.digest():
            return False
        if all(self.store.is_verified(f.sha256) for f in manifest.files):
            return True
        # Withdrawn and reported through the store's on_damage; then pulled again.
        self.store.drop_damaged({f.sha256 for f in manifest.files}, "found applying the policy")
        return False

    def _drop_superseded(self, a: Assignment) -> None:
        """Delete the package's other versions, now that the assigned one is held."""
        for package_id, version in self.store.versions():
            if package_id == a.package_id and version != a.source_version:
                try:
                    self.store.remove(package_id, version)
                    log.info(
                        "package deleted",
                        package_id=package_id,
                        source_version=version,
                        reason=f"superseded by v{a.source_version}",
                    )
                except OSError as exc:
                    log.warning(
                        "package not deleted",
                        package_id=package_id,
                        source_version=version,
                        reason=str(exc),
                    )

    def _install(self, a: Assignment, manifest: Manifest) -> None:
        if self._holds(manifest):
            self._drop_superseded(a)
            self._attempts.pop(a.key, None)
            if a.state not in (dp_states.INSTALLED, dp_states.INSTALL_FAILED):
                self._report(*a.key, dp_states.INSTALLED, "content held and verified")
            return
        if a.state == dp_states.INSTALL_FAILED:
            self._attempts.pop(a.key, None)  # an admin refresh starts it again
            return
        if not a.auto_download:
            self._attempts.pop(a.key, None)
            self._note(a, "waiting for an administrator to prestage it (no automatic download)")
            if a.state != dp_states.WAITING_FOR_PRESTAGE:
                detail = (
                    "automatic download is off: waiting for an administrator to prestage it "
                    "(peerdp branch import FILE on this DP)"
                )
                self._report(*a.key, dp_states.WAITING_FOR_PRESTAGE, detail)
            return
        attempts = self._attempts.get(a.key)
        if attempts is not None and (attempts.count >= self.max_attempts or not attempts.due(a)):
            return  # given up (the policy says install_failed next), or not due yet
        self._download(a, manifest)

    def _download(self, a: Assignment, manifest: Manifest) -> None:
        if not a.sources:
            self._wait_for_source(a)
            return
        previous = self._attempts.get(a.key)
        log.info(
            "pull started",
            **_fields(a),
            sources=[s.name for s in a.sources],
            attempt=1 if previous is None else previous.count + 1,
            files=len(manifest.files),
            bytes_total=manifest.total_size,
        )
        try:
            report = download_package(
                manifest,
                a.sources,
                self.store.objects,
                token_for=lambda _source: a.access_token,
                bandwidth_limit=self.bandwidth_limit,
                verify=self.mp.tls,
                on_received=PULLED_BYTES.inc,
                progress=PullReports(self.mp, *a.key, also=PullGauges()),
            )
            self.store.install(a.package_id, a.source_version, manifest.to_bytes())
        except DownloadFailed as exc:
            self._attempt_failed(a, failure_summary(exc))
            return
        except (ContentError, OSError) as exc:
            self._attempt_failed(a, f"{type(exc).__name__}: {exc}")
            return
        self._attempts.pop(a.key, None)
        self._drop_superseded(a)
        PULLS.labels("installed").inc()
        detail = (
            f"downloaded and verified {len(manifest.files)} file(s): "
            f"{transfer_summary(report, manifest.total_size)}"
        )
        log.info(
            "package published",
            **_fields(a),
            files=len(manifest.files),
            network_bytes=report.network_bytes,
            bytes_total=manifest.total_size,
            elapsed_s=round(report.elapsed_s, 3),
        )
        if a.state != dp_states.INSTALLED:
            pulled = {name: n for name, n in report.bytes_by_source.items() if n}
            self._report(*a.key, dp_states.INSTALLED, detail, bytes_by_dp=pulled or None)

    def _wait_for_source(self, a: Assignment) -> None:
        """No source holds it yet: say so, and look again when a policy names one (the
        long-poll wakes this DP) or, to keep the site hearing from it, after a delay."""
        attempts = self._attempts.setdefault(a.key, _Attempts())
        attempts.waits += 1
        attempts.sources = frozenset()
        delay = min(backoff_delay(attempts.waits, self.retry_base_s), self.poll_interval_s)
        attempts.not_before = time.monotonic() + delay
        log.info("%s v%d: waiting: %s", *a.key, NO_SOURCE)
        detail = (
            f"waiting: {NO_SOURCE}; it is pulled as soon as one does "
            f"(looked at again in {delay:.0f} s)"
        )
        self._report(*a.key, dp_states.INSTALL_RETRYING, detail)

    def _attempt_failed(self, a: Assignment, reason: str) -> None:
        """Count a failed pull and report it; the last one gives up (`install_failed`)."""
        attempts = self._attempts.setdefault(a.key, _Attempts())
        attempts.count += 1
        attempts.sources = frozenset(a.sources)
        PULLS.labels("failed").inc()
        delay = backoff_delay(attempts.count, self.retry_base_s)
        attempts.not_before = time.monotonic() + delay
        if attempts.count >= self.max_attempts:
            detail = f"gave up after {attempts.count} attempt(s): {reason}"
            log.error("pull failed", **_fields(a), attempt=attempts.count, reason=reason)
            self._report(*a.key, dp_states.INSTALL_FAILED, detail)
            return
        log.warning(
            "pull failed",
            **_fields(a),
            attempt=attempts.count,
            reason=reason,
            next_attempt_s=round(delay, 3),
        )
        detail = (
            f"attempt {attempts.count} of {self.max_attempts} failed: {reason}; "
            f"next attempt in {delay:.0f} s"
        )
        self._report(*a.key, dp_states.INSTALL_RETRYING, detail)

    def _note(self, a: Assignment, message: str) -> None:
        if a.key not in self._noted:
            self._noted.add(a.key)
            log.info(message, **_fields(a))

    def _report(self, package_id: str, version: int, state: str, detail: str, **extra: Any) -> None:
        message = package_state(package_id, version, state, detail[:4000])
        send_message(self.mp, {**message, **extra})


def _fields(a: Assignment) -> dict[str, Any]:
    return {"package_id": a.package_id, "source_version": a.source_version}


def collect_leftovers(store: DPStore, keep: list[Manifest]) -> None:
    """Delete objects and partials that no held version and no assignment needs."""
    needed = {f.sha256 for m in keep for f in m.files}
    for key in store.versions():
        held = store.manifest(*key)
        if held is not None:
            needed.update(f.sha256 for f in held.files)
    for sha256 in list(store.objects.iter_objects()):
        if sha256 not in needed:
            store.objects.remove(sha256)
    for partial in list(store.objects.partial_dir.iterdir()):
        sha256 = partial.name.removesuffix(".part")
        if is_sha256(sha256) and sha256 not in needed:
            store.objects.discard_partial(sha256)


# -- the process -------------------------------------------------------------------


def serve(options: BranchOptions, announce: Callable[[str], None]) -> None:
    """Run the branch DP until SIGTERM (or Ctrl-C).

    `announce` gets the line that says where it listens (and a warning if the site could
    not be told it moved).
    """
    checked_validate_interval(options.validate_interval_s)
    # A wrong token is refused before the data directory is made or written to.
    check_enrolment_token(
        options.site_url, options.token, "branch_dp", options.data_dir, options.ca_file
    )
    writable_data_dir(options.data_dir)
    tls = options.certificate is not None
    sock, url = listen(options.data_dir, options.host, options.port, options.public_url, tls=tls)
    identity = _identity(options, url)
    bind_process(dp=identity.name, dp_id=identity.dp_id)
    store = DPStore(options.data_dir / "store")
    damaged = [found for found in store.check() if not found.intact]
    mp = MPClient(identity, ca_file=options.ca_file)
    keep_url(options.data_dir, url, mp, announce)
    app = content_app(store, identity, options.max_transfers, options.metrics_token, tls=tls)
    limiter = app.state.content_service.limiter
    worker = BranchWorker(
        mp,
        store,
        bandwidth_limit=options.bandwidth_limit,
        poll_interval_s=options.poll_interval_s,
        retry_base_s=options.retry_base_s,
        max_attempts=options.max_attempts,
        limit=TransferLimit.start(limiter, "branch", options.max_transfers),
        announce=True,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="policy", daemon=True)
    announce(f"peerdp branch {identity.name} listening on {url}")
    thread.start()
    damage_threads = start_damage_threads(
        store, mp, options.validate_interval_s, stop, found_at_start=damaged
    )
    try:
        _serve_http(app, sock, options.certificate)
    finally:
        stop.set()
        for running in (thread, *damage_threads):
            running.join(timeout=2)
        mp.close()
    log.info(f"branch DP {identity.name} stopped")


def _identity(options: BranchOptions, url: str) -> Identity:
    if not options.token and load_identity(options.data_dir) is None:
        raise MPError("no identity in the data directory yet: pass --token to register")
    facts = MachineFacts.detect(options.name, list(options.ip_addresses), options.ad_site)
    identity = enrol(
        options.site_url,
        options.token,
        facts,
        options.data_dir,
        url=url,
        ca_file=options.ca_file,
        role="branch_dp",
    )
    if identity.role != "branch_dp":
        raise MPError(f"{options.data_dir} holds a {identity.role} identity, not a branch DP's")
    return identity


def _serve_http(app: FastAPI, sock: socket.socket, certificate: ServerCertificate | None) -> None:
    import uvicorn

    config = server_config(app, certificate)
    exit_zero_after_sigterm()  # the caller's cleanup runs, and the exit code is 0
    uvicorn.Server(config).run(sockets=[sock])


def content_app(
    store: DPStore,
    identity: Identity,
    max_transfers: int | None,
    metrics_token: str | None = None,
    *,
    tls: bool = False,
) -> FastAPI:
    """`/content` over the store (the site's access tokens), `/health` and `/metrics`."""
    app = create_content_app(store, identity.public_key, content_options(max_transfers, tls=tls))

    def health() -> dict[str, str]:
        return {"status": "ok", "name": identity.name}

    app.add_api_route("/health", health, methods=["GET"])
    add_metrics_route(app, metrics_token)
    return app
