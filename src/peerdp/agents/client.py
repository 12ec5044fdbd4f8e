"""The client agent: policy, advertisements, content location, download, run, status.

One evaluation cycle takes the verified policy and, for each advertisement that
is due and has not already run successfully at its source version:

1. uses the cached content if this exact version (manifest digest) is held, else
   asks the MP where the content is; an empty answer is reported as
   `content_location_failed` (state: the MP's reason; detail: its reason and detail)
   and the attempt fails, to be retried (the seed's first attempt);
2. fetches the manifest from the first DP that serves the one the signed policy
   names, then downloads with download_package from the DPs in the MP's order
   (a 503 or an error moves on to the next), every file's SHA-256 verified;
3. copies the files, verified once more, into `<data-dir>/packages/<id>/<version>/`
   and runs the program's command line there (shell) with its timeout, reporting
   `program_started` (with the bytes downloaded from each DP, `bytes_by_dp`), then
   `program_succeeded` / `program_failed` with the exit code and where the content came
   from. Exit code 0, 3010 and 1641 (restart required:
   state `restart_required`) and the program's own success codes are success.

Retries (domain/programs.py): a failed attempt is reported with its number and the
time of the next one (`attempt`, `next_attempt_at`), which comes after a growing
interval; after the last attempt allowed, `advertisement_failed` (state `failed`) says
why, and the advertisement is not tried again until its policy entry changes: a new
source version, a changed advertisement or program, or an administrator's rerun
(`rerun` in the policy, which also runs a succeeded advertisement again). The attempts
are kept in the run history, so a restarted agent goes on where it was. A cycle run
with `wait_for_retry=False` (`--once`) tries now what waits for its retry time.

Everything it decides is logged (`peerdp.client`): each advertisement's outcome, the
MP's answer (the DPs in order, or the reason none), the program's start, exit code and
duration; downloads log their own progress (`peerdp.transfer`) and every status message
sent is logged (`peerdp.status`).

Scheduling: an advertisement is due once `available_at` has passed and, when it
has a `mandatory_at`, once that has passed too (an agent has no user to start an
optional program; a future mandatory time means "not yet").
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peerdp.agents.client_cache import PackageCache
from peerdp.config import writable_data_dir
from peerdp.content.manifest import Manifest
from peerdp.content.objects import ContentError, DigestMismatch
from peerdp.domain.policy_polling import PolicyPolling
from peerdp.domain.programs import Attempts, FailureKind, RetryPolicy, exit_result
from peerdp.domain.timestamps import parse_rfc3339, rfc3339
from peerdp.logs import bind_process, get_logger
from peerdp.machine.manifests import ManifestRefused, checked_manifest
from peerdp.machine.mp_client import (
    Identity,
    MachineFacts,
    MPClient,
    MPError,
    PolicyRefused,
    policy_retry_s,
)
from peerdp.machine.reporting import failure_summary, send_status, transfer_summary
from peerdp.security.signing import json_digest
from peerdp.transfer.download import (
    DownloadFailed,
    DownloadReport,
    ProgressSink,
    Source,
    download_package,
    fetch_manifest,
)

log = get_logger("peerdp.client")

STATE_FILE = "client-state.json"
OUTPUT_TAIL = 800

SUCCEEDED = "succeeded"
ALREADY_DONE = "already_done"
FAILED = "failed"
NOT_DUE = "not_due"
WAITING = "waiting_to_retry"
RERUN_HINT = (
    "it runs again when the package gets a new source version, the advertisement or its "
    "program changes, or an administrator reruns it (peerdp advertisement rerun)"
)


@dataclass(frozen=True)
class ClientOptions:
    # Failed attempts: how soon, how often (also how soon a failed policy poll is retried).
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval_s: float = 3600.0
    cache_bytes: int = 5 * 1024**3
    # Shows a download's progress, given what is downloaded ("PS100001 v3"); None: nothing.
    progress: Callable[[str], ProgressSink] | None = None


@dataclass(frozen=True)
class Advertisement:
    id: int
    name: str
    package_id: str
    source_version: int
    manifest_digest: str
    program_name: str
    command_line: str
    timeout_s: int
    available_at: datetime
    mandatory_at: datetime | None
    success_exit_codes: tuple[int, ...] = ()
    rerun: int = 0  # the latest administrator's rerun for this client
    key: str = ""  # digest of its policy entry: a new one starts its attempts afresh

    @classmethod
    def from_policy(cls, entry: dict[str, Any]) -> Advertisement:
        program, schedule = entry["program"], entry["schedule"]
        mandatory = schedule.get("mandatory_at")
        return cls(
            id=int(entry["id"]),
            name=str(entry["name"]),
            package_id=str(entry["package_id"]),
            source_version=int(entry["source_version"]),
            manifest_digest=str(entry["manifest_digest"]),
            program_name=str(program["name"]),
            command_line=str(program["command_line"]),
            timeout_s=int(program["timeout_s"]),
            available_at=parse_rfc3339(schedule["available_at"]),
            mandatory_at=parse_rfc3339(mandatory) if mandatory else None,
            success_exit_codes=tuple(int(c) for c in program.get("success_exit_codes", ())),
            rerun=int(entry.get("rerun", 0)),
            key=json_digest(entry),
        )

    def due_at(self) -> datetime:
        return max(self.available_at, self.mandatory_at or self.available_at)

    def ids(self) -> dict[str, Any]:
        """The fields every status message about this advertisement carries."""
        return {
            "advertisement_id": self.id,
            "package_id": self.package_id,
            "source_version": self.source_version,
        }


@dataclass(frozen=True)
class Outcome:
    advertisement_id: int
    name: str
    package_id: str
    source_version: int
    result: str
    detail: str = ""
    exit_code: int | None = None
    restart_required: bool = False

    @classmethod
    def of(
        cls,
        adv: Advertisement,
        result: str,
        detail: str = "",
        exit_code: int | None = None,
        restart_required: bool = False,
    ) -> Outcome:
        return cls(
            adv.id,
            adv.name,
            adv.package_id,
            adv.source_version,
            result,
            detail,
            exit_code,
            restart_required,
        )

    @property
    def ok(self) -> bool:
        return self.result in (SUCCEEDED, ALREADY_DONE, NOT_DUE)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Failed(Exception):
    """This attempt cannot go on: the status message to report, not yet sent."""

    def __init__(self, type_: str, detail: str, fields: dict[str, Any]) -> None:
        super().__init__(detail)
        self.type_ = type_
        self.detail = detail
        self.fields = fields


class RunHistory:
    """`<data-dir>/client-state.json`: which advertisements ran, at which source version
    and rerun, and the failed attempts of those still trying (or failed)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STATE_FILE
        try:
            self._data: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._data = {}
        self._data.setdefault("succeeded", {})
        self._data.setdefault("received", {})
        self._data.setdefault("attempts", {})

    def succeeded(self, adv: Advertisement) -> bool:
        done = self._data["succeeded"].get(str(adv.id))
        if isinstance(done, int):  # written before reruns existed
            done = {"source_version": done, "rerun": 0}
        return bool(done == {"source_version": adv.source_version, "rerun": adv.rerun})

    def record_success(self, adv: Advertisement) -> None:
        self._data["succeeded"][str(adv.id)] = {
            "source_version": adv.source_version,
            "rerun": adv.rerun,
        }
        self._data["attempts"].pop(str(adv.id), None)
        self._save()

    def attempts(self, adv: Advertisement) -> Attempts:
        """Its failed attempts, unless its policy entry changed since (then none)."""
        held = self._data["attempts"].get(str(adv.id))
        if not isinstance(held, dict) or held.get("key") != adv.key:
            return Attempts()
        return Attempts.from_json(held)

    def record_attempts(self, adv: Advertisement, attempts: Attempts) -> None:
        self._data["attempts"][str(adv.id)] = {"key": adv.key, **attempts.to_json()}
        self._save()

    def first_seen(self, adv: Advertisement) -> bool:
        """True the first time this advertisement is seen at this source version."""
        if self._data["received"].get(str(adv.id)) == adv.source_version:
            return False
        self._data["received"][str(adv.id)] = adv.source_version
        self._save()
        return True

    def _save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        with os.fdopen(fd, "w") as out:
            json.dump(self._data, out)
        os.replace(tmp, self.path)


