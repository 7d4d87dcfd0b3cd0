"""The contract between collectors and the scan orchestrator: scopes, rows, scope errors."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Self

# Kinds whose live rows are evidence of where a system is deployed (DESIGN.md, Evidence).
EVIDENCE_KINDS = frozenset({"vm", "db_instance", "bucket", "volume", "daemonset"})
REPLICATED_KINDS = frozenset({"deployment", "statefulset"})

# ScopeResult statuses. Only `ok` lets the orchestrator tombstone rows of the scope.
OK, PARTIAL, DENIED, THROTTLED, ERROR = "ok", "partial", "denied", "throttled", "error"
# Set by the orchestrator, not a collector: a complete listing whose deletions the sweep guard
# held back, and a scope the node file no longer plans (its rows were tombstoned).
HELD, RETIRED = "held", "retired"
SCOPE_STATUSES = (OK, PARTIAL, DENIED, THROTTLED, ERROR, HELD, RETIRED)


@dataclass
class ResourceRow:
    """One normalized resource as a collector's `normalize_*` returns it (pure data)."""

    kind: str
    native_id: str
    scope: str  # region or namespace or "*": the listing unit that owns this row
    name: str | None = None
    namespace: str | None = None
    region: str | None = None
    state: str | None = None
    replicas: int | None = None
    vcpu: float | None = None
    memory_gib: float | None = None
    storage_gib: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    system_code: str | None = None
    created_at_source: datetime | None = None
    # The source reports it in a terminal state (terminated, deleting): not live, tombstone it.
    terminal: bool = False

    def content_hash(self) -> str:
        """A digest of everything the ledger tracks about the row, to detect changes cheaply."""
        payload = [
            self.scope,
            self.name,
            self.namespace,
            self.region,
            self.state,
            self.replicas,
            self.vcpu,
            self.memory_gib,
            self.storage_gib,
            sorted(self.tags.items()),
            self.system_code,
            self.created_at_source.isoformat() if self.created_at_source else None,
        ]
        return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:32]


def is_evidence(kind: str, replicas: int | None, state: str | None) -> bool:
    """Whether a live row of this kind runs or holds a system (an empty landing zone does not)."""
    if kind in EVIDENCE_KINDS:
        return True
    if kind in REPLICATED_KINDS:
        return (replicas or 0) >= 1
    if kind == "cronjob":
        return state != "suspended"
    return False


@dataclass
class ScopeStats:
    """Counters a listing keeps while it runs; the orchestrator copies them to ScopeResult."""

    pages: int = 0
    api_calls: int = 0
    retries: int = 0


class ScopeFailed(Exception):
    """A listing that did not complete; its status decides how the failure is reported.

    Raising this (or letting any other exception escape) means the scope is not `ok`, so no
    row of it will be tombstoned in this run.
    """

    def __init__(self, status: str, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Scope:
    """One unit of listing work: (node, source, kind, region-or-namespace).

    `pages()` yields lists of rows as the API returns them, updating `stats`; it raises
    ScopeFailed (or anything else) when the listing cannot complete.
    """

    node_id: str
    source: str
    kind: str
    scope: str
    pages: Callable[[ScopeStats], Iterator[list[ResourceRow]]]
    stats: ScopeStats = field(default_factory=ScopeStats)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.node_id, self.source, self.kind, self.scope)


# Server errors worth another try: an API worker or the load balancer in front of it failing
# for the moment. Others are not retried.
RETRIED_SERVER_ERRORS = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a paged HTTP listing tries before it gives up; tests shrink the waits to
    nothing. A collector's ListPolicy adds what only its API has."""

    page_size: int = 500
    read_timeout: float = 60.0
    # Per request: 429s honoured (Retry-After), dropped connections and 5xx retried.
    max_throttle_retries: int = 5
    max_connection_retries: int = 2
    # As botocore's standard mode does for AWS: exponential backoff with jitter.
    max_server_error_retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> Self:
        """The defaults, with `page_size` and `request_timeout` (seconds) from the source."""
        policy = cls()
        if source.get("page_size") is not None:
            policy = replace(policy, page_size=int(source["page_size"]))
        if source.get("request_timeout") is not None:
            policy = replace(policy, read_timeout=float(source["request_timeout"]))
        return policy

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so parallel scanners do not retry in step."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)
