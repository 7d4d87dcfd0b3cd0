"""Tracking each system through DOMAIN.md's migration sequence, with gates checked by evidence."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.adoption import SystemFacts, classify
from inventory.confidentiality import Disclosure
from inventory.evidence import evidence_clause, one_cloud_nodes
from inventory.models import Resource, System
from inventory.registry import find_system
from migrate.assess import EVIDENCE_ONLY, evidence_statuses
from migrate.models import MigrationEvent, Plan, SystemMigration

# The main sequence (DOMAIN.md, "Migration practice").
SEQUENCE = (
    "surveyed",
    "assessed",
    "planned",
    "provisioning",
    "migrating",
    "testing",
    "cutover",
    "trial_run",
    "accepted",
    "decommissioned",
)
SIDE_STATES = ("on_hold", "rolled_back", "exempted", "cancelled")
STATES = (*SEQUENCE, *SIDE_STATES)

# Every allowed transition; anything not listed is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    "surveyed": frozenset({"assessed", "on_hold", "exempted", "cancelled"}),
    "assessed": frozenset({"planned", "surveyed", "on_hold", "exempted", "cancelled"}),
    "planned": frozenset({"provisioning", "assessed", "on_hold", "exempted", "cancelled"}),
    "provisioning": frozenset({"migrating", "planned", "on_hold", "cancelled"}),
    "migrating": frozenset({"testing", "rolled_back", "on_hold"}),
    "testing": frozenset({"cutover", "migrating", "rolled_back", "on_hold"}),
    "cutover": frozenset({"trial_run", "rolled_back"}),
    "trial_run": frozenset({"accepted", "rolled_back"}),
    "accepted": frozenset({"decommissioned"}),
    "decommissioned": frozenset(),
    # Resuming goes back to the state it was held in, or to an earlier one (see advance).
    "on_hold": frozenset(
        {"surveyed", "assessed", "planned", "provisioning", "migrating", "testing"}
        | {"exempted", "cancelled"}
    ),
    # The system is back on its source: retry, re-plan, pause or give up.
    "rolled_back": frozenset({"migrating", "planned", "on_hold", "cancelled"}),
    # A lapsed or revoked exemption puts the system back into assessment.
    "exempted": frozenset({"assessed", "cancelled"}),
    "cancelled": frozenset(),
}

# States that claim the system runs on the unified cloud.
CLAIMS_ON_CLOUD = frozenset({"cutover", "trial_run", "accepted", "decommissioned"})
# States that claim nothing has moved yet.
BEFORE_MIGRATING = frozenset({"surveyed", "assessed", "planned", "provisioning"})
# States in which a system belongs to its plan's schedule (another plan may not take it).
IN_PROGRESS = frozenset(
    {
        "planned",
        "provisioning",
        "migrating",
        "testing",
        "cutover",
        "trial_run",
        "accepted",
        "decommissioned",
        "on_hold",
        "rolled_back",
    }
)
# Once work has started, the system must keep a wave.
STARTED = frozenset(
    {"provisioning", "migrating", "testing", "cutover", "trial_run", "accepted", "decommissioned"}
)


class TransitionRefused(Exception):
    """A state change the rules or the evidence do not allow; nothing was written."""


def allowed(from_state: str, to_state: str) -> bool:
    return to_state in TRANSITIONS.get(from_state, frozenset())


def resolve_migration(
    *, session: Session, code: str, plan_name: str | None = None
) -> tuple[Plan, SystemMigration]:
    """The plan row a command about `code` means: the named plan, or the only one that fits."""
    query = (
        select(Plan, SystemMigration)
        .join(SystemMigration, col(SystemMigration.plan_id) == col(Plan.id))
        .where(col(SystemMigration.system_code) == code)
        .order_by(col(Plan.id))
    )
    if plan_name is not None:
        query = query.where(col(Plan.name) == plan_name)
    found = list(session.exec(query))
    if not found:
        where = f" in plan {plan_name}" if plan_name else " in any plan"
        raise TransitionRefused(f"system {code} is not{where}")
    if len(found) > 1:
        # Prefer the plan the system is actually moving in.
        active = [pair for pair in found if pair[1].state in IN_PROGRESS]
        if len(active) == 1:
            return active[0]
        names = ", ".join(p.name for p, _ in found)
        raise TransitionRefused(f"system {code} is in plans {names}: say which with --plan")
    return found[0]


def live_resources_on(*, session: Session, code: str, node_ids: Sequence[str]) -> int:
    """Live (non-tombstoned) resources of the system on those nodes, of any kind."""
    query = select(Resource.id).where(
        col(Resource.system_code) == code,
        col(Resource.deleted_at).is_(None),
        col(Resource.node_id).in_(sorted(node_ids)),
    )
    return len(session.exec(query).all())


def evidence_status(*, session: Session, system: System, today: date) -> tuple[str, list[str]]:
    """The system's KPI status by evidence and the nodes behind it (same rules as the KPI)."""
    query = (
        select(Resource.node_id)
        .where(evidence_clause(), col(Resource.system_code) == system.code)
        .distinct()
    )
    nodes = frozenset(session.exec(query))
    facts = SystemFacts(
        code=system.code,
        city=system.city,
        department_code=system.department_code,
        classified=system.classified,
        lifecycle=system.lifecycle,
        exemption_valid_until=system.exemption_valid_until,
        declared_node=system.declared_node,
        evidence_nodes=nodes,
    )
    status = classify(
        facts, one_cloud_nodes=one_cloud_nodes(session=session), today=today, switches=EVIDENCE_ONLY
    )
    return status, sorted(nodes)


