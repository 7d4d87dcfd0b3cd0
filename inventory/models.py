"""The ledger's tables: register, nodes, discovered resources, scans, history, snapshots."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Column, Field, SQLModel

# JSON that is JSONB on PostgreSQL (indexable, compact) and JSON text on SQLite.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores timestamps as naive UTC on every backend and hands them back timezone-aware."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(tz=UTC)


def json_column(**kwargs: Any) -> Any:
    return Field(default=None, sa_column=Column(JSONType, **kwargs))


def utc_column(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


# A government body that owns systems (主管部门 / 责任单位).
class Department(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    name: str
    level: str = "province"  # province / city / county
    city: str
    parent_code: str | None = None


# A government information system (政务信息系统) as the register describes it.
class System(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    name: str
    department_code: str = Field(index=True)
    city: str = Field(index=True)
    classified: bool = False
    mlps_level: int
    data_level: str = "general"
    network_zone: str | None = None
    lifecycle: str = "active"
    exemption_reason: str | None = None
    exemption_doc: str | None = None
    exemption_valid_until: date | None = None
    declared_node: str | None = None
    environment: str | None = None
    criticality: str | None = None
    crypto_assessed_on: date | None = None
    contact: str | None = None
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()


# A cloud node: the unified cloud's own (one_cloud) or one that must move onto it.
class Node(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    level: str
    one_cloud: bool
    city: str | None = None
    owner_department: str | None = None
    mlps_level: int | None = None
    dedicated_level4_pool: bool = False
    zones: list[str] | None = json_column()
    capacity_vcpu: float | None = None
    capacity_memory_gib: float | None = None
    capacity_storage_gib: float | None = None
    frozen_since: date | None = None
    system_tag: str = "yiyun.io/system"
    sources: list[dict[str, Any]] | None = json_column()
    updated_at: datetime | None = utc_column()
    # Set by `yiyun nodes retire` (or `nodes apply --prune`): the node's rows are tombstoned,
    # its history kept, and it leaves scans, the KPI, the exporter and freshness.
    retired_at: datetime | None = utc_column()
    retired_by: str | None = None
    retired_reason: str | None = None


# One discovered thing on a node; (node, source, kind, native_id) is its natural key.
class Resource(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint(
            "node_id", "source", "kind", "native_id", name="uq_resource_natural_key"
        ),
        # Live rows only, with every column the evidence query reads: the KPI is answered
        # from this index without touching the rows' raw JSON (migration 0003).
        sa.Index(
            "ix_resource_live_evidence",
            "system_code",
            "node_id",
            "kind",
            "replicas",
            "state",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        sa.Index("ix_resource_scope", "node_id", "source", "kind", "scope"),
        # Ids are never reused on SQLite either, so a purged row's history cannot attach to a
        # new row (migration 0004).
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    node_id: str  # indexed first in uq_resource_natural_key and ix_resource_scope
    source: str
    kind: str
    native_id: str
    # The listing unit that owns the row (region or namespace, "*" for cluster-wide kinds);
    # only a complete listing of this scope may tombstone the row.
    scope: str = "*"
    name: str | None = None
    namespace: str | None = None
    region: str | None = None
    state: str | None = None
    replicas: int | None = None
    vcpu: float | None = None
    memory_gib: float | None = None
    storage_gib: float | None = None
    tags: dict[str, str] | None = json_column()
    raw: dict[str, Any] | None = json_column()
    system_code: str | None = None
    created_at_source: datetime | None = utc_column()
    content_hash: str
    first_seen_at: datetime = utc_column(nullable=False)
    last_seen_at: datetime = utc_column(nullable=False)
    last_seen_run_id: int | None = None
    deleted_at: datetime | None = utc_column()


# One `yiyun scan` invocation.
class ScanRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = utc_column(nullable=False)
    finished_at: datetime | None = utc_column()
    # running, then one of: ok / failed / interrupted (Ctrl-C) / crashed (the orchestrator
    # itself failed) / abandoned (left running by a killed process, closed by a later scan or
    # report that could take its nodes' locks)
    status: str = "running"
    nodes: list[str] | None = json_column()
    scopes_total: int = 0
    scopes_failed: int = 0
    # Every scope the run planned, as [node, source, kind, scope]: those without a
    # ScopeResult never ran (the run was interrupted, crashed or killed first).
    planned: list[list[str]] | None = json_column()
    error_message: str | None = None


# One unit of listing work (node, source, kind, region-or-namespace) within a scan.
class ScopeResult(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_scope_result_node", "node_id", "status", "finished_at"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True)
    node_id: str
    source: str
    kind: str
    scope: str
    # ok / partial / denied / throttled / error / malformed listings are `error` with code
    # malformed_response; held (a complete listing whose sweep the guard held back); retired
    # (the node file no longer plans the scope: its rows were tombstoned)
    status: str
    items: int = 0
    pages: int = 0
    api_calls: int = 0
    retries: int = 0
    duration_seconds: float = 0.0
    error_code: str | None = None
    error_message: str | None = None
    started_at: datetime = utc_column(nullable=False)
    finished_at: datetime | None = utc_column()
    # Rows this scope tombstoned (sweep or retirement), and rows a held sweep kept.
    deleted: int = 0
    held: int = 0
    # How the sweep went when it was not routine: held / agreed (the next complete listing
    # lacked the same rows) / confirmed (an operator's --confirm-deletions) / retired.
    sweep: str | None = None


# History of a resource, written only when something changed.
class ResourceEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    resource_id: int = Field(index=True)
    run_id: int | None = Field(default=None, index=True)
    at: datetime = utc_column(nullable=False)
    # created / updated / deleted / reappeared / held (a guarded sweep kept the row); a
    # `deleted` or `held` diff may carry {"reason": scope_retired | node_retired |
    # sweep_guard | agreed | confirmed, "by": who}
    type: str
    diff: dict[str, Any] | None = json_column()


# A dated, reproducible record of the KPI under one policy version and its switches.
class AdoptionSnapshot(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    taken_at: datetime = utc_column(nullable=False, index=True)
    as_of: datetime = utc_column(nullable=False)
    policy: str
    switches: dict[str, Any] | None = json_column()
    numerator: int
    denominator: int
    rate: float | None = None
    counts: dict[str, int] | None = json_column()
    # {"city": [...], "department": [...], "node": [...]}: every breakdown, for trends.
    groups: dict[str, Any] | None = json_column()
    # status -> system codes; classified systems are counted, never named.
    system_codes: dict[str, list[str]] | None = json_column()
    stale_nodes: list[str] | None = json_column()
    # evidence-v2: scopes ("node/source/kind/scope") whose evidence had expired at as_of
    expired_scopes: list[str] | None = json_column()


# A role held over a scope (DESIGN.md, "Who may do what"): `yiyun access grant`.
class AccessGrant(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("principal", "role", "scope", name="uq_access_grant"),)

    id: int | None = Field(default=None, primary_key=True)
    principal: str = Field(index=True)
    role: str
    scope: str
    granted_by: str
    granted_at: datetime = utc_column(nullable=False)


# An API token for automation: only the SHA-256 of its secret is kept; the token is shown once.
class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(unique=True, index=True)  # the public part, `yiyun_<token_id>_…`
    secret_sha256: str
    principal: str = Field(index=True)
    role: str
    scope: str
    created_by: str
    created_at: datetime = utc_column(nullable=False)
    expires_at: datetime | None = utc_column()
    revoked_at: datetime | None = utc_column()
    revoked_by: str | None = None
    last_used_at: datetime | None = utc_column()


# A browser's login to the portal. The cookie holds the session id; only its SHA-256 is kept
# here. Grants the identity provider asserted at login sit beside the principal; the ledger's
# own grants are looked up on every request, so a revocation takes effect at once.
class LoginSession(SQLModel, table=True):
    __tablename__ = "login_session"

    id: int | None = Field(default=None, primary_key=True)
    sid_sha256: str = Field(unique=True, index=True)
    # None while the login is pending (sent to the identity provider, not yet back).
    principal: str | None = Field(default=None, index=True)
    kind: str  # oidc / demo
    name: str | None = None
    claim_grants: list[str] | None = json_column()
    # The OAuth state of a pending login: public (it travels in the URL), one use.
    login_state: str | None = None
    next_path: str | None = None
    created_at: datetime = utc_column(nullable=False)
    last_seen_at: datetime = utc_column(nullable=False)
    expires_at: datetime = utc_column(nullable=False, index=True)


# Append-only record of every write, by whom as proved (triggers refuse UPDATE and DELETE).
class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(nullable=False, index=True)
    principal: str = Field(index=True)
    principal_kind: str  # local / oidc / token
    by: str | None = None  # the CLI's --by, beside the OS user
    request_id: str | None = None
    action: str = Field(index=True)
    target: str
    before: dict[str, Any] | None = json_column()
    after: dict[str, Any] | None = json_column()
