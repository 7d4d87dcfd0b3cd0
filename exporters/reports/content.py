"""What the manager reports show, gathered once from the ledger; rendering happens elsewhere."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.adoption import (
    CLASSIFIED_EXCLUDED,
    EXEMPT,
    NO_EVIDENCE,
    OFF_CLOUD,
    PARTIAL,
    AdoptionResult,
    PolicySwitches,
    compute_adoption,
)
from inventory.confidentiality import Disclosure
from inventory.evidence import last_ok_scans, one_cloud_nodes, stale_nodes
from inventory.models import AdoptionSnapshot, Department, Node, System
from inventory.reports import as_contract, gather_evidence, policy_from
from inventory.settings import Settings
from inventory.violations import (
    PlacementViolation,
    freeze_violations,
    placement_violations,
    unattributed_counts,
)

# Statuses of systems that count in the KPI but are not (wholly) on the unified cloud.
PENDING_STATUSES = (PARTIAL, OFF_CLOUD, NO_EVIDENCE, EXEMPT)
PRIVATE_NETWORK = "private_network"
# Readiness of a system with nothing to move (migrate/rules.py): no rule blocks a move.
NOTHING_TO_MOVE = "out_of_scope"
UNKNOWN_ZONE = "unknown"  # the exporter's word for a zone the register left empty


@dataclass(frozen=True)
class Placement:
    """A system's place in its latest migration plan."""

    plan: str
    wave: int | None
    wave_start: date | None
    wave_end: date | None
    state: str


class Hint(Protocol):
    """A system's next migration step as migrate/ decides it (migrate.next_step.NextStep)."""

    @property
    def kind(self) -> str: ...

    @property
    def quiet(self) -> bool: ...

    def render(self, lang: str) -> str: ...


@dataclass(frozen=True)
class SystemLine:
    """One system as the reports list it (a classified one only for a disclosure that
    includes it)."""

    code: str
    name: str
    department_code: str
    city: str
    status: str
    network_zone: str | None
    mlps_level: int
    lifecycle: str
    exemption_valid_until: date | None
    placement: Placement | None
    readiness: str | None
    blockers: tuple[str, ...]
    # Placed on the unified cloud against R1–R6: compliance findings, never blockers.
    findings: tuple[PlacementViolation, ...] = ()
    # The one step its migration state allows (None without a migration ledger).
    next_step: Hint | None = None


@dataclass(frozen=True)
class NodeFreshness:
    """When a node last listed completely, and whether that is too long ago."""

    id: str
    name: str
    level: str
    one_cloud: bool
    city: str | None
    has_sources: bool
    last_complete_scan: datetime | None
    stale: bool

    @property
    def freshness(self) -> str:
        """no_sources, never, stale or ok: the wording key suffix `fresh_…`."""
        if not self.has_sources:
            return "no_sources"
        if self.last_complete_scan is None:
            return "never"
        return "stale" if self.stale else "ok"

    def age_hours(self, now: datetime) -> float | None:
        if self.last_complete_scan is None:
            return None
        return (now - self.last_complete_scan).total_seconds() / 3600


@dataclass(frozen=True)
class ViolationLine:
    """A freeze-rule violation; `native_id` and `name` are None when it is redacted (a
    classified system's resource, inventory/confidentiality.py)."""

    node_id: str
    kind: str
    native_id: str | None
    name: str | None
    created: datetime | None
    frozen_since: date | None
    basis: str
    redacted: bool


@dataclass(frozen=True)
class TrendPoint:
    as_of: datetime
    numerator: int
    denominator: int
    rate: float | None
    current: bool = False


@dataclass(frozen=True)
class WaveProgress:
    """Systems of one wave of one plan, counted by migration state."""

    plan: str
    wave: int | None
    start: date | None
    end: date | None
    states: dict[str, int]

    @property
    def systems(self) -> int:
        return sum(self.states.values())


