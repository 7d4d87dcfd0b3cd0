"""The exporter's snapshot: every metric series, aggregated from the ledger by GROUP BY queries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.adoption import (
    STATUSES,
    AdoptionResult,
    PolicySwitches,
    SystemFacts,
    Tally,
    compute_adoption,
    rate,
)
from inventory.allocation import (
    ALLOCATION_KINDS,
    CAPACITY_DIMENSIONS,
    listed_capacity,
    node_allocation,
)
from inventory.collectors.base import SCOPE_STATUSES
from inventory.evidence import ScopeKey, last_ok_scans, one_cloud_nodes
from inventory.models import Node, Resource, ScanRun, ScopeResult, System
from inventory.reports import gather_evidence, policy_from
from inventory.runs import COMPLETED_RUNS
from inventory.settings import Settings
from inventory.violations import (
    FREEZE,
    PLACEMENT,
    UNATTRIBUTED,
    freeze_counts,
    unattributed_counts,
)

GIB = 1024**3
UNKNOWN_ZONE = "unknown"

Labels = tuple[str, ...]


class MigrationCounts(Protocol):
    """The seam to the migrate module: {(plan, wave, state): number of systems}, read in the
    refresh's session. The default exports no yiyun_migration_systems series."""

    def __call__(self, *, session: Session) -> Mapping[tuple[str, str, str], int]: ...


def no_migration_counts(*, session: Session) -> Mapping[tuple[str, str, str], int]:
    return {}


class PlacementCounts(Protocol):
    """The seam to migrate's placement rules: {unified-cloud node: systems on it that break
    R1–R6}, zeros included. The default exports no rule="placement" series."""

    def __call__(self, *, session: Session) -> Mapping[str, int]: ...


def no_placement_counts(*, session: Session) -> Mapping[str, int]:
    return {}


@dataclass(frozen=True)
class MetricsSnapshot:
    """Every series the exporter serves, as label tuples → value; nothing names a system."""

    taken_at: datetime
    policy: str
    switches: PolicySwitches
    freshness_limit_seconds: float
    adoption_ratio: dict[Labels, float] = field(default_factory=dict)  # scope, city, department
    systems: dict[Labels, float] = field(default_factory=dict)  # city, department, status
    resources: dict[Labels, float] = field(default_factory=dict)  # node, kind
    node_capacity: dict[Labels, float] = field(default_factory=dict)  # node, resource
    node_capacity_listed: dict[Labels, float] = field(default_factory=dict)  # node, resource
    node_allocated: dict[Labels, float] = field(default_factory=dict)  # node, resource
    scan_last_success: dict[Labels, float] = field(default_factory=dict)  # node
    scan_scope_status: dict[Labels, float] = field(default_factory=dict)  # node, source, kind, st
    policy_violations: dict[Labels, float] = field(default_factory=dict)  # rule, node
    migration_systems: dict[Labels, float] = field(default_factory=dict)  # plan, wave, state
    systems_by_network_zone: dict[Labels, float] = field(default_factory=dict)  # city, dept, zone
    expired_scopes: dict[Labels, float] = field(default_factory=dict)  # node


def build_snapshot(
    *,
    session: Session,
    settings: Settings,
    now: datetime,
    migration_counts: MigrationCounts = no_migration_counts,
    placement_counts: PlacementCounts = no_placement_counts,
) -> MetricsSnapshot:
    """Read the ledger once and aggregate every metric; the caller owns the session."""
    switches = PolicySwitches(
        exempt_in_denominator=settings.exempt_in_denominator,
        trust_declared=settings.trust_declared,
    )
    # The policy of `report adoption` without --policy, read the same way.
    evidence = gather_evidence(
        session=session, settings=settings, policy=policy_from(settings), now=now
    )
    adoption_ratio, systems = _adoption(
        session=session, settings=settings, switches=switches, now=now, facts=evidence.facts
    )
    # A retired node has left the ledger's live picture: no series names it any more.
    nodes = list(
        session.exec(select(Node).where(col(Node.retired_at).is_(None)).order_by(col(Node.id)))
    )
    known = {n.id for n in nodes}
    live = {key: sums for key, sums in _live_resources(session=session).items() if key[0] in known}
    return MetricsSnapshot(
        taken_at=now,
        policy=evidence.policy,
        switches=switches,
        freshness_limit_seconds=settings.freshness_hours * 3600.0,
        adoption_ratio=adoption_ratio,
        systems=systems,
        resources={key: float(sums[0]) for key, sums in live.items()},
        node_capacity=_capacity(nodes),
        node_capacity_listed=_listed_capacity(live),
        node_allocated=_allocated(live, nodes=nodes),
        scan_last_success=_last_success(session=session, nodes=nodes),
        scan_scope_status=_scope_status(session=session, known=known),
        policy_violations={
            **_violations(session=session, nodes=nodes, tz=settings.tz),
            **_placement(placement_counts(session=session), known=known),
        },
        migration_systems=_migration(migration_counts(session=session)),
        systems_by_network_zone=_network_zones(session=session),
        expired_scopes=_expired(evidence.expired, nodes=nodes),
    )


