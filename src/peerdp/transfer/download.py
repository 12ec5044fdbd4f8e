"""Resumable, verified, multi-source package download (branch DPs and clients).

Each file of a manifest is fetched into the object store's partial file for
its SHA-256 and becomes visible only once the whole file hashes right. A file
the store already holds, from any package or version, is never fetched again.

Sources are tried in the caller's order (the MP's preference order). A source
that fails a file (connection error, 5xx, 503 busy, 404, wrong bytes) is left
for the next one; the list is walked a bounded number of rounds before the
download fails with every reason collected. A resumed request carries
``If-Range: "<sha256>"`` (a DP's strong ETag), so bytes of another version can
never be appended to a partial: a server that does not match answers 200 and
the file starts again from byte 0.

It logs what it does (`peerdp.transfer`): the start (files and bytes to fetch, bytes held
already), progress every `progress_log_s` seconds of a long download, each resumed file
(from which byte), each failed attempt at a source, and the end (verified, bytes by
source). `on_received` sees the bytes as they arrive from the network (a live counter).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

import httpx

from peerdp.content.manifest import Manifest, ManifestFile
from peerdp.content.objects import EMPTY_SHA256, DigestMismatch, ObjectStore, PartialWriter
from peerdp.domain.backoff import backoff_delay
from peerdp.domain.timestamps import retry_after_s
from peerdp.logs import get_logger
from peerdp.security.tls import untrusted_certificate
from peerdp.transfer.fastpath import BodyCut, Pipeline, socket_body
from peerdp.transfer.throttle import TokenBucket

MAX_MANIFEST_BYTES = 16 << 20
# Files at least this big are read from the socket in big pieces, and hashed and
# written on helper threads (transfer/fastpath.py).
PIPELINE_MIN_BYTES = 4 << 20
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
BUSY_DEFAULT_WAIT_S = 1.0
# A download still running logs its progress this often (seconds).
PROGRESS_LOG_S = 10.0

log = get_logger("peerdp.transfer")

__all__ = [
    "DownloadFailed",
    "DownloadReport",
    "NullProgress",
    "ProgressSink",
    "Source",
    "SourceFailure",
    "download_package",
    "fetch_manifest",
    "file_url",
    "manifest_url",
]


# -- public types --------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A DP to download from: a display name and its base URL."""

    name: str
    base_url: str


@dataclass(frozen=True)
class SourceFailure:
    """One failed attempt: which source, which file (or "manifest"), and why."""

    source: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.reason}"


