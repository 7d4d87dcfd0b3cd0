"""The adoption report as DESIGN.md's JSON contract, and dated KPI snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from inventory.adoption import (
    CLASSIFIED_EXCLUDED,
    POLICY,
    STATUSES,
    AdoptionResult,
    PolicySwitches,
    compute_adoption,
)
from inventory.evidence import one_cloud_nodes, stale_nodes, system_facts
from inventory.models import AdoptionSnapshot
from inventory.settings import Settings


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
    *, session: Session, settings: Settings, switches: PolicySwitches, by: str | None, now: datetime
) -> AdoptionResult:
    return compute_adoption(
        system_facts(session=session),
        one_cloud_nodes=one_cloud_nodes(session=session),
        today=settings.today(now),
        switches=switches,
        by=by,
        province=settings.province,
    )


def as_contract(
    result: AdoptionResult, *, as_of: datetime, by: str | None, stale: list[str]
) -> dict[str, Any]:
    """The object `yiyun report adoption --format json` prints (DESIGN.md)."""
    report: dict[str, Any] = {
        "policy": POLICY,
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
    return report


def adoption_report(
    *,
    session: Session,
    settings: Settings,
    switches: PolicySwitches,
    by: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(tz=UTC)
    result = compute(session=session, settings=settings, switches=switches, by=by, now=now)
    stale = stale_nodes(
        session=session, now=now, freshness=timedelta(hours=settings.freshness_hours)
    )
    return as_contract(result, as_of=now, by=by, stale=stale)


def take_snapshot(
    *,
    session: Session,
    settings: Settings,
    switches: PolicySwitches,
    now: datetime | None = None,
) -> AdoptionSnapshot:
    """Store the KPI with every breakdown and the codes behind each status (never classified)."""
    now = now or datetime.now(tz=UTC)
    result = compute(session=session, settings=settings, switches=switches, by=None, now=now)
    groups = {
        by: [
            g.as_dict(switches)
            for g in compute(
                session=session, settings=settings, switches=switches, by=by, now=now
            ).groups
        ]
        for by in ("city", "department", "node")
    }
    codes: dict[str, list[str]] = {s: [] for s in STATUSES if s != CLASSIFIED_EXCLUDED}
    for code, status in sorted(result.statuses.items()):
        if status != CLASSIFIED_EXCLUDED:
            codes[status].append(code)
    snapshot = AdoptionSnapshot(
        taken_at=datetime.now(tz=UTC),
        as_of=now,
        policy=POLICY,
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
    )
    session.add(snapshot)
    session.commit()
    return snapshot


def snapshot_history(*, session: Session, limit: int | None = None) -> list[dict[str, Any]]:
    """Stored snapshots, newest first, as rows for a table."""
    query = select(AdoptionSnapshot).order_by(col(AdoptionSnapshot.as_of).desc())
    if limit:
        query = query.limit(limit)
    return [
        {
            "id": s.id,
            "as_of": s.as_of,
            "policy": s.policy,
            "numerator": s.numerator,
            "denominator": s.denominator,
            "rate": s.rate,
            "exempt_in_denominator": (s.switches or {}).get("exempt_in_denominator"),
            "trust_declared": (s.switches or {}).get("trust_declared"),
        }
        for s in session.exec(query)
    ]