def _adoption(
    *,
    session: Session,
    settings: Settings,
    switches: PolicySwitches,
    now: datetime,
    facts: list[SystemFacts],
) -> tuple[dict[Labels, float], dict[Labels, float]]:
    """The KPI through inventory.adoption, the code `yiyun report adoption` runs, so the two can
    never disagree. The facts are loaded once (reports.compute would reload them per grouping)."""
    on_cloud_nodes, today = one_cloud_nodes(session=session), settings.today(now)

    def compute(by: str) -> AdoptionResult:
        return compute_adoption(
            facts,
            one_cloud_nodes=on_cloud_nodes,
            today=today,
            switches=switches,
            by=by,
            province=settings.province,
        )

    by_city, by_department = compute("city"), compute("department")
    # The register gives a department one city (registry import refuses two).
    department_city: dict[str, str] = {}
    for fact in facts:
        department_city.setdefault(fact.department_code, fact.city)

    ratios: dict[Labels, float] = {}

    def add(labels: Labels, tally: Tally) -> None:
        value = rate(tally.numerator(), tally.denominator(switches))
        if value is not None:  # no denominator, no ratio: a 0 would read as "nothing moved"
            ratios[labels] = value

    add(("province", "", ""), by_city.total)
    for group in by_city.groups:
        add(("city", group.key, ""), group)
    for group in by_department.groups:
        add(("department", department_city[group.key], group.key), group)

    # Every status for every department, zeros included, so the series set stays stable.
    systems: dict[Labels, float] = {
        (city, department, status): 0.0
        for department, city in department_city.items()
        for status in STATUSES
    }
    for fact in facts:
        key = (fact.city, fact.department_code, by_city.statuses[fact.code])
        systems[key] = systems.get(key, 0.0) + 1
    return ratios, systems


# (node, kind) → (live rows, vCPU, memory GiB, storage GiB)
LiveSums = dict[tuple[str, str], tuple[int, float, float, float]]


def _live_resources(*, session: Session) -> LiveSums:
    """One pass over the live rows for yiyun_resources and yiyun_node_allocated."""
    live: sa.ColumnElement[bool] | sa.TextClause = col(Resource.deleted_at).is_(None)
    if session.get_bind().dialect.name == "sqlite":
        # Every live row is read, so SQLite must scan the table; the unary + keeps it from
        # walking the partial live-evidence index and fetching each row by random access
        # (several times slower when the planner has no statistics).
        live = sa.text("+resource.deleted_at IS NULL")
    query = (
        sa.select(
            col(Resource.kind),
            col(Resource.node_id),
            sa.func.count(),
            sa.func.sum(Resource.vcpu),
            sa.func.sum(Resource.memory_gib),
            sa.func.sum(Resource.storage_gib),
        )
        .where(live)
        .group_by(col(Resource.kind), col(Resource.node_id))
    )
    return {
        # SUM over rows of unknown size is NULL: nothing known, nothing added.
        (node, kind): (int(rows), float(vcpu or 0), float(memory or 0), float(storage or 0))
        for kind, node, rows, vcpu, memory, storage in session.connection().execute(query)
    }


def _capacity(nodes: list[Node]) -> dict[Labels, float]:
    capacity: dict[Labels, float] = {}
    for node in nodes:
        # The node file declares GiB; Prometheus wants base units.
        declared = {
            "vcpu": (node.capacity_vcpu, 1),
            "memory_bytes": (node.capacity_memory_gib, GIB),
            "storage_bytes": (node.capacity_storage_gib, GIB),
        }
        for resource, (value, unit) in declared.items():
            if value is not None:
                capacity[(node.id, resource)] = float(value) * unit
    return capacity


def _listed_capacity(live: LiveSums) -> dict[Labels, float]:
    """The capacity rule (inventory.allocation.listed_capacity) over the per-(node, kind) sums."""
    by_node: dict[str, dict[str, tuple[float, float, float]]] = {}
    for (node_id, kind), (rows, vcpu, memory, storage) in live.items():
        if kind in CAPACITY_DIMENSIONS and rows:
            by_node.setdefault(node_id, {})[kind] = (vcpu, memory, storage)
    capacity: dict[Labels, float] = {}
    for node_id, by_kind in sorted(by_node.items()):
        listed = zip(
            ("vcpu", "memory_bytes", "storage_bytes"), listed_capacity(by_kind), strict=True
        )
        for (resource, value), unit in zip(listed, (1, GIB, GIB), strict=True):
            if value is not None:
                capacity[(node_id, resource)] = value * unit
    return capacity


def _allocated(live: LiveSums, *, nodes: list[Node]) -> dict[Labels, float]:
    """The allocation rule (inventory.allocation), over the per-(node, kind) sums."""
    by_node: dict[str, dict[str, tuple[float, float, float]]] = {}
    for (node_id, kind), (rows, vcpu, memory, storage) in live.items():
        if kind in ALLOCATION_KINDS and rows:
            by_node.setdefault(node_id, {})[kind] = (vcpu, memory, storage)
    allocated: dict[Labels, float] = {}
    for node_id in sorted({n.id for n in nodes} | set(by_node)):
        vcpu, memory, storage = node_allocation(by_node.get(node_id, {}))
        allocated[(node_id, "vcpu")] = vcpu
        allocated[(node_id, "memory_bytes")] = memory * GIB
        allocated[(node_id, "storage_bytes")] = storage * GIB
    return allocated