def check_gates(
    *,
    session: Session,
    plan: Plan,
    migration: SystemMigration,
    system: System,
    to_state: str,
    today: date,
) -> dict[str, Any]:
    """What the inventory says about the move; raises TransitionRefused when a gate is shut."""
    checks: dict[str, Any] = {}
    if (to_state == "planned" or to_state in STARTED) and migration.wave is None:
        raise TransitionRefused(
            f"{system.code} has no wave in plan {plan.name}: place it in one first "
            "(`yiyun migrate plan import`)"
        )
    if to_state == "accepted":
        status, nodes = evidence_status(session=session, system=system, today=today)
        checks.update(evidence_status=status, evidence_nodes=nodes)
        if status != "on_cloud":
            seen = ", ".join(nodes) if nodes else "no live evidence anywhere"
            raise TransitionRefused(
                f"{system.code} cannot be accepted: the inventory does not see it on the "
                f"unified cloud (status {status}; evidence on: {seen})"
            )
        checks.update(mlps_level=system.mlps_level, crypto_assessed_on=system.crypto_assessed_on)
        if system.mlps_level >= 3:
            if system.crypto_assessed_on is None:
                raise TransitionRefused(
                    f"{system.code} is MLPS level {system.mlps_level}: it needs a 密评 "
                    "(cryptography assessment) record before acceptance (R6)"
                )
            if system.crypto_assessed_on > today:
                raise TransitionRefused(
                    f"{system.code}'s 密评 date {system.crypto_assessed_on} is in the future"
                )
    if to_state == "decommissioned":
        left = live_resources_on(session=session, code=system.code, node_ids=plan.source_nodes)
        checks.update(source_nodes=plan.source_nodes, live_resources_on_source=left)
        if left:
            raise TransitionRefused(
                f"{system.code} cannot be decommissioned: the inventory still sees {left} live "
                f"resource(s) of it on {', '.join(plan.source_nodes)}"
            )
    return checks


def _held_from(*, session: Session, plan_id: int, code: str) -> str | None:
    """The state a system was in when it was last put on hold."""
    query = (
        select(MigrationEvent.from_state)
        .where(
            col(MigrationEvent.plan_id) == plan_id,
            col(MigrationEvent.system_code) == code,
            col(MigrationEvent.to_state) == "on_hold",
        )
        .order_by(col(MigrationEvent.id).desc())
    )
    return session.exec(query).first()


