"""Tracking each system through DOMAIN.md's migration sequence, with gates checked by evidence."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from inventory.access import Actor
from inventory.adoption import SystemFacts, classify
from inventory.audit import record
from inventory.confidentiality import Disclosure
from inventory.evidence import evidence_clause, one_cloud_nodes
from inventory.models import Resource, System
from inventory.queries import classified_ledger
from inventory.registry import find_system
from migrate.assess import EVIDENCE_ONLY, effective, evidence_statuses, reading_scope
from migrate.messages import Refusal, labels, one
from migrate.models import Assessment, MigrationEvent, Plan, SystemMigration
from migrate.rules import MOVING_STRATEGIES, PLACEABLE

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


# A plan that no longer binds anything: kept with its log, never resolved or counted.
ARCHIVED = "archived"
# States past `planned`: work has started (or was paused or undone after it started), so the
# system belongs to its plan and no other plan may take it.
PAST_PLANNED = STARTED | {"rolled_back"}
# MLPS level from which acceptance needs an acceptance document number (验收文号), as 密评.
ACCEPTANCE_DOCUMENT_LEVEL = 3


class TransitionRefused(Refusal):
    """A state change the rules or the evidence do not allow; nothing was written."""


def allowed(from_state: str, to_state: str) -> bool:
    return to_state in TRANSITIONS.get(from_state, frozenset())


def in_force() -> sa.ColumnElement[bool]:
    """The clause of plans in force (not archived)."""
    return col(Plan.status) != ARCHIVED


def resolve_migration(
    *, session: Session, code: str, plan_name: str | None = None
) -> tuple[Plan, SystemMigration]:
    """The plan row a command about `code` means: the named plan, or the only one that fits."""
    query = (
        select(Plan, SystemMigration)
        .join(SystemMigration, col(SystemMigration.plan_id) == col(Plan.id))
        .where(col(SystemMigration.system_code) == code, in_force())
        .order_by(col(Plan.id))
        # A plan's review holds every system's explanation (megabytes at province scale) and
        # no transition reads it: decoding it on each step was most of an advance's time.
        .options(defer(Plan.review))  # type: ignore[arg-type]
    )
    if plan_name is not None:
        query = query.where(col(Plan.name) == plan_name)
    found = list(session.exec(query))
    if not found:
        if plan_name:
            raise TransitionRefused("mig_not_in_plan", code=code, plan=plan_name)
        raise TransitionRefused("mig_not_in_any_plan", code=code)
    if len(found) > 1:
        # Prefer the plan the system is actually moving in.
        for states in (PAST_PLANNED | {"on_hold"}, IN_PROGRESS):
            active = [pair for pair in found if pair[1].state in states]
            if len(active) == 1:
                return active[0]
        names = ", ".join(p.name for p, _ in found)
        raise TransitionRefused("mig_several_plans", code=code, plans=names)
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
    evidence: str | None = None,
) -> dict[str, Any]:
    """What the inventory says about the move; raises TransitionRefused when a gate is shut."""
    checks: dict[str, Any] = {}
    if to_state == "planned" or to_state in STARTED:
        checks.update(wave=migration.wave)
        if migration.wave is None:
            # As `plan import` sees it: an override made since the plan was made counts.
            readiness, strategy = migration.readiness, migration.strategy
            override = session.exec(
                select(Assessment).where(
                    col(Assessment.system_code) == system.code,
                    col(Assessment.superseded_at).is_(None),
                )
            ).first()
            if override is not None and (override.override_readiness or override.override_strategy):
                readiness, strategy = effective(override)
            if readiness in PLACEABLE and strategy in MOVING_STRATEGIES:
                raise TransitionRefused("mig_no_wave", code=system.code, plan=plan.name)
            raise TransitionRefused(
                "mig_no_wave_cannot_move",
                code=system.code,
                plan=plan.name,
                readiness=one("readiness", readiness),
                strategy=one("strategy", strategy),
            )
    if to_state == "accepted":
        status, nodes = evidence_status(session=session, system=system, today=today)
        checks.update(evidence_status=status, evidence_nodes=nodes)
        if status != "on_cloud":
            raise TransitionRefused(
                "mig_not_on_cloud",
                code=system.code,
                status=one("status", status),
                nodes=", ".join(nodes) or "-",
            )
        checks.update(mlps_level=system.mlps_level, crypto_assessed_on=system.crypto_assessed_on)
        if system.mlps_level >= 3:
            if system.crypto_assessed_on is None:
                raise TransitionRefused("mig_no_crypto", code=system.code, level=system.mlps_level)
            if system.crypto_assessed_on > today:
                raise TransitionRefused(
                    "mig_crypto_future", code=system.code, on=system.crypto_assessed_on
                )
        if system.mlps_level >= ACCEPTANCE_DOCUMENT_LEVEL:
            if not (evidence or "").strip():
                raise TransitionRefused(
                    "mig_no_acceptance_document", code=system.code, level=system.mlps_level
                )
            checks.update(acceptance_document=evidence.strip() if evidence else None)
    if to_state == "decommissioned":
        left = live_resources_on(session=session, code=system.code, node_ids=plan.source_nodes)
        checks.update(source_nodes=plan.source_nodes, live_resources_on_source=left)
        if left:
            raise TransitionRefused(
                "mig_still_live",
                code=system.code,
                count=left,
                nodes=", ".join(plan.source_nodes),
            )
    if to_state in STARTED and to_state != "decommissioned":
        # Where the inventory sees the system as it moves: the log then shows the move.
        status, nodes = evidence_status(session=session, system=system, today=today)
        checks.setdefault("evidence_status", status)
        checks.setdefault("evidence_nodes", nodes)
    return checks


def held_from(*, session: Session, plan_id: int, code: str) -> str | None:
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
        raise TransitionRefused("mig_unknown_state", state=to_state, states=labels("state", STATES))
    if not by.strip():
        raise TransitionRefused("mig_by_required")
    # A classified system is refused as an unknown one (inventory/confidentiality.py).
    system = find_system(session=session, code=code)
    if system is None:
        raise TransitionRefused("mig_unknown_system", code=code)
    plan, migration = resolve_migration(session=session, code=code, plan_name=plan_name)
    current = migration.state
    if current == to_state:
        raise TransitionRefused("mig_already", code=code, state=one("state", to_state))
    if not allowed(current, to_state):
        options = [s for s in STATES if s in TRANSITIONS.get(current, ())]
        if not options:
            raise TransitionRefused(
                "mig_final_state",
                code=code,
                state=one("state", current),
                to=one("state", to_state),
            )
        raise TransitionRefused(
            "mig_not_allowed",
            code=code,
            state=one("state", current),
            to=one("state", to_state),
            options=labels("state", options),
        )
    if current == "on_hold" and to_state in SEQUENCE:
        held = held_from(session=session, plan_id=plan.id or 0, code=code)
        if held in SEQUENCE and SEQUENCE.index(to_state) > SEQUENCE.index(held):
            raise TransitionRefused(
                "mig_resume_too_far", code=code, held=one("state", held), held_code=held
            )
    if to_state in STARTED:
        other = moving_elsewhere(session=session, code=code, plan_id=plan.id or 0)
        if other is not None:
            raise TransitionRefused("mig_moving_elsewhere", code=code, plan=plan.name, other=other)
    checks = check_gates(
        session=session,
        plan=plan,
        migration=migration,
        system=system,
        to_state=to_state,
        today=today,
        evidence=evidence,
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
        raise changed_meanwhile(session=session, code=code, migration_id=migration.id)
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


def changed_meanwhile(
    *, session: Session, code: str, migration_id: int | None
) -> TransitionRefused:
    """The refusal for a write that lost a race, carrying the state that won (HTTP 409)."""
    state = session.exec(
        select(SystemMigration.state).where(col(SystemMigration.id) == migration_id)
    ).first()
    refusal = TransitionRefused("mig_changed_meanwhile", code=code)
    refusal.problem_fields = {"current": {"system": code, "state": state}}
    return refusal


def advance_system(
    *,
    session: Session,
    actor: Actor,
    code: str,
    to_state: str,
    now: datetime,
    today: date,
    note: str | None = None,
    evidence: str | None = None,
    plan_name: str | None = None,
    expected_state: str | None = None,
) -> MigrationEvent:
    """`migrate advance` for whoever acts: the actor must hold `advance` over the system's
    department; the step is logged with its signature and audited with before and after.

    `expected_state` is the optimistic check of a caller that showed a state to a person:
    if the system has moved since, the write is refused with the state it is in now."""
    if actor.require_system(session, "advance", code) is None:
        # Outside the actor's scope or classified reads as unknown: no existence oracle.
        raise TransitionRefused("mig_unknown_system", code=code)
    if expected_state is not None:
        _plan, migration = resolve_migration(session=session, code=code, plan_name=plan_name)
        if migration.state != expected_state:
            raise changed_meanwhile(session=session, code=code, migration_id=migration.id)
    event = advance(
        session=session,
        code=code,
        to_state=to_state,
        by=actor.signature,
        now=now,
        today=today,
        note=note,
        evidence=evidence,
        plan_name=plan_name,
    )
    record(
        session=session,
        actor=actor,
        action="migration.advance",
        target=code,
        before={"state": event.from_state, "plan_id": event.plan_id},
        after={"state": event.to_state, "evidence": evidence, "note": note, "event_id": event.id},
        now=now,
    )
    return event


def moving_elsewhere(*, session: Session, code: str, plan_id: int) -> str | None:
    """The plan in force, other than `plan_id`, in which the system is past `planned`."""
    query = (
        select(Plan.name)
        .join(SystemMigration, col(SystemMigration.plan_id) == col(Plan.id))
        .where(
            col(SystemMigration.system_code) == code,
            col(SystemMigration.plan_id) != plan_id,
            col(SystemMigration.state).in_(sorted(PAST_PLANNED)),
            in_force(),
        )
        .order_by(col(Plan.name))
    )
    return session.exec(query).first()


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
    names = dict(session.exec(select(Plan.id, Plan.name)).all())
    return [
        {
            "at": e.at,
            "plan": names.get(e.plan_id, f"#{e.plan_id}") if e.plan_id is not None else None,
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


# How each gate fact reads in a table: its label's key, and the kind of label for its value.
_CHECK_VALUE_LABELS = {
    "evidence_status": "status",
    "readiness": "readiness",
    "strategy": "strategy",
}


def checks_text(checks: dict[str, Any] | None, lang: str) -> str:
    """The gate facts of one log entry as a person reads them ("上云状态：已上云；波次：2")."""
    from inventory.i18n import label, text

    if not checks:
        return ""
    parts = []
    for key, value in checks.items():
        if isinstance(value, list):
            shown = ", ".join(str(v) for v in value) or "-"
        elif value is None:
            shown = "-"
        elif isinstance(value, bool):
            shown = text("mig_yes" if value else "mig_no", lang)
        elif key in _CHECK_VALUE_LABELS:
            shown = label(_CHECK_VALUE_LABELS[key], str(value), lang)
        else:
            shown = str(value)
        name = label("mig_check", key, lang)
        parts.append(f"{name}{'：' if lang != 'en' else ': '}{shown}")
    return ("；" if lang != "en" else "; ").join(parts)


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


# ---------------------------------------------------------------- use cases (session=, actor=)


def migration_progress(
    *,
    session: Session,
    actor: Actor,
    today: date,
    plan_name: str | None = None,
    by: str = "wave",
    disclosure: Disclosure | None = None,
) -> StatusReport:
    """`migrate status` for whoever reads. Progress per plan and per wave is an aggregate, so
    everyone reads all of it (classified systems counted, never named); per department, and
    every discrepancy (which names a system), only what the actor may read."""
    from migrate.plans import get_plan  # plans builds on tracking: imported when called

    within = reading_scope(actor)
    if plan_name is not None:
        get_plan(session=session, name=plan_name)
    report = migration_status(
        session=session, today=today, plan_name=plan_name, by=by, disclosure=disclosure
    )
    if within is None:
        return report
    readable = {s.code: s for s in session.exec(select(System)) if within(s)}
    departments = {s.department_code for s in readable.values()} | (
        actor.readable_departments(session) or set()
    )
    if by == "department":
        report.groups = [g for g in report.groups if g["department"] in departments]
    report.discrepancies = [d for d in report.discrepancies if d.system_code in readable]
    return report


def system_history(
    *,
    session: Session,
    actor: Actor,
    code: str,
    plan_name: str | None = None,
    disclosure: Disclosure | None = None,
) -> list[dict[str, Any]]:
    """`migrate history` for whoever reads: a system the actor may not read, a classified one
    (unless the disclosure includes it) and an unknown code are refused alike, as unknown."""
    # The classified ledger is kept per ledger mark: reading it is a scan of namespace rows.
    disclosure = disclosure or Disclosure(_ledger=classified_ledger(session))
    system = session.exec(select(System).where(col(System.code) == code)).first()
    if (
        system is None
        or not disclosure.answers_about(session, code, classified=system.classified)
        or not actor.may("read", department=system.department_code, city=system.city)
    ):
        raise TransitionRefused("mig_unknown_system", code=code)
    return history_rows(session=session, code=code, plan_name=plan_name, disclosure=disclosure)