@dataclass
class ReportContent:
    """Every figure and list of the HTML/XLSX reports and the scorecards."""

    as_of: datetime
    today: date
    timezone: str
    province: str
    system_tag: str
    switches: PolicySwitches
    # The JSON contract of `report adoption`, overall and by city and department.
    province_report: dict[str, Any]
    city_report: dict[str, Any]
    department_report: dict[str, Any]
    department_names: dict[str, str]
    systems: list[SystemLine]  # a classified one only when the disclosure includes it
    classified_count: int
    violations: list[ViolationLine]
    unattributed: list[tuple[str, str, int]]  # (node, kind, count)
    nodes: list[NodeFreshness]
    trend: list[TrendPoint]
    trend_omitted: int
    # department → zone → systems not retired (classified ones counted, as the exporter does)
    zones: dict[str, Counter[str]]
    migration_ledger: bool
    waves: list[WaveProgress] = field(default_factory=list)
    # Systems on the unified cloud placed against R1–R6 (合规问题), a classified one redacted.
    placement: list[PlacementViolation] = field(default_factory=list)
    # evidence-v2's limit, for the wording of expired_scopes
    evidence_max_age_hours: float = 168.0

    @property
    def policy(self) -> str:
        return str(self.province_report["policy"])

    @property
    def stale_nodes(self) -> list[str]:
        return list(self.province_report["stale_nodes"])

    @property
    def expired_scopes(self) -> list[str]:
        """Scopes whose evidence the policy set aside ("node/source/kind/scope")."""
        return list(self.province_report["expired_scopes"])

    def department_label(self, code: str) -> str:
        name = self.department_names.get(code)
        return f"{name}（{code}）" if name and name != code else code

    def pending_by_department(self) -> list[tuple[str, list[SystemLine]]]:
        """Systems not yet on the cloud per department, the department with most first."""
        grouped: dict[str, list[SystemLine]] = defaultdict(list)
        for line in self.systems:
            if line.status in PENDING_STATUSES:
                grouped[line.department_code].append(line)
        return sorted(grouped.items(), key=lambda item: (-len(item[1]), item[0]))

    def private_network_by_department(self) -> list[tuple[str, int, int]]:
        """(department, systems on 业务专网, all its systems) for departments with any."""
        rows = [
            (code, zones[PRIVATE_NETWORK], sum(zones.values()))
            for code, zones in self.zones.items()
            if zones[PRIVATE_NETWORK]
        ]
        return sorted(rows, key=lambda row: (-row[1], row[0]))


def _contract(
    facts: list[Any],
    *,
    nodes: frozenset[str],
    settings: Settings,
    switches: PolicySwitches,
    by: str | None,
    now: datetime,
    stale: list[str],
    policy: str,
    expired: list[str],
) -> tuple[AdoptionResult, dict[str, Any]]:
    # The same pure KPI code and contract as `report adoption`, over facts read once.
    result = compute_adoption(
        facts,
        one_cloud_nodes=nodes,
        today=settings.today(now),
        switches=switches,
        by=by,
        province=settings.province,
        policy=policy,
    )
    return result, as_contract(result, as_of=now, by=by, stale=stale, expired=expired)


# What the migration ledger (migrate/, a layer above) tells the reports: whether it exists,
# placements by system, progress by wave, (readiness, blockers) by system and each system's
# next step (migrate/next_step.py: the same step `migrate advance` prints).
MigrationLedger = tuple[
    bool,
    dict[str, Placement],
    list[WaveProgress],
    dict[str, tuple[str, tuple[str, ...]]],
    dict[str, Hint],
]
MigrationView = Callable[[Session], MigrationLedger]
NO_MIGRATION_LEDGER: MigrationLedger = (False, {}, [], {}, {})


def _trend(
    session: Session, policy: str, switches: PolicySwitches, current: TrendPoint
) -> tuple[list[TrendPoint], int]:
    """Snapshots under this policy and these switches, oldest first, then today's figure."""
    # Only the headline columns: a snapshot's code lists are large at province scale.
    query = sa.select(
        col(AdoptionSnapshot.as_of),
        col(AdoptionSnapshot.policy),
        col(AdoptionSnapshot.switches),
        col(AdoptionSnapshot.numerator),
        col(AdoptionSnapshot.denominator),
        col(AdoptionSnapshot.rate),
    ).order_by(col(AdoptionSnapshot.as_of))
    points: list[TrendPoint] = []
    omitted = 0
    wanted = switches.as_dict()
    rows = session.connection().execute(query)
    for as_of, stored_policy, stored_switches, numerator, denominator, rate in rows:
        # A point under other rules would make the line jump for no real reason.
        if stored_policy != policy or (stored_switches or {}) != wanted:
            omitted += 1
            continue
        points.append(TrendPoint(as_of, numerator, denominator, rate))
    return [*points, current], omitted


def _violations(
    session: Session, settings: Settings, disclosure: Disclosure
) -> list[ViolationLine]:
    # A classified system's resource still counts as a violation; the disclosure decides
    # whether anything names it.
    return [
        ViolationLine(
            node_id=v.node_id,
            kind=v.kind,
            native_id=None if v.redacted else v.native_id,
            name=None if v.redacted else v.name,
            created=v.created,
            frozen_since=v.frozen_since,
            basis=v.basis,
            redacted=v.redacted,
        )
        for v in freeze_violations(session=session, tz=settings.tz, disclosure=disclosure)
    ]