def advance(
    *,
    session: Session,
    code: str,
    to_state: str,
    by: str,
    now: datetime,
    today: date,
    note: str | None = None,
    evidence: str | None = None,
    plan_name: str | None = None,
) -> MigrationEvent:
    """Move a system to `to_state` if the table and the gates allow; log it append-only."""
    if to_state not in STATES:
        raise TransitionRefused(f"unknown state {to_state!r}; expected one of {', '.join(STATES)}")
    if not by.strip():
        raise TransitionRefused("--by is required: say who records this")
    # A classified system is refused as an unknown one (inventory/confidentiality.py).
    system = find_system(session=session, code=code)
    if system is None:
        raise TransitionRefused(f"unknown system {code!r}")
    plan, migration = resolve_migration(session=session, code=code, plan_name=plan_name)
    current = migration.state
    if current == to_state:
        raise TransitionRefused(f"{code} is already {to_state}")
    if not allowed(current, to_state):
        options = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none (final state)"
        raise TransitionRefused(
            f"{code} cannot go from {current} to {to_state}; from {current} it may go to: {options}"
        )
    if current == "on_hold" and to_state in SEQUENCE:
        held = _held_from(session=session, plan_id=plan.id or 0, code=code)
        if held in SEQUENCE and SEQUENCE.index(to_state) > SEQUENCE.index(held):
            raise TransitionRefused(
                f"{code} was put on hold while {held}: it can resume at {held} or an earlier state"
            )
    checks = check_gates(
        session=session,
        plan=plan,
        migration=migration,
        system=system,
        to_state=to_state,
        today=today,
    )
    # Conditional on the state read above, so two people advancing the same system at once
    # cannot both succeed: the second finds the state changed and is refused.
    changed = session.execute(
        sa.update(SystemMigration)
        .where(col(SystemMigration.id) == migration.id, col(SystemMigration.state) == current)
        .values(state=to_state, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise TransitionRefused(f"{code} changed while this ran; look again and retry")
    session.expire(migration)
    event = MigrationEvent(
        system_code=code,
        plan_id=plan.id,
        from_state=current,
        to_state=to_state,
        by=by.strip(),
        at=now,
        note=note,
        evidence=evidence,
        checks=jsonable_checks(checks) or None,
    )
    session.add(event)
    session.flush()
    return event


def jsonable_checks(checks: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in checks.items()}


def history_rows(
    *,
    session: Session,
    code: str,
    plan_name: str | None = None,
    disclosure: Disclosure | None = None,
) -> list[dict[str, Any]]:
    """The migration log of a system as `migrate history` prints it. A classified system has
    none unless the disclosure includes it (as an unknown code has none: nothing confirms
    that it exists), and free text never names a classified system otherwise."""
    disclosure = disclosure or Disclosure()
    classified = session.exec(select(System.classified).where(col(System.code) == code)).first()
    if not disclosure.answers_about(session, code, classified=bool(classified)):
        return []
    return [
        {
            "at": e.at,
            "plan_id": e.plan_id,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "by": e.by,
            "note": disclosure.text(session, e.note),
            "evidence": disclosure.text(session, e.evidence),
            "checks": e.checks,
        }
        for e in history(session=session, code=code, plan_name=plan_name)
    ]


def history(*, session: Session, code: str, plan_name: str | None = None) -> list[MigrationEvent]:
    query = select(MigrationEvent).where(col(MigrationEvent.system_code) == code)
    if plan_name is not None:
        plan = session.exec(select(Plan).where(col(Plan.name) == plan_name)).first()
        query = query.where(col(MigrationEvent.plan_id) == (plan.id if plan else -1))
    return list(session.exec(query.order_by(col(MigrationEvent.id))))


# ---------------------------------------------------------------- status and discrepancies


@dataclass(frozen=True)
class Discrepancy:
    plan: str
    system_code: str
    department_code: str
    wave: int | None
    state: str
    evidence_status: str
    kind: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "system_code": self.system_code,
            "department_code": self.department_code,
            "wave": self.wave,
            "state": self.state,
            "evidence_status": self.evidence_status,
            "kind": self.kind,
            "detail": self.detail,
        }


def find_discrepancy(*, state: str, status: str, live_on_source: int = 0) -> tuple[str, str] | None:
    """(kind, detail) when the claimed state and the evidence disagree, else None."""
    if state in CLAIMS_ON_CLOUD and status == "off_cloud":
        return (
            "claimed_but_off_cloud",
            f"claims {state} but the inventory sees it only off the unified cloud",
        )
    if state in CLAIMS_ON_CLOUD and status == "no_evidence":
        return ("claimed_without_evidence", f"claims {state} but the inventory sees it nowhere")
    if state in ("accepted", "decommissioned") and status == "partial":
        return ("claimed_but_partial", f"claims {state} but part of it is still off the cloud")
    if state in BEFORE_MIGRATING and status == "on_cloud":
        return (
            "on_cloud_not_claimed",
            f"the inventory sees it fully on the unified cloud but its state is still {state}",
        )
    if state == "decommissioned" and live_on_source:
        return (
            "decommissioned_but_live",
            f"claims decommissioned but {live_on_source} live resource(s) remain on the source",
        )
    return None


@dataclass
class StatusReport:
    by: str
    plans: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "plans": self.plans,
            "groups": self.groups,
            "discrepancies": [d.as_dict() for d in self.discrepancies],
        }