def _last_success(*, session: Session, nodes: list[Node]) -> dict[Labels, float]:
    """End of each scanned node's last complete scan; 0 (the epoch) for a node with sources that
    never had one, so the staleness alert fires for it as `report adoption`'s stale_nodes does."""
    latest = last_ok_scans(session=session)
    return {
        (n.id,): latest[n.id].timestamp() if n.id in latest else 0.0 for n in nodes if n.sources
    }


def _scope_status(*, session: Session, known: set[str]) -> dict[Labels, float]:
    """Scopes per status in each node's latest scan run that ran to its end (one still
    running, interrupted, crashed or abandoned would show only the scopes done so far), zeros
    included so alerts can compare statuses."""
    latest = (
        select(ScopeResult.node_id, sa.func.max(ScopeResult.run_id).label("run_id"))
        .join(ScanRun, col(ScanRun.id) == col(ScopeResult.run_id))
        .where(col(ScanRun.finished_at).is_not(None), col(ScanRun.status).in_(COMPLETED_RUNS))
        .group_by(col(ScopeResult.node_id))
        .subquery()
    )
    query = (
        sa.select(
            col(ScopeResult.node_id),
            col(ScopeResult.source),
            col(ScopeResult.kind),
            col(ScopeResult.status),
            sa.func.count(),
        )
        .join(
            latest,
            sa.and_(
                col(ScopeResult.node_id) == latest.c.node_id,
                col(ScopeResult.run_id) == latest.c.run_id,
            ),
        )
        .group_by(
            col(ScopeResult.node_id),
            col(ScopeResult.source),
            col(ScopeResult.kind),
            col(ScopeResult.status),
        )
    )
    found: dict[Labels, float] = {}
    for node, source, kind, status, count in session.connection().execute(query):
        if node not in known:  # a node taken out of the ledger stops alerting
            continue
        for other in SCOPE_STATUSES:
            found.setdefault((node, source, kind, other), 0.0)
        found[(node, source, kind, status)] = float(count)
    return found


def freeze_violation_counts(*, session: Session, nodes: list[Node], tz: ZoneInfo) -> Counter[str]:
    """node → live resources breaking the freeze rule (inventory.violations, counted in SQL)."""
    return freeze_counts(session=session, tz=tz)


def _violations(*, session: Session, nodes: list[Node], tz: ZoneInfo) -> dict[Labels, float]:
    """(rule, node) → count, with zeros: the freeze rule on every frozen non-one_cloud node, the
    unattributed rule on every node, so "more than an hour ago" has a series to compare with."""
    found: dict[Labels, float] = {}
    for node_id, count in freeze_violation_counts(session=session, nodes=nodes, tz=tz).items():
        found[(FREEZE, node_id)] = float(count)
    for node in nodes:
        found[(UNATTRIBUTED, node.id)] = 0.0
    for (node_id, _kind), count in unattributed_counts(session=session).items():
        if (UNATTRIBUTED, node_id) in found:  # a retired node is no longer exported
            found[(UNATTRIBUTED, node_id)] += count
    return found


def _placement(counts: Mapping[str, int], *, known: set[str]) -> dict[Labels, float]:
    """(placement, node) → systems on the node placed against R1–R6; a retired node, never."""
    return {(PLACEMENT, str(node)): float(n) for node, n in counts.items() if node in known}


def _expired(expired: list[ScopeKey], *, nodes: list[Node]) -> dict[Labels, float]:
    """node → scopes whose live evidence the KPI policy set aside (evidence-v2's maximum age),
    zeros included: one series per node, never one per scope."""
    found: dict[Labels, float] = {(n.id,): 0.0 for n in nodes}
    for node_id, *_ in expired:
        if (node_id,) in found:
            found[(node_id,)] += 1
    return found


def _migration(counts: Mapping[tuple[str, str, str], int]) -> dict[Labels, float]:
    found: dict[Labels, float] = {}
    for key, count in counts.items():
        plan, wave, state = key  # fail loudly on a wrong shape: the seam's contract
        found[(str(plan), str(wave), str(state))] = float(count)
    return found


def _network_zones(*, session: Session) -> dict[Labels, float]:
    """Registered systems that are not retired, per zone (一张网); classified ones are counted."""
    query = (
        select(System.city, System.department_code, System.network_zone, sa.func.count())
        .where(col(System.lifecycle) != "retired")
        .group_by(col(System.city), col(System.department_code), col(System.network_zone))
    )
    found: dict[Labels, float] = {}
    for city, department, zone, count in session.exec(query):
        # NULL and "" both mean the register did not say; they merge into one series.
        key = (city, department, zone or UNKNOWN_ZONE)
        found[key] = found.get(key, 0.0) + count
    return found
