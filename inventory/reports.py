"""The adoption report as DESIGN.md's JSON contract, and dated KPI snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from inventory.adoption import (
    CLASSIFIED_EXCLUDED,
    EVIDENCE_V2,
    POLICIES,
    STATUSES,
    AdoptionResult,
    PolicySwitches,
    SystemFacts,
    compute_adoption,
)
from inventory.confidentiality import Disclosure
from inventory.evidence import (
    ScopeKey,
    expired_scopes,
    one_cloud_nodes,
    scope_label,
    stale_nodes,
    system_facts,
)
from inventory.models import AdoptionSnapshot
from inventory.settings import Settings


class UnknownPolicy(ValueError):
    """A KPI policy that is not one of inventory.adoption.POLICIES."""

    def __init__(self, policy: str) -> None:
        super().__init__(f"unknown KPI policy {policy!r}; use one of {', '.join(POLICIES)}")
        self.policy = policy


def policy_from(settings: Settings, policy: str | None = None) -> str:
    """The KPI policy in force: an explicit choice, else the setting (YIYUN_KPI_POLICY)."""
    chosen = policy or settings.kpi_policy
    if chosen not in POLICIES:
        raise UnknownPolicy(chosen)
    return chosen


@dataclass(frozen=True)
class Evidence:
    """What one policy counts as evidence at one moment: each system's facts, and the scopes
    whose live rows it set aside (evidence-v2; never any under evidence-v1)."""

    policy: str
    facts: list[SystemFacts]
    expired: list[ScopeKey]

    @property
    def expired_scopes(self) -> list[str]:
        return [scope_label(key) for key in self.expired]

    def disclosed_scopes(self, session: Session, disclosure: Disclosure) -> list[str]:
        """The expired scopes as a report may print them: a classified system's namespace
        redacted unless the disclosure includes it."""
        return [disclosure.scope_label(session, label) for label in self.expired_scopes]


def gather_evidence(
    *, session: Session, settings: Settings, policy: str, now: datetime
) -> Evidence:
    """Read the evidence once. The expired scopes come first and are usually none, in which
    case the evidence query is the plain one over the live-evidence index."""
    expired: list[ScopeKey] = []
    if policy == EVIDENCE_V2:
        max_age = timedelta(hours=settings.evidence_max_age_hours)
        expired = expired_scopes(session=session, now=now, max_age=max_age)
    return Evidence(policy, system_facts(session=session, expired=expired), expired)


def switches_from(
    settings: Settings,
    *,
    exempt_in_denominator: bool | None = None,
    trust_declared: bool | None = None,
) -> PolicySwitches:
    """The policy switches in force: explicit choices, else the settings' defaults."""
    return PolicySwitches(
        exempt_in_denominator=settings.exempt_in_denominator
        if exempt_in_denominator is None
        else exempt_in_denominator,
        trust_declared=settings.trust_declared if trust_declared is None else trust_declared,
    )


def compute(
    *,
    session: Session,
    settings: Settings,
    switches: PolicySwitches,
    by: str | None,
    now: datetime,
    evidence: Evidence | None = None,
) -> AdoptionResult:
    """The KPI over `evidence`, read under the settings' policy when not given."""
    if evidence is None:
        evidence = gather_evidence(
            session=session, settings=settings, policy=policy_from(settings), now=now
        )
    return compute_adoption(
        evidence.facts,
        one_cloud_nodes=one_cloud_nodes(session=session),
        today=settings.today(now),
        switches=switches,
        by=by,
        province=settings.province,
        policy=evidence.policy,
    )


def as_contract(
    result: AdoptionResult,
    *,
    as_of: datetime,
    by: str | None,
    stale: list[str],
    expired: list[str],
) -> dict[str, Any]:
    """The object `yiyun report adoption --format json` prints (DESIGN.md)."""
    report: dict[str, Any] = {
        "policy": result.policy,
        "as_of": as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "numerator": result.numerator,
        "denominator": result.denominator,
        "rate": result.rate,
        "counts": {s: result.total.counts[s] for s in STATUSES},
    }
    if by is not None:
        report["by"] = by
        report["groups"] = [g.as_dict(result.switches) for g in result.groups]
    report["switches"] = result.switches.as_dict()
    report["stale_nodes"] = stale
    report["expired_scopes"] = expired
    return report