def migration_status(
    *,
    session: Session,
    today: date,
    plan_name: str | None = None,
    by: str = "wave",
    disclosure: Disclosure | None = None,
) -> StatusReport:
    """Progress per wave or department, and every place where claims and evidence disagree;
    a classified system only when the disclosure includes it."""
    disclosure = disclosure or Disclosure()
    if by not in ("wave", "department"):
        raise ValueError(f"unknown grouping {by!r}; expected wave or department")
    query = (
        select(Plan, SystemMigration, System)
        .join(SystemMigration, col(SystemMigration.plan_id) == col(Plan.id))
        .join(System, col(System.code) == col(SystemMigration.system_code))
        .order_by(col(Plan.name), col(SystemMigration.system_code))
    )
    if plan_name is not None:
        query = query.where(col(Plan.name) == plan_name)
    rows = [
        r
        for r in session.exec(query)
        if disclosure.shows_system(session, r[2].code, classified=r[2].classified)
    ]
    statuses = evidence_statuses(session=session, today=today, where_only=True)
    source_live = _live_on_sources(session=session, rows=rows)
    report = StatusReport(by=by)
    per_plan: dict[str, Counter[str]] = defaultdict(Counter)
    per_group: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for plan, migration, system in rows:
        per_plan[plan.name][migration.state] += 1
        if by == "department":
            key = system.department_code
        else:
            key = "none" if migration.wave is None else str(migration.wave)
        per_group[(plan.name, key)][migration.state] += 1
        status = statuses.get(system.code, "no_evidence")
        found = find_discrepancy(
            state=migration.state,
            status=status,
            live_on_source=source_live.get((plan.id or 0, system.code), 0),
        )
        if found is not None:
            report.discrepancies.append(
                Discrepancy(
                    plan=plan.name,
                    system_code=system.code,
                    department_code=system.department_code,
                    wave=migration.wave,
                    state=migration.state,
                    evidence_status=status,
                    kind=found[0],
                    detail=found[1],
                )
            )
    for name, counts in sorted(per_plan.items()):
        report.plans.append(_progress({"plan": name}, counts))
    for (name, key), counts in sorted(per_group.items(), key=lambda item: _group_sort(item[0])):
        report.groups.append(_progress({"plan": name, by: key}, counts))
    return report


def _group_sort(key: tuple[str, str]) -> tuple[str, int, str]:
    name, group = key
    return (name, int(group) if group.isdigit() else 1_000_000, group)


def _progress(head: dict[str, Any], counts: Counter[str]) -> dict[str, Any]:
    total = sum(counts.values())
    done = counts["accepted"] + counts["decommissioned"]
    return {
        **head,
        "systems": total,
        "accepted_or_done": done,
        "progress": round(done / total, 4) if total else None,
        "states": {state: counts[state] for state in STATES if counts[state]},
    }


def _live_on_sources(
    *, session: Session, rows: list[tuple[Plan, SystemMigration, System]]
) -> dict[tuple[int, str], int]:
    """(plan id, system) → live resources still on the plan's sources, for decommissioned rows."""
    wanted = [(p, m) for p, m, _ in rows if m.state == "decommissioned"]
    found: dict[tuple[int, str], int] = {}
    for plan, migration in wanted:
        found[(plan.id or 0, migration.system_code)] = live_resources_on(
            session=session, code=migration.system_code, node_ids=plan.source_nodes
        )
    return found
