"""Settings every peerdp command honours (environment variables PEERDP_*), and the error
a role raises when its configuration cannot work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """The options a role was started with cannot work (the message says why, in one line).

    Roles raise it instead of exiting; the command line reports it as a bad option.
    """


def writable_data_dir(path: Path) -> Path:
    """Create `path` if it is missing and prove a file can be written in it.

    A role calls this before anything else, so a read-only, misplaced or forbidden data
    directory stops it at start with one line (ConfigError) naming the path and why,
    instead of a traceback from whichever write came first.
    """
    blocker = _file_in_the_way(path)
    if blocker is not None:
        what = "is" if blocker == path else f"cannot be made: {blocker} is"
        raise ConfigError(f"data directory {path} {what} not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Root passes every permission check, not a read-only file system: only a write
        # tells.
        with tempfile.TemporaryFile(dir=path, prefix=".peerdp-write-check-"):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        where = f" ({exc.filename})" if exc.filename and exc.filename != str(path) else ""
        raise ConfigError(f"data directory {path} cannot be written: {reason}{where}") from exc
    return path


def _file_in_the_way(path: Path) -> Path | None:
    """`path` or its nearest existing ancestor, if that is something other than a directory."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return None if candidate.is_dir() else candidate
    return None


class SiteSettings(BaseSettings):
    """The site server's settings; command-line options override the environment."""

    model_config = SettingsConfigDict(env_prefix="PEERDP_", extra="ignore")

    data_dir: Path = Path("peerdp-site")
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    site_code: str = Field(default="PS1", pattern=r"^[A-Z0-9]{3}$")
    admin_token: str | None = None
    # Ordinary JSON bodies; package content has its own, larger limit.
    max_body_bytes: int = 1024 * 1024
    # One package version: its files' bytes as stored (uncompressed), and its tar members.
    max_upload_bytes: int = Field(default=64 * 1024**3, ge=1)
    max_upload_members: int = Field(default=1_000_000, ge=1)
    # Longest long-poll a caller may ask for.
    policy_wait_max_s: float = 300.0
    # When a change concerns many held long-polls, their answers are spread at this many
    # seconds per 10,000 machines (0: all at once), so neither the site nor its DPs are hit
    # by every client at the same moment.
    policy_spread_s: float = Field(default=5.0, ge=0)
    # Long-polls one process holds at most (None: its file-descriptor limit less a reserve
    # for everything else it serves); more are refused with 503 and Retry-After.
    policy_max_held: int | None = Field(default=None, ge=1)
    # The Retry-After of such a refusal, before jitter.
    policy_retry_after_s: float = Field(default=60.0, gt=0)
    # The shortest interval an administrator may set for clients' policy polling.
    policy_interval_min_s: int = Field(default=60, ge=1)
    # How long a DP row may sit in a pending state before it retries or fails.
    pending_deadline_s: float = 600.0
    # How many times the distribution manager tries before install_failed.
    distribution_attempts: int = Field(default=5, ge=1)
    # Wait before the first retry of a failed push or removal; doubled each time, up to the max.
    distribution_backoff_s: float = Field(default=30.0, gt=0)
    distribution_backoff_max_s: float = Field(default=3600.0, gt=0)
    # Pushes to different DPs run at once, per site-server process.
    distribution_concurrency: int = Field(default=4, ge=1)
    # How long a site-server process holds a DP row it is pushing (renewed while it works);
    # if the process dies, another takes the row over after this.
    distribution_claim_s: float = Field(default=120.0, gt=0)
    # Timeout of each HTTP request to a standard DP.
    distribution_timeout_s: float = Field(default=60.0, gt=0)
    access_token_ttl_s: int = 3600
    # TLS: the certificate chain and key the site serves with (both, or neither for plain
    # HTTP), and the CA file it trusts for the standard DPs it pushes to (else the system's).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_file: Path | None = None
    # Who may read /metrics: anyone (the default, for a scraper inside the site's network),
    # or only a bearer of this token, or of the admin token when metrics_admin_only is set.
    metrics_token: str | None = None
    metrics_admin_only: bool = False
    # The interactive API documentation (/docs, /redoc, /openapi.json).
    api_docs: bool = True
    # Site upkeep (site/upkeep.py): rows older than this many days are deleted every hour;
    # 0 keeps them forever. The audit log is the administrators' to trim: kept by default.
    status_message_days: int = Field(default=90, ge=0)
    traffic_days: int = Field(default=400, ge=0)
    audit_days: int = Field(default=0, ge=0)

    @property
    def database_url(self) -> str:
        from peerdp.store.db import default_url

        return self.db or default_url(self.data_dir)