def adoption_report(
    *,
    session: Session,
    settings: Settings,
    switches: PolicySwitches,
    by: str | None = None,
    now: datetime | None = None,
    policy: str | None = None,
    disclosure: Disclosure | None = None,
) -> dict[str, Any]:
    disclosure = disclosure or Disclosure()
    now = now or datetime.now(tz=UTC)
    evidence = gather_evidence(
        session=session, settings=settings, policy=policy_from(settings, policy), now=now
    )
    result = compute(
        session=session, settings=settings, switches=switches, by=by, now=now, evidence=evidence
    )
    stale = stale_nodes(
        session=session, now=now, freshness=timedelta(hours=settings.freshness_hours)
    )
    expired = evidence.disclosed_scopes(session, disclosure)
    return as_contract(result, as_of=now, by=by, stale=stale, expired=expired)


def take_snapshot(
    *,
    session: Session,
    settings: Settings,
    switches: PolicySwitches,
    now: datetime | None = None,
    policy: str | None = None,
) -> AdoptionSnapshot:
    """Store the KPI with every breakdown and the codes behind each status (never classified),
    under the policy in force, with the scopes whose evidence it set aside."""
    now = now or datetime.now(tz=UTC)
    evidence = gather_evidence(
        session=session, settings=settings, policy=policy_from(settings, policy), now=now
    )
    common: dict[str, Any] = dict(
        session=session, settings=settings, switches=switches, now=now, evidence=evidence
    )
    result = compute(by=None, **common)
    groups = {
        by: [g.as_dict(switches) for g in compute(by=by, **common).groups]
        for by in ("city", "department", "node")
    }
    codes: dict[str, list[str]] = {s: [] for s in STATUSES if s != CLASSIFIED_EXCLUDED}
    for code, status in sorted(result.statuses.items()):
        if status != CLASSIFIED_EXCLUDED:
            codes[status].append(code)
    snapshot = AdoptionSnapshot(
        taken_at=datetime.now(tz=UTC),
        as_of=now,
        policy=evidence.policy,
        switches=switches.as_dict(),
        numerator=result.numerator,
        denominator=result.denominator,
        rate=result.rate,
        counts={s: result.total.counts[s] for s in STATUSES},
        groups=groups,
        system_codes=codes,
        stale_nodes=stale_nodes(
            session=session, now=now, freshness=timedelta(hours=settings.freshness_hours)
        ),
        expired_scopes=evidence.expired_scopes,
    )
    session.add(snapshot)
    session.commit()
    return snapshot


def snapshot_rows(
    *, session: Session, offset: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """Stored snapshots oldest first, as rows for a table, from `offset`. `policy_change` marks
    the first snapshot under a policy other than the one before it ("evidence-v1 →
    evidence-v2"): the figures on either side of it were decided by different rules."""
    # Only the headline columns: a snapshot's code lists are large at province scale.
    query = sa.select(
        col(AdoptionSnapshot.id),
        col(AdoptionSnapshot.as_of),
        col(AdoptionSnapshot.policy),
        col(AdoptionSnapshot.switches),
        col(AdoptionSnapshot.numerator),
        col(AdoptionSnapshot.denominator),
        col(AdoptionSnapshot.rate),
    ).order_by(col(AdoptionSnapshot.as_of), col(AdoptionSnapshot.id))
    # The snapshot before the page too: whether the first on it changed the policy.
    before = 1 if offset > 0 else 0
    query = query.offset(offset - before)
    if limit is not None:
        query = query.limit(limit + before)
    rows: list[dict[str, Any]] = []
    previous: str | None = None
    for index, (id_, as_of, policy, switches, numerator, denominator, rate) in enumerate(
        session.execute(query)
    ):
        if index >= before:
            rows.append(
                {
                    "id": id_,
                    "as_of": as_of,
                    "policy": policy,
                    "policy_change": f"{previous} → {policy}"
                    if previous is not None and policy != previous
                    else None,
                    "numerator": numerator,
                    "denominator": denominator,
                    "rate": rate,
                    "exempt_in_denominator": (switches or {}).get("exempt_in_denominator"),
                    "trust_declared": (switches or {}).get("trust_declared"),
                }
            )
        previous = policy
    return rows