class DownloadFailed(Exception):
    """No source delivered the content; `failures` says what each one did."""

    def __init__(self, message: str, failures: Sequence[SourceFailure]) -> None:
        self.failures = list(failures)
        lines = [message, *(f"  {failure}" for failure in self.failures[-20:])]
        super().__init__("\n".join(lines))

    @property
    def reasons_by_source(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for failure in self.failures:
            out.setdefault(failure.source, []).append(f"{failure.path}: {failure.reason}")
        return out


@dataclass
class DownloadReport:
    """What a package download did.

    `files_downloaded + files_reused == len(manifest.files)`: a file whose
    content was already held (or fetched earlier in this run under another
    path) counts as reused.
    """

    package_id: str
    source_version: int
    files_downloaded: int = 0
    files_reused: int = 0
    bytes_reused: int = 0
    bytes_by_source: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    failures: list[SourceFailure] = field(default_factory=list)

    @property
    def network_bytes(self) -> int:
        return sum(self.bytes_by_source.values())


class ProgressSink(Protocol):
    """Receives byte progress; `advance` may be negative when a partial is discarded.

    The caller chooses how it is shown (the CLI draws a bar on a terminal).
    """

    def start(self, total_bytes: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def done(self) -> None: ...


class NullProgress:
    """A ProgressSink that shows nothing."""

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def done(self) -> None:
        pass


# -- URLs ----------------------------------------------------------------------


def manifest_url(source: Source, package_id: str, source_version: int) -> str:
    base = source.base_url.rstrip("/")
    return f"{base}/content/{quote(package_id, safe='')}/{source_version}/manifest"


def file_url(source: Source, manifest: Manifest, path: str) -> str:
    base = source.base_url.rstrip("/")
    package = quote(manifest.package_id, safe="")
    return f"{base}/content/{package}/{manifest.source_version}/files/{quote(path, safe='/')}"


def _headers(source: Source, token_for: Callable[[Source], str] | None) -> dict[str, str]:
    # Compression would make the body differ from the bytes that are hashed.
    headers = {"Accept-Encoding": "identity"}
    if token_for is not None:
        headers["Authorization"] = f"Bearer {token_for(source)}"
    return headers


@contextmanager
def _client_for(
    client: httpx.Client | None, timeout: httpx.Timeout, verify: ssl.SSLContext | bool
) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with httpx.Client(timeout=timeout, follow_redirects=False, verify=verify) as own:
        yield own


# -- manifest ------------------------------------------------------------------


def fetch_manifest(
    source: Source,
    package_id: str,
    version: int,
    token: str | None,
    *,
    client: httpx.Client | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
) -> bytes:
    """The manifest bytes as the DP serves them (verify the signature before use).

    `verify` is what an HTTPS DP's certificate is checked with (True: the system's CAs).
    """
    headers = _headers(source, None if token is None else (lambda _s: token))
    url = manifest_url(source, package_id, version)

    def fail(reason: str) -> DownloadFailed:
        failure = SourceFailure(source.name, "manifest", reason)
        return DownloadFailed(f"could not fetch manifest of {package_id} v{version}", [failure])

    try:
        with (
            _client_for(client, timeout, verify) as http,
            http.stream("GET", url, headers=headers) as resp,
        ):
            if resp.status_code != 200:
                raise fail(_status_reason(resp))
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_MANIFEST_BYTES:
                    raise fail(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise fail(f"connection error: {_describe(exc)}") from exc


# -- the download --------------------------------------------------------------


class _SourceError(Exception):
    """This source failed this file; try another. `retry_after` in seconds if given."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _RangeRefused(Exception):
    """416: the server cannot extend our partial, so it must start from zero."""


def download_package(
    manifest: Manifest,
    sources: Sequence[Source],
    store: ObjectStore,
    *,
    token_for: Callable[[Source], str] | None = None,
    bandwidth_limit: int | None = None,
    progress: ProgressSink | None = None,
    client: httpx.Client | None = None,
    max_rounds: int = 3,
    retry_after_cap_s: float = 5.0,
    round_backoff_s: float = 0.5,
    verify_reused: bool = False,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
    on_received: Callable[[int], None] | None = None,
    progress_log_s: float = PROGRESS_LOG_S,
) -> DownloadReport:
    """Make every file of `manifest` present and verified in `store`.

    `bandwidth_limit` (bytes/s) caps the whole package download. Each file
    walks `sources` up to `max_rounds` times; a 503's Retry-After is honoured
    before that source is asked again, capped at `retry_after_cap_s`.
    `verify_reused` re-hashes held objects first (a refresh after damage). `verify` is
    what HTTPS DPs' certificates are checked with (True: the system's CAs).
    `on_received(n)` is called as each piece of `n` bytes arrives from a source;
    progress is logged every `progress_log_s` seconds.
    Raises DownloadFailed, with every failure, when a file cannot be had.
    """
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    sink = _LoggedProgress(manifest, progress or NullProgress(), progress_log_s)
    throttle = None if bandwidth_limit is None else TokenBucket(bandwidth_limit)
    with _client_for(client, timeout, verify) as http:
        job = _PackageDownload(
            manifest,
            list(sources),
            store,
            http,
            token_for,
            throttle,
            sink,
            _Retry(max_rounds, retry_after_cap_s, round_backoff_s),
            on_received,
        )
        return job.run(verify_reused)


class _LoggedProgress:
    """A ProgressSink that passes everything on and logs the progress every `every_s`."""

    def __init__(self, manifest: Manifest, sink: ProgressSink, every_s: float) -> None:
        self.fields = {"package_id": manifest.package_id, "source_version": manifest.source_version}
        self.sink = sink
        self.every_s = every_s
        self.bytes_total = 0
        self.bytes_done = 0
        self.started = time.monotonic()
        self.next_log = self.started + every_s

    def start(self, total_bytes: int) -> None:
        self.bytes_total = total_bytes
        self.sink.start(total_bytes)

    def advance(self, n: int) -> None:
        self.bytes_done += n
        self.sink.advance(n)
        now = time.monotonic()
        if now >= self.next_log:
            self.next_log = now + self.every_s
            total = self.bytes_total
            log.info(
                "download progress",
                **self.fields,
                bytes_done=self.bytes_done,
                bytes_total=total,
                percent=round(100 * self.bytes_done / total, 1) if total else 100.0,
                elapsed_s=round(now - self.started, 1),
            )

    def done(self) -> None:
        self.sink.done()


@dataclass(frozen=True)
class _Retry:
    max_rounds: int
    retry_after_cap_s: float
    round_backoff_s: float


class _PackageDownload:
    """State of one package download: sources' health, counters, progress."""

    def __init__(
        self,
        manifest: Manifest,
        sources: list[Source],
        store: ObjectStore,
        http: httpx.Client,
        token_for: Callable[[Source], str] | None,
        throttle: TokenBucket | None,
        progress: ProgressSink,
        retry: _Retry,
        on_received: Callable[[int], None] | None = None,
    ) -> None:
        self.manifest = manifest
        self.sources = sources
        self.store = store
        self.http = http
        self.token_for = token_for
        self.throttle = throttle
        self.progress = progress
        self.retry = retry
        self.on_received = on_received
        self.fields = {"package_id": manifest.package_id, "source_version": manifest.source_version}
        self.report = DownloadReport(manifest.package_id, manifest.source_version)
        self.report.bytes_by_source = {source.name: 0 for source in sources}
        self._not_before: dict[str, float] = {}
        self._preferred = 0  # index of the source that last delivered a file
        self._shown: dict[str, int] = {}  # bytes of each partial already shown as progress

    def run(self, verify_reused: bool) -> DownloadReport:
        started = time.monotonic()
        wanted = self._plan(verify_reused)
        total = sum(entry.size for entry in wanted)
        log.info(
            "download started",
            **self.fields,
            files=len(wanted),
            bytes_total=total,
            files_held=self.report.files_reused,
            bytes_held=self.report.bytes_reused,
            sources=[source.name for source in self.sources],
        )
        self.progress.start(total)
        try:
            for entry in wanted:
                self._fetch_object(entry)
        finally:
            self.progress.done()
            self.report.elapsed_s = time.monotonic() - started
        report = self.report
        log.info(
            "download verified",
            **self.fields,
            files_downloaded=report.files_downloaded,
            files_held=report.files_reused,
            network_bytes=report.network_bytes,
            bytes_by_source={name: n for name, n in report.bytes_by_source.items() if n},
            elapsed_s=round(report.elapsed_s, 3),
        )
        return report

    def _plan(self, verify_reused: bool) -> list[ManifestFile]:
        """The distinct objects to fetch; count every other file as reused."""
        wanted: dict[str, ManifestFile] = {}
        for entry in self.manifest.files:
            if entry.sha256 in wanted or self._held(entry.sha256, verify_reused):
                self.report.files_reused += 1
                self.report.bytes_reused += entry.size
            else:
                wanted[entry.sha256] = entry
        return list(wanted.values())

    def _held(self, sha256: str, verify: bool) -> bool:
        if not self.store.has(sha256):
            return False
        if verify and not self.store.verify(sha256):
            self.store.remove(sha256)  # damaged: fetch it again
            return False
        return True

    # -- one object, many sources --------------------------------------------

    def _fetch_object(self, entry: ManifestFile) -> None:
        if entry.size == 0:
            self.store.add_stream([], EMPTY_SHA256)  # nothing to ask a DP for
            self.report.files_downloaded += 1
            return
        if not self.sources:
            raise DownloadFailed(f"no sources to download {entry.path} from", [])
        for round_no in range(self.retry.max_rounds):
            if round_no:
                time.sleep(backoff_delay(round_no, self.retry.round_backoff_s, cap_s=10.0))
            for index in self._source_order():
                if self._try_source(index, entry):
                    return
        raise DownloadFailed(
            f"{self.manifest.package_id} v{self.manifest.source_version}: no source delivered "
            f"{entry.path} after {self.retry.max_rounds} round(s)",
            self.report.failures,
        )

    def _source_order(self) -> list[int]:
        # Start with the source that last worked (a failed local DP is not
        # asked again for every remaining file), then the caller's order.
        others = [i for i in range(len(self.sources)) if i != self._preferred]
        return [self._preferred, *others]

    def _try_source(self, index: int, entry: ManifestFile) -> bool:
        source = self.sources[index]
        self._wait_until_allowed(source)
        try:
            self._fetch_from(source, entry)
        except _SourceError as exc:
            self.report.failures.append(SourceFailure(source.name, entry.path, exc.reason))
            log.warning(
                "download attempt failed",
                **self.fields,
                source=source.name,
                path=entry.path,
                reason=exc.reason,
            )
            if exc.retry_after is not None:
                wait = min(exc.retry_after, self.retry.retry_after_cap_s)
                self._not_before[source.name] = time.monotonic() + wait
            return False
        self._preferred = index
        return True

    def _wait_until_allowed(self, source: Source) -> None:
        delay = self._not_before.pop(source.name, 0.0) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    # -- one object, one source -----------------------------------------------

    def _fetch_from(self, source: Source, entry: ManifestFile) -> None:
        with self.store.open_partial(entry.sha256) as writer:
            if self.store.has(entry.sha256):
                # Another download (a package sharing this file) committed it.
                self._show(entry.sha256, entry.size)
                self.report.files_downloaded += 1
                return
            self._show(entry.sha256, writer.size)
            if self._partial_is_complete(writer, entry):
                return
            try:
                self._request(source, entry, writer)
            except _RangeRefused:
                writer.restart()
                self._show(entry.sha256, 0)
                self._request(source, entry, writer)

    def _partial_is_complete(self, writer: PartialWriter, entry: ManifestFile) -> bool:
        """Commit a partial that already holds the whole file; drop an oversized one."""
        if writer.size == entry.size and writer.hexdigest() == entry.sha256:
            writer.commit()
            self.report.files_downloaded += 1
            return True
        if writer.size >= entry.size:
            writer.restart()
            self._show(entry.sha256, 0)
        return False

    def _request(self, source: Source, entry: ManifestFile, writer: PartialWriter) -> None:
        headers = _headers(source, self.token_for)
        if writer.size:
            headers["Range"] = f"bytes={writer.size}-"
            headers["If-Range"] = f'"{entry.sha256}"'
            log.info(
                "download resumed",
                **self.fields,
                source=source.name,
                path=entry.path,
                offset=writer.size,
                size=entry.size,
            )
        url = file_url(source, self.manifest, entry.path)
        try:
            with self.http.stream("GET", url, headers=headers) as resp:
                self._check_response(resp, entry, writer)
                self._receive(resp, source, entry, writer)
        except httpx.HTTPError as exc:
            raise _SourceError(f"connection error: {_describe(exc)}") from exc
        self._commit(writer, entry)

    def _check_response(
        self, resp: httpx.Response, entry: ManifestFile, writer: PartialWriter
    ) -> None:
        """Accept 206 that extends the partial, or 200 (restart); else raise."""
        status = resp.status_code
        if status == 416 and writer.size:
            raise _RangeRefused
        if status == 206:
            start = _content_range_start(resp.headers.get("content-range"), entry.size)
            if start != writer.size:
                raise _SourceError(
                    f"206 for the wrong range ({resp.headers.get('content-range')!r}, "
                    f"asked from byte {writer.size})"
                )
        elif status == 200:
            if writer.size:  # range ignored or If-Range did not match: from byte 0
                writer.restart()
                self._show(entry.sha256, 0)
        else:
            raise _SourceError(_status_reason(resp), _busy_wait(resp))
        encoding = resp.headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise _SourceError(f"content was sent with Content-Encoding {encoding}")
        length = resp.headers.get("content-length")
        if length is not None and length.strip() != str(entry.size - writer.size):
            raise _SourceError(
                f"Content-Length {length} but {entry.size - writer.size} bytes were expected"
            )

    def _receive(
        self, resp: httpx.Response, source: Source, entry: ManifestFile, writer: PartialWriter
    ) -> None:
        start = writer.size
        expected = entry.size - start
        if expected < PIPELINE_MIN_BYTES or self.throttle is not None:
            # No chunk_size: httpx would buffer up to it and lose that much on a cut.
            self._take(resp.iter_raw(), source, entry, writer, start)
        else:
            try:
                with Pipeline(writer) as pipeline:
                    self._take(socket_body(resp, expected), source, entry, pipeline, start)
            except BodyCut as exc:
                cause = exc.__cause__
                reason = _describe(cause) if isinstance(cause, OSError) else str(exc)
                raise _SourceError(f"connection error: {reason}") from exc
        if writer.size != entry.size:
            raise _SourceError(f"body ended at byte {writer.size} of {entry.size}")

    def _take(
        self,
        chunks: Iterator[bytes | memoryview],
        source: Source,
        entry: ManifestFile,
        sink: _Sink,
        received: int,
    ) -> None:
        """Feed the body into `sink` (`received` bytes are in the partial already),
        counting it; whatever arrived before a cut stays in the partial for resuming."""
        by_source = self.report.bytes_by_source
        for chunk in chunks:
            received += len(chunk)
            if received > entry.size:
                raise _SourceError(f"sent more than the manifest's {entry.size} bytes")
            sink.write(chunk)
            by_source[source.name] += len(chunk)
            if self.on_received is not None:
                self.on_received(len(chunk))
            self.progress.advance(len(chunk))
            self._shown[entry.sha256] = received
            if self.throttle is not None:
                self.throttle.consume(len(chunk))

    def _commit(self, writer: PartialWriter, entry: ManifestFile) -> None:
        try:
            writer.commit()
        except DigestMismatch as exc:
            self._show(entry.sha256, 0)  # the partial is gone
            raise _SourceError(f"sha256 mismatch: got {exc.actual}") from exc
        self.report.files_downloaded += 1

    def _show(self, sha256: str, size: int) -> None:
        """Move the progress bar so it reflects `size` bytes of this object."""
        delta = size - self._shown.get(sha256, 0)
        if delta:
            self.progress.advance(delta)
        self._shown[sha256] = size


class _Sink(Protocol):
    def write(self, data: bytes | memoryview) -> None: ...


# -- small helpers -------------------------------------------------------------


def _content_range_start(value: str | None, size: int) -> int | None:
    """First byte of a `bytes a-b/size` Content-Range that runs to the end, else None."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    first, _, last = span.partition("-")
    try:
        start, end = int(first), int(last)
    except ValueError:
        return None
    if total.strip() not in (str(size), "*") or end != size - 1:
        return None
    return start


def _status_reason(resp: httpx.Response) -> str:
    reasons = {
        401: "not authorised (401)",
        403: "access denied (403)",
        404: "not found (404)",
        503: "busy (503)",
    }
    return reasons.get(resp.status_code, f"HTTP {resp.status_code}")


def _busy_wait(resp: httpx.Response) -> float | None:
    """Seconds to leave a source alone after this answer (503 and 429 only)."""
    if resp.status_code not in (429, 503):
        return None
    wait = retry_after_s(resp.headers.get("retry-after") or None, datetime.now(UTC))
    return BUSY_DEFAULT_WAIT_S if wait is None else wait


def _describe(exc: Exception) -> str:
    if untrusted := untrusted_certificate(exc, "the DP's"):
        return untrusted
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