def _freshness(session: Session, stale: list[str]) -> list[NodeFreshness]:
    latest = last_ok_scans(session=session)
    stale_set = set(stale)
    return [
        NodeFreshness(
            id=n.id,
            name=n.name,
            level=n.level,
            one_cloud=n.one_cloud,
            city=n.city,
            has_sources=bool(n.sources),
            last_complete_scan=latest.get(n.id),
            stale=n.id in stale_set,
        )
        for n in session.exec(
            select(Node).where(col(Node.retired_at).is_(None)).order_by(col(Node.id))
        )
    ]


def _zones(session: Session) -> dict[str, Counter[str]]:
    query = (
        select(System.department_code, System.network_zone, sa.func.count())
        .where(col(System.lifecycle) != "retired")
        .group_by(col(System.department_code), col(System.network_zone))
    )
    zones: dict[str, Counter[str]] = defaultdict(Counter)
    for department, zone, count in session.exec(query):
        zones[department][zone or UNKNOWN_ZONE] += count
    return dict(zones)


def gather_report(
    *,
    session: Session,
    settings: Settings,
    switches: PolicySwitches,
    now: datetime | None = None,
    policy: str | None = None,
    migration_view: MigrationView | None = None,
    disclosure: Disclosure | None = None,
) -> ReportContent:
    """Read the ledger once for every report: KPI, breakdowns, lists, freshness, trend; under
    `policy`, else the settings' (YIYUN_KPI_POLICY). Migration placements come from
    `migration_view`, else migrate/'s own ledger (exporters sit above both). Classified
    systems are counted; the disclosure decides whether they are named."""
    disclosure = disclosure or Disclosure()
    now = now or datetime.now(tz=UTC)
    evidence = gather_evidence(
        session=session, settings=settings, policy=policy_from(settings, policy), now=now
    )
    facts = evidence.facts
    nodes = one_cloud_nodes(session=session)
    stale = stale_nodes(
        session=session, now=now, freshness=timedelta(hours=settings.freshness_hours)
    )
    common: dict[str, Any] = dict(
        nodes=nodes,
        settings=settings,
        switches=switches,
        now=now,
        stale=stale,
        policy=evidence.policy,
        expired=evidence.disclosed_scopes(session, disclosure),
    )
    result, province_report = _contract(facts, by=None, **common)
    _, city_report = _contract(facts, by="city", **common)
    _, department_report = _contract(facts, by="department", **common)

    if migration_view is None:
        # Imported here: migration_view reads this module's types.
        from exporters.reports.migration_view import migration_ledger

        migration_view = migration_ledger
    ledger, placements, waves, assessments, hints = migration_view(session)
    placement = placement_violations(session=session, disclosure=disclosure)
    findings: dict[str, list[PlacementViolation]] = defaultdict(list)
    for finding in placement:
        if not finding.redacted:
            findings[finding.system_code].append(finding)
    systems: list[SystemLine] = []
    classified = 0
    for s in session.exec(select(System).order_by(col(System.code))):
        status = result.statuses[s.code]
        classified += status == CLASSIFIED_EXCLUDED
        if not disclosure.shows_system(session, s.code, classified=s.classified):
            continue
        readiness, blockers = assessments.get(s.code, (None, ()))
        if readiness == NOTHING_TO_MOVE:
            # A system with nothing to move has no blockers of a move: rules it breaks where it
            # runs are compliance findings (placement), not obstacles.
            blockers = ()
        systems.append(
            SystemLine(
                code=s.code,
                name=s.name,
                department_code=s.department_code,
                city=s.city,
                status=status,
                network_zone=s.network_zone,
                mlps_level=s.mlps_level,
                lifecycle=s.lifecycle,
                exemption_valid_until=s.exemption_valid_until,
                placement=placements.get(s.code),
                readiness=readiness,
                blockers=blockers,
                findings=tuple(findings.get(s.code, ())),
                next_step=hints.get(s.code),
            )
        )
    names = {code: name for code, name in session.exec(select(Department.code, Department.name))}
    current = TrendPoint(now, result.numerator, result.denominator, result.rate, current=True)
    trend, omitted = _trend(session, evidence.policy, switches, current)
    return ReportContent(
        as_of=now,
        today=settings.today(now),
        timezone=settings.timezone,
        province=settings.province,
        system_tag=settings.system_tag,
        switches=switches,
        province_report=province_report,
        city_report=city_report,
        department_report=department_report,
        department_names=names,
        systems=systems,
        classified_count=classified,
        violations=_violations(session, settings, disclosure),
        unattributed=[
            (n, k, c) for (n, k), c in sorted(unattributed_counts(session=session).items())
        ],
        nodes=_freshness(session, stale),
        trend=trend,
        trend_omitted=omitted,
        zones=_zones(session),
        migration_ledger=ledger,
        waves=waves,
        placement=placement,
        evidence_max_age_hours=settings.evidence_max_age_hours,
    )