class ClientAgent:
    def __init__(
        self,
        identity: Identity,
        mp: MPClient,
        facts: MachineFacts,
        data_dir: Path,
        options: ClientOptions,
    ) -> None:
        self.identity = identity
        self.mp = mp
        self.facts = facts
        self.data_dir = data_dir
        self.options = options
        self.history = RunHistory(data_dir)
        self.cache = PackageCache(data_dir)
        self.busy = threading.Event()  # set while a cycle runs (not while waiting for policy)
        self._rng = random.Random()  # spreads polls and retries over time
        bind_process(client=identity.name)

    # -- cycles -------------------------------------------------------------------

    def cycle(
        self,
        policy: dict[str, Any],
        stop: threading.Event | None = None,
        *,
        wait_for_retry: bool = False,
    ) -> list[Outcome]:
        """Evaluate every advertisement of a verified policy once (until `stop`).

        `wait_for_retry`: leave an advertisement whose next attempt is not due yet (the
        service); else try it now (`--once`). One that failed for good is never tried.
        """
        outcomes = []
        for entry in policy.get("advertisements", []):
            if stop is not None and stop.is_set():
                break
            adv = Advertisement.from_policy(entry)
            outcome = self.evaluate(adv, wait_for_retry=wait_for_retry)
            # Info whatever the result: `--once` prints the outcomes themselves.
            log.info(
                "advertisement evaluated",
                **adv.ids(),
                advertisement=adv.name,
                result=outcome.result,
                exit_code=outcome.exit_code,
                detail=outcome.detail,
            )
            outcomes.append(outcome)
        return outcomes

    def run_forever(self, stop: threading.Event) -> None:
        """Fetch policy and run cycles until `stop`: each failed advertisement is tried
        again at its next attempt's time, and at once when its policy entry changes.

        The policy says how to fetch it (domain/policy_polling.py): by a long-poll held at
        the site, or by a poll every interval plus a random delay that does not wait; both
        name the version held, so an unchanged policy costs the site a 304. A failed fetch
        is tried again after a jittered delay (the site's Retry-After when it gives one)."""
        held: dict[str, Any] | None = None
        failures = 0
        next_poll_at = 0.0  # interval mode: when the next poll is due (monotonic)
        while not stop.is_set():
            polling = PolicyPolling.from_policy(held.get("polling") if held else None)
            wait = self._next_wait(held) if held is not None else 0.0
            between_polls = held is not None and polling.by_interval
            # Interval mode holds no connection: sleep here until the next poll, or until
            # an advertisement or a retry is due (it runs on the policy held).
            if between_polls and stop.wait(min(wait, max(0.0, next_poll_at - time.monotonic()))):
                break
            if held is None or not polling.by_interval or time.monotonic() >= next_poll_at:
                try:
                    fetched = self._fetch_policy(held, polling, wait)
                except MPError as exc:
                    failures += 1
                    report_policy_error(self.mp, exc)
                    retry = self.options.retry
                    stop.wait(
                        policy_retry_s(
                            exc, failures, retry.interval_s, retry.max_interval_s, self._rng
                        )
                    )
                    continue
                failures = 0
                then = PolicyPolling.from_policy(fetched.get("polling"))
                next_poll_at = time.monotonic() + then.next_poll_s(self._rng)
                held = fetched
            self.busy.set()
            try:
                self.cycle(held, stop, wait_for_retry=True)
            except Exception:  # a bug or a full disk must not end the agent
                log.exception("evaluating the policy failed; trying again")
                stop.wait(self.options.retry.interval_s)
            finally:
                self.busy.clear()

    def _fetch_policy(
        self, held: dict[str, Any] | None, polling: PolicyPolling, wait: float
    ) -> dict[str, Any]:
        """The policy now (interval mode) or at its next change within `wait` (long-poll);
        the one `held` if the site says it is unchanged."""
        if polling.by_interval:
            policy = self.mp.policy(wait=0, held=held)
        else:
            since = int(held["version"]) if held is not None else None
            policy = self.mp.policy(since=since, wait=wait, held=held)
        adverts = policy.get("advertisements", [])
        log.info(
            "policy received" if policy is not held else "policy unchanged",
            policy_version=int(policy["version"]),
            advertisements=[f"{a.get('id')} {a.get('package_id')}" for a in adverts],
            polling=PolicyPolling.from_policy(policy.get("polling")).mode,
        )
        return policy

    def _next_wait(self, policy: dict[str, Any]) -> float:
        """Until the next poll, the next due time or the next attempt, whichever is first."""
        waits = [self.options.poll_interval_s]
        now = datetime.now(UTC)
        for entry in policy.get("advertisements", []):
            adv = Advertisement.from_policy(entry)
            if adv.due_at() > now:
                waits.append((adv.due_at() - now).total_seconds())
            if self.history.succeeded(adv):
                continue
            attempts = self.history.attempts(adv)
            if attempts.failed is None and attempts.next_attempt_at is not None:
                waits.append((attempts.next_attempt_at - now).total_seconds())
        return max(0.0, min(waits))

    # -- one advertisement -----------------------------------------------------------

    def evaluate(self, adv: Advertisement, *, wait_for_retry: bool = False) -> Outcome:
        if self.history.succeeded(adv):
            return Outcome.of(adv, ALREADY_DONE, "ran successfully at this source version")
        now = datetime.now(UTC)
        if adv.due_at() > now:
            return Outcome.of(adv, NOT_DUE, f"due at {adv.due_at().isoformat()}")
        attempts = self.history.attempts(adv)
        if attempts.failed is not None:
            return Outcome.of(adv, FAILED, f"{attempts.failed}; {RERUN_HINT}")
        if wait_for_retry and not attempts.due(now):
            assert attempts.next_attempt_at is not None
            return Outcome.of(adv, WAITING, f"next attempt at {rfc3339(attempts.next_attempt_at)}")
        if self.history.first_seen(adv):
            self._status("advertisement_received", adv, f"program {adv.program_name}")
        try:
            manifest, origin, by_dp = self._content(adv)
            folder = self.cache.materialise(manifest)
        except _Failed as exc:
            return self._failed(adv, attempts, "content", exc.detail, exc.type_, **exc.fields)
        except DigestMismatch as exc:
            detail = f"cached content refused: {exc}; it will be downloaded again"
            return self._failed(adv, attempts, "content", detail, "content_refused")
        except (ContentError, OSError) as exc:
            detail = f"cannot store the content: {type(exc).__name__}: {exc}"
            return self._failed(adv, attempts, "content", detail, "content_download_failed")
        outcome = self._execute(adv, folder, origin, attempts, by_dp)
        self.cache.evict(self.options.cache_bytes, keep=(adv.package_id, adv.source_version))
        return outcome

    def _failed(
        self,
        adv: Advertisement,
        attempts: Attempts,
        kind: FailureKind,
        reason: str,
        type_: str,
        *,
        detail: str | None = None,
        **fields: Any,
    ) -> Outcome:
        """Count a failed attempt, report it (`type_`, with its number and the next one's
        time) and, after the last one allowed, `advertisement_failed`."""
        policy = self.options.retry
        after = attempts.after_failure(kind, reason, datetime.now(UTC), policy)
        self.history.record_attempts(adv, after)
        number, limit = after.failures(kind), policy.limit(kind)
        next_at = rfc3339(after.next_attempt_at) if after.next_attempt_at else None
        when = f"next attempt at {next_at}" if next_at else "no more attempts"
        fields.setdefault("state", "retrying" if next_at else FAILED)
        self._status(
            type_,
            adv,
            f"{detail or reason} (attempt {number} of {limit}; {when})",
            attempt=number,
            next_attempt_at=next_at,
            **fields,
        )
        exit_code = fields.get("exit_code")
        if after.failed is None:
            return Outcome.of(adv, FAILED, f"{detail or reason}; {when}", exit_code)
        self._status(
            "advertisement_failed",
            adv,
            f"{after.failed}; {RERUN_HINT}",
            state=FAILED,
            attempt=number,
            exit_code=exit_code,
        )
        return Outcome.of(adv, FAILED, after.failed, exit_code)

    def _content(self, adv: Advertisement) -> tuple[Manifest, str, dict[str, int]]:
        """The verified manifest with all its files in the cache, where they came from, and
        the bytes downloaded from each DP (none: all were in the cache)."""
        manifest = self.cache.cached(adv.package_id, adv.source_version, adv.manifest_digest)
        if manifest is not None:
            self.cache.remember(manifest)
            return manifest, "the local cache", {}
        dps = self._locate(adv)
        manifest, sources = self._manifest_from(adv, dps)
        report = self._download(adv, manifest, sources)
        self.cache.remember(manifest)
        by_dp = {name: n for name, n in report.bytes_by_source.items() if n}
        return manifest, transfer_summary(report, manifest.total_size), by_dp

    def _locate(self, adv: Advertisement) -> list[dict[str, Any]]:
        try:
            facts = self.facts
            answer = self.mp.content_location(
                adv.id, adv.package_id, adv.source_version, facts.ip_addresses, facts.ad_site
            )
        except MPError as exc:
            detail = f"content location request failed: {exc}"
            raise _Failed("content_location_failed", detail, {}) from exc
        dps = [dp for dp in answer.get("distribution_points", []) if dp.get("url")]
        if not dps:
            reason = str(answer.get("reason") or "no_content_accessible")
            detail = f"{reason}: {answer.get('detail') or 'no distribution point answered'}"
            log.info("content not located", **adv.ids(), reason=reason, detail=detail)
            raise _Failed("content_location_failed", detail, {"state": reason})
        log.info(
            "content located",
            **adv.ids(),
            dps=[f"{dp.get('name')} ({dp.get('kind')}, {dp.get('locality')})" for dp in dps],
        )
        return dps

    def _manifest_from(
        self, adv: Advertisement, dps: list[dict[str, Any]]
    ) -> tuple[Manifest, list[tuple[Source, str]]]:
        """The manifest from the first DP serving the one the policy names; the DPs in order."""
        sources = [(Source(str(dp["name"]), str(dp["url"])), str(dp["access_token"])) for dp in dps]
        problems = []
        for source, token in sources:
            try:
                raw = fetch_manifest(
                    source, adv.package_id, adv.source_version, token, verify=self.mp.tls
                )
                data = json.loads(raw)
                digest, pkg, version = adv.manifest_digest, adv.package_id, adv.source_version
                return checked_manifest(data, digest, pkg, version), sources
            except (DownloadFailed, ManifestRefused, ValueError) as exc:
                problems.append(f"{source.name}: {exc}")
        detail = "no DP served the manifest the policy names: " + "; ".join(problems)
        raise _Failed("content_download_failed", detail, {})

    def _download(
        self, adv: Advertisement, manifest: Manifest, sources: list[tuple[Source, str]]
    ) -> DownloadReport:
        tokens = {source.name: token for source, token in sources}
        progress = None
        if self.options.progress is not None:
            progress = self.options.progress(f"{adv.package_id} v{adv.source_version}")
        try:
            return download_package(
                manifest,
                [source for source, _ in sources],
                self.cache.store,
                token_for=lambda source: tokens[source.name],
                progress=progress,
                verify=self.mp.tls,
            )
        except DownloadFailed as exc:
            raise _Failed("content_download_failed", failure_summary(exc), {}) from exc

    # -- running the program -----------------------------------------------------------

    def _execute(
        self,
        adv: Advertisement,
        folder: Path,
        origin: str,
        attempts: Attempts,
        by_dp: dict[str, int],
    ) -> Outcome:
        run = attempts.program_failures + 1
        # The bytes from each DP: the site counts what each DP served, and the source.
        self._status(
            "program_started",
            adv,
            f"{adv.command_line} in {folder}",
            attempt=run,
            bytes_by_dp=by_dp or None,
        )
        log.info(
            "program started",
            **adv.ids(),
            program=adv.program_name,
            command_line=adv.command_line,
            folder=str(folder),
            timeout_s=adv.timeout_s,
            attempt=run,
        )
        started = time.monotonic()
        exit_code, output = run_program(adv, folder, self._log_path(adv))
        log.info(
            "program exited",
            **adv.ids(),
            program=adv.program_name,
            exit_code=exit_code,
            timed_out=exit_code is None,
            duration_s=round(time.monotonic() - started, 3),
            output_log=str(self._log_path(adv)),
        )
        detail = f"content from {origin}"
        result = exit_result(exit_code, adv.success_exit_codes)
        if result.succeeded:
            self.history.record_success(adv)
            state = "restart_required" if result.restart_required else SUCCEEDED
            if exit_code != 0:
                detail = f"exit code {exit_code}: {result.words}; {detail}"
            self._status(
                "program_succeeded", adv, detail, exit_code=exit_code, state=state, attempt=run
            )
            return Outcome.of(adv, SUCCEEDED, detail, exit_code, result.restart_required)
        why = (
            f"timed out after {adv.timeout_s} s" if exit_code is None else f"exit code {exit_code}"
        )
        return self._failed(
            adv,
            attempts,
            "program",
            why,
            "program_failed",
            detail=f"{why}; {detail}; output: {output}",
            exit_code=exit_code,
        )

    def _log_path(self, adv: Advertisement) -> Path:
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        return logs / f"advertisement-{adv.id}-v{adv.source_version}.log"

    # -- status -----------------------------------------------------------------------

    def _status(self, type_: str, adv: Advertisement, detail: str, **fields: Any) -> None:
        send_status(self.mp, type_, detail=detail[:4000], **adv.ids(), **fields)


