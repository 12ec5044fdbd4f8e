"""The site database: every table of a site (its boundaries, DPs, packages, machines and
status log), as SQLAlchemy 2 models. The DP states, boundary types and connections it
allows come from the pure domain (dp_states, boundaries).

Alembic migrations (store/migrations) create and upgrade the schema; these
models are their single description.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from peerdp.domain import dp_states, transfer_limits
from peerdp.domain.admin_roles import ADMIN_ROLES
from peerdp.domain.boundaries import BOUNDARY_TYPES, CONNECTIONS, LOCATE_BY
from peerdp.domain.deployment_states import DEPLOYMENT_STATES
from peerdp.domain.location.model import DP_KINDS
from peerdp.domain.policy_polling import POLLING_MODES

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ORIGINS = ("admin", "on_demand")
ROLES = ("client", "branch_dp", "standard_dp")
ON_DEMAND_STATES = ("delayed", "provisioned")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which stores naive) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the site database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint(_one_of("policy_polling", POLLING_MODES), name="policy_polling"),
    )
    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # How clients fetch policy (domain/policy_polling.py): held long-polls, or an interval
    # (with its random spread) between polls that do not wait.
    policy_polling: Mapped[str] = mapped_column(
        String(16), default="long_poll", server_default="long_poll"
    )
    policy_poll_interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    policy_poll_randomise_s: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Boundary(Base):
    __tablename__ = "boundaries"
    __table_args__ = (
        CheckConstraint(_one_of("type", BOUNDARY_TYPES), name="type"),
        CheckConstraint(_one_of("connection", CONNECTIONS), name="connection"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))
    connection: Mapped[str] = mapped_column(String(8), default="fast")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DistributionPoint(Base):
    __tablename__ = "distribution_points"
    __table_args__ = (CheckConstraint(_one_of("kind", DP_KINDS), name="kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    bits_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    site_code: Mapped[str] = mapped_column(ForeignKey("sites.code"))
    ip_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    ad_site: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The site's limit on transfers served at once (None: the kind's default), sent to the
    # DP in its policy; and the limit the DP process was started with (its --max-transfers,
    # which overrides the site's), as it reported it.
    max_transfers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_transfers_override: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    protected_boundaries: Mapped[list[ProtectedBoundary]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def protected_boundary_ids(self) -> list[int]:
        return sorted(p.boundary_id for p in self.protected_boundaries)

    @property
    def protected(self) -> bool:
        return bool(self.protected_boundaries)

    @property
    def max_transfers_in_force(self) -> int | None:
        """The transfer limit the DP applies (None: no limit)."""
        return transfer_limits.in_force(self.kind, self.max_transfers, self.max_transfers_override)


class ProtectedBoundary(Base):
    __tablename__ = "dp_protected_boundaries"
    dp_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_points.id", ondelete="CASCADE"), primary_key=True
    )
    boundary_id: Mapped[int] = mapped_column(
        ForeignKey("boundaries.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class Package(Base):
    __tablename__ = "packages"
    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source_version: Mapped[int] = mapped_column(Integer, default=0)
    on_demand: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_download_branch: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted by an administrator, but still on some DPs: the row stays (its DP-list rows
    # in removal states) until every DP has removed the content, then it goes.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PackageVersion(Base):
    """One source version's manifest: every file's path, size and SHA-256."""

    __tablename__ = "package_versions"
    package_id: Mapped[str] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True
    )
    source_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    manifest_digest: Mapped[str] = mapped_column(String(64))
    file_count: Mapped[int] = mapped_column(Integer)
    total_size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Program(Base):
    __tablename__ = "programs"
    __table_args__ = (UniqueConstraint("package_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    command_line: Mapped[str] = mapped_column(Text)
    timeout_s: Mapped[int] = mapped_column(Integer, default=3600)
    # Exit codes that also mean success, besides 0 and the restart codes (3010, 1641).
    success_exit_codes: Mapped[list[int]] = mapped_column(JSON, default=list)


class Collection(Base):
    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    members: Mapped[list[CollectionMember]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CollectionMember.machine_name"
    )

    @property
    def member_names(self) -> list[str]:
        return [m.machine_name for m in self.members]


class CollectionMember(Base):
    __tablename__ = "collection_members"
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    # Members are machine names, so a collection can target a machine before it registers.
    machine_name: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (CheckConstraint(_one_of("locate_by", LOCATE_BY), name="locate_by"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # What the client reports (it may say anything: these place it in boundaries) ...
    ip_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    ad_site: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # ... and the address its last request came from, as the MP saw the connection
    # (a NAT or proxy in between shows its own): shown next to them by `explain`.
    peer_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # An administrator let the next registration under this name replace the machine that
    # holds it (a rebuilt machine); without it, that registration is a conflicting record.
    reenrol_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which of the two places it in boundaries: "reported" (the default, taken on trust) or
    # "peer" (pinned by an administrator to the address the MP sees, as SCCM does).
    locate_by: Mapped[str] = mapped_column(String(16), default="reported")


# Clients found by the start of their name in any case (the console's filter), by index:
# PostgreSQL matches `lower(name) LIKE 'pc12%'` with pattern operators whatever the
# database's collation, SQLite a range of `lower(name)`.
Index(
    "ix_clients_name_folded",
    func.lower(Client.name).label("name_folded"),
    postgresql_ops={"name_folded": "text_pattern_ops"},
)


class Advertisement(Base):
    __tablename__ = "advertisements"
    __table_args__ = (
        CheckConstraint(_one_of("on_fast", ("download",)), name="on_fast"),
        CheckConstraint(_one_of("on_slow", ("do_not_run", "download")), name="on_slow"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    program_name: Mapped[str] = mapped_column(String(200))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    mandatory_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    protected_only: Mapped[bool] = mapped_column(Boolean, default=False)
    on_fast: Mapped[str] = mapped_column(String(16), default="download")
    on_slow: Mapped[str] = mapped_column(String(16), default="do_not_run")
    allow_remote: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdvertisementRerun(Base):
    """An administrator's rerun of an advertisement, for one client or (no name) all.

    A client's policy carries, per advertisement, the highest rerun ID that concerns it:
    when it grows, the client runs the advertisement again from its first attempt.
    """

    __tablename__ = "advertisement_reruns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    advertisement_id: Mapped[int] = mapped_column(
        ForeignKey("advertisements.id", ondelete="CASCADE"), index=True
    )
    client_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PackageDistributionPoint(Base):
    """A row of a package's DP list, with SCCM's seven states."""

    __tablename__ = "package_distribution_points"
    __table_args__ = (
        CheckConstraint(_one_of("state", dp_states.STATES), name="state"),
        CheckConstraint(_one_of("origin", ORIGINS), name="origin"),
    )
    package_id: Mapped[str] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True
    )
    dp_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_points.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    state: Mapped[str] = mapped_column(String(20))
    # The version the DP holds (installed) or is moving to (pending states).
    source_version: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(12))
    detail: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The last attempt failed only because the DP could not be reached (or had not
    # registered its URL, or never reported): the DP's next contact retries it at once.
    dp_unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    # When a pending state must have moved on; past it the row retries or fails visibly.
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A site-server process pushing to (or removing from) the DP holds the row until then,
    # so several processes on one database never work on the same row at once.
    claimed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Bytes of this package the DP pulled over the WAN (a branch DP's reports of its pulls),
    # and bytes of it clients said they downloaded from this DP, over every version.
    pulled_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    served_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # A branch DP's pull in progress, as it last reported it (site/pull_progress.py): bytes
    # held so far of the pull's total, the rate since its previous report, and when.
    # Cleared when the row moves (installed, retrying, failed).
    pull_done_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pull_total_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pull_bytes_per_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class DPTrafficDay(Base):
    """Bytes one DP moved on one UTC day: pulled over the WAN (a branch DP's pulls) and
    served to clients and other DPs, as their status reports count them (the dashboard's
    "today"; site/deployment_status.py)."""

    __tablename__ = "dp_traffic_days"
    dp_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_points.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    pulled_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    served_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class DeploymentStateRow(Base):
    """Where one advertisement stands on one client: the latest state its status messages
    (and the MP's answers to it) reported (domain/deployment_states.py)."""

    __tablename__ = "deployment_states"
    __table_args__ = (
        CheckConstraint(_one_of("state", DEPLOYMENT_STATES), name="state"),
        # Counts per boundary and state (and of older versions) of one advertisement: one
        # ordered pass over the index.
        Index(
            "ix_deployment_states_counts",
            "advertisement_id",
            "boundary_id",
            "state",
            "source_version",
        ),
        # One state's rows of an advertisement, in client-name order (a page of them), and
        # its counts per state.
        Index("ix_deployment_states_rows", "advertisement_id", "state", "client_name"),
        # One client's rows, every advertisement's (the console's client page).
        Index("ix_deployment_states_client", "client_name"),
    )
    advertisement_id: Mapped[int] = mapped_column(
        ForeignKey("advertisements.id", ondelete="CASCADE"), primary_key=True
    )
    client_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    source_version: Mapped[int] = mapped_column(Integer)
    # The location reason (waiting_for_content, not_run) or why it failed.
    reason: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    restart_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # The DP the content comes (or came) from; no foreign key: the row outlives the DP.
    source_dp_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The boundary the MP last placed the client in for this advertisement (None: none).
    boundary_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The time of the message that reported the state (the machine's clock).
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class OnDemandRequest(Base):
    __tablename__ = "on_demand_requests"
    __table_args__ = (
        UniqueConstraint("package_id", "source_version", "dp_id"),
        CheckConstraint(_one_of("state", ON_DEMAND_STATES), name="state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    source_version: Mapped[int] = mapped_column(Integer)
    dp_id: Mapped[int] = mapped_column(ForeignKey("distribution_points.id", ondelete="CASCADE"))
    client_name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(12), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    provisioned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EnrolmentToken(Base):
    __tablename__ = "enrolment_tokens"
    __table_args__ = (CheckConstraint(_one_of("role", ROLES), name="role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Only the SHA-256 of the token is kept; the token is shown once at creation.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(12))
    dp_id: Mapped[int | None] = mapped_column(
        ForeignKey("distribution_points.id", ondelete="CASCADE"), nullable=True
    )
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Machine(Base):
    """A registered machine identity: a client, a branch DP or a standard DP."""

    __tablename__ = "machines"
    __table_args__ = (CheckConstraint(_one_of("role", ROLES), name="role"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    role: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200))
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), nullable=True
    )
    dp_id: Mapped[int | None] = mapped_column(
        ForeignKey("distribution_points.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PolicyVersion(Base):
    """Each machine's policy version: it grows only when the policy's content changes."""

    __tablename__ = "policy_versions"
    machine_id: Mapped[str] = mapped_column(
        ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))


class StatusMessage(Base):
    """Append-only record of what each component did."""

    __tablename__ = "status_messages"
    __table_args__ = (
        Index("ix_status_messages_at", "at"),
        # The viewer's filters, newest first (site/admin/history.py).
        Index("ix_status_messages_severity_id", "severity", "id"),
        Index("ix_status_messages_component_id", "component", "id"),
        Index("ix_status_messages_component_severity_id", "component", "severity", "id"),
        # The newest messages of one severity (the dashboard's recent errors).
        Index("ix_status_messages_severity_at", "severity", "at"),
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    component: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(8), default="info")
    package_id: Mapped[str | None] = mapped_column(String(8), nullable=True, index=True)
    source_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dp_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    client_name: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    advertisement_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A client's attempt at an advertisement: its number, and when the next one is due.
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class AdminAccount(Base):
    """An administrator's credential with a role (the site's admin token is `full` and has
    no row). Only the SHA-256 of its secret is kept; the secret is shown once at creation.
    A revoked account keeps its row, so that the audit log's names stay unambiguous."""

    __tablename__ = "admin_accounts"
    __table_args__ = (CheckConstraint(_one_of("role", ADMIN_ROLES), name="role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    """One change asked of the admin API (a request other than GET), by whom, and its answer."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_who_id", "who", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    who: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    role: Mapped[str] = mapped_column(String(12))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    # The route's template (`/api/v1/packages/{package_id}`): which kind of resource.
    resource: Mapped[str] = mapped_column(String(200))
    status: Mapped[int] = mapped_column(Integer)


class ConsoleSession(Base):
    """A signed-in console (site/console/sessions.py): who, with which role, and the
    credential it was opened with (its SHA-256), so that revoking an account or changing
    the site's admin token ends its sessions. Keyed by the SHA-256 of the cookie's secret."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        CheckConstraint(_one_of("role", ADMIN_ROLES), name="role"),
        Index("ix_console_sessions_created_at", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    who: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(12))
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    credential_hash: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