def run_until_stopped(agent: ClientAgent, stop: threading.Event, grace_s: float = 30.0) -> None:
    """Run the agent until `stop` is set (by a signal handler).

    An agent waiting for policy ends at once; one in the middle of a cycle gets `grace_s`
    to finish the advertisement in hand (a started program is not killed).
    """
    thread = threading.Thread(target=agent.run_forever, args=(stop,), name="client", daemon=True)
    thread.start()
    while thread.is_alive() and not stop.wait(0.5):
        pass
    if agent.busy.is_set():
        thread.join(grace_s)


def run_program(adv: Advertisement, folder: Path, log_path: Path) -> tuple[int | None, str]:
    """Run the command line in `folder`; (exit code or None on timeout, tail of the output).

    A POSIX exit status has 8 bits (`exit 3010` ends with 194), so a program may report
    a wider exit code, such as 3010 (success, restart required), by writing it to the
    file `$PEERDP_EXIT_CODE_FILE`: when that file holds a number, it is the exit code.
    """
    code_file = log_path.with_suffix(".exit-code")
    code_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PEERDP_PACKAGE_ID": adv.package_id,
        "PEERDP_SOURCE_VERSION": str(adv.source_version),
        "PEERDP_ADVERTISEMENT_ID": str(adv.id),
        "PEERDP_PACKAGE_DIR": str(folder),
        "PEERDP_EXIT_CODE_FILE": str(code_file),
    }
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            adv.command_line,
            shell=True,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            exit_code: int | None = process.wait(timeout=adv.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            exit_code = None
    if exit_code is not None:
        exit_code = _reported_exit_code(code_file, exit_code)
    return exit_code, _tail(log_path)


def _reported_exit_code(code_file: Path, status: int) -> int:
    """The exit code the program wrote to its exit-code file, else its exit status."""
    try:
        text = code_file.read_text(errors="replace").strip()
    except FileNotFoundError:
        return status
    except OSError as exc:
        log.warning("cannot read %s: %s; using exit status %d", code_file, exc, status)
        return status
    try:
        code = int(text)
    except ValueError:
        code = None
    if code is None or not -(2**31) <= code < 2**31:
        log.warning("%s holds %r, not an exit code; using exit status %d", code_file, text, status)
        return status
    return code


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - OUTPUT_TAIL))
        return fh.read().decode(errors="replace").strip()


def report_policy_error(mp: MPClient, exc: MPError) -> None:
    log.error("policy not received", reason=str(exc))
    if isinstance(exc, PolicyRefused):
        send_status(mp, "policy_refused", detail=str(exc))


@contextlib.contextmanager
def single_instance(data_dir: Path) -> Iterator[None]:
    """Hold `<data-dir>/client.lock`: one agent per data directory."""
    writable_data_dir(data_dir)
    with open(data_dir / "client.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another client agent is using {data_dir}") from None
        yield
