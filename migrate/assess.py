"""Assessment of registered systems from the ledger: verdicts, sizing and audited overrides."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from inventory.access import Actor
from inventory.adoption import PolicySwitches, classify
from inventory.audit import record
from inventory.confidentiality import Disclosure
from inventory.evidence import one_cloud_nodes, system_facts
from inventory.models import Node, Resource, System
from inventory.registry import find_system
from migrate.messages import Refusal, labels, one
from migrate.models import Assessment
from migrate.rules import (
    MOVING_STRATEGIES,
    PLACEABLE,
    READINESS,
    STRATEGIES,
    SystemProfile,
    TargetProfile,
    Verdict,
    assess,
    assess_best,
    override_refusal,
    recommend_strategy,
)
from migrate.sizing import Sizing, system_sizing

# Gates and assessment use evidence only, never self-declaration (trust_declared off).
EVIDENCE_ONLY = PolicySwitches(trust_declared=False)


class AssessmentError(Refusal):
    """A request the assessment cannot honour (unknown node or system, refused override)."""


# Which systems an actor's grants let it act on: None for the whole province.
Within = Callable[[System], bool] | None


def acting_scope(actor: Actor, action: str) -> Within:
    """The systems `actor` may take `action` on: None when a province grant allows it, else a
    test of each system against the narrower grants; refused when no grant allows it at all."""
    if actor.may(action):
        return None
    if not any(grant.allows(action) for grant in actor.grants):
        actor.require(action)

    def within(system: System) -> bool:
        return actor.may(action, department=system.department_code, city=system.city)

    return within


def reading_scope(actor: Actor) -> Within:
    """The systems `actor` may read: None for a province-wide reader."""
    return acting_scope(actor, "read")


def evidence_statuses(
    *,
    session: Session,
    today: date,
    where_only: bool = False,
    codes: Collection[str] | None = None,
) -> dict[str, str]:
    """system code → KPI status by evidence, exactly as `report adoption` computes it (for
    every system, or those of `codes`).

    With `where_only`, exemptions are set aside so the status says only where the evidence
    is (an exempt system claiming cutover while still off the cloud is still a discrepancy).
    """
    nodes = one_cloud_nodes(session=session)
    return {
        facts.code: classify(
            replace(facts, exemption_valid_until=None) if where_only else facts,
            one_cloud_nodes=nodes,
            today=today,
            switches=EVIDENCE_ONLY,
        )
        for facts in system_facts(session=session, codes=codes)
    }


def system_profiles(*, session: Session, today: date) -> dict[str, tuple[System, SystemProfile]]:
    """Every registered system with the facts the rules need."""
    statuses = evidence_statuses(session=session, today=today)
    cloud = one_cloud_nodes(session=session)
    kinds: dict[str, set[str]] = {}
    query = (
        select(Resource.system_code, Resource.kind)
        .where(
            col(Resource.deleted_at).is_(None),
            col(Resource.system_code).is_not(None),
            col(Resource.node_id).not_in(sorted(cloud)),
        )
        .distinct()
    )
    for code, kind in session.exec(query):
        if code is not None:
            kinds.setdefault(code, set()).add(kind)
    levels = dict(session.exec(select(Node.id, Node.level)).all())
    profiles: dict[str, tuple[System, SystemProfile]] = {}
    for system in session.exec(select(System).order_by(col(System.code))):
        profiles[system.code] = (
            system,
            SystemProfile(
                code=system.code,
                mlps_level=system.mlps_level,
                classified=system.classified,
                data_level=system.data_level,
                lifecycle=system.lifecycle,
                exemption_valid_until=system.exemption_valid_until,
                crypto_assessed_on=system.crypto_assessed_on,
                evidence_status=statuses.get(system.code, "no_evidence"),
                kinds_to_move=frozenset(kinds.get(system.code, ())),
                declared_node_level=levels.get(system.declared_node or ""),
            ),
        )
    return profiles


def target_profile(node: Node) -> TargetProfile:
    return TargetProfile(
        id=node.id, mlps_level=node.mlps_level, dedicated_level4_pool=node.dedicated_level4_pool
    )


def target_profiles(*, session: Session, node_id: str | None = None) -> list[TargetProfile]:
    """The unified-cloud nodes to assess against: the one asked for, or all not retired."""
    if node_id is not None:
        node = session.get(Node, node_id)
        if node is None:
            raise AssessmentError("mig_unknown_node", node=node_id)
        if not node.one_cloud:
            raise AssessmentError("mig_node_not_one_cloud", node=node_id)
        return [target_profile(node)]
    nodes = session.exec(
        select(Node)
        .where(col(Node.one_cloud).is_(True), col(Node.retired_at).is_(None))
        .order_by(col(Node.id))
    )
    return [target_profile(n) for n in nodes]


def current_assessments(
    *, session: Session, codes: Collection[str] | None = None
) -> dict[str, Assessment]:
    """system code → its assessment in force (of every system, or those of `codes`)."""
    query = select(Assessment).where(col(Assessment.superseded_at).is_(None))
    if codes is not None:
        query = query.where(col(Assessment.system_code).in_(sorted(codes)))
    return {row.system_code: row for row in session.exec(query)}


def effective(row: Assessment) -> tuple[str, str | None]:
    """Readiness and strategy after a human override, if any."""
    return (row.override_readiness or row.readiness, row.override_strategy or row.strategy)


@dataclass
class AssessmentRun:
    """The outcome of `migrate assess`: the assessments in force and what changed."""

    rows: list[tuple[System, Assessment]] = field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    classified: int = 0  # assessed, withheld from `rows` (inventory/confidentiality.py)
    # False when only the systems an actor's narrower grants cover were assessed.
    whole_province: bool = True


def _outcome(verdict: Verdict, sizing: Sizing) -> dict[str, Any]:
    return {
        "node_id": verdict.target,
        "readiness": verdict.readiness,
        "strategy": verdict.strategy,
        "rules": [r.as_dict() for r in verdict.rules],
        "sizing_vcpu": round(sizing.vcpu, 3),
        "sizing_memory_gib": round(sizing.memory_gib, 3),
        "sizing_storage_gib": round(sizing.storage_gib, 3),
    }


def run_assessment(
    *,
    session: Session,
    now: datetime,
    today: date,
    node_id: str | None = None,
    disclosure: Disclosure | None = None,
    within: Within = None,
) -> AssessmentRun:
    """Assess every registered system (or those `within` a scope); store a new row only where
    the outcome changed.

    Without a node, each system is assessed against every unified-cloud node and keeps the
    most favourable verdict. A standing override is carried over to the new row: it is a
    person's decision and only a person removes it.
    """
    disclosure = disclosure or Disclosure()
    targets = target_profiles(session=session, node_id=node_id)
    profiles = system_profiles(session=session, today=today)
    cloud = one_cloud_nodes(session=session)
    sizing = system_sizing(session=session, exclude_node_ids=cloud)
    current = current_assessments(session=session)
    run = AssessmentRun()
    for code, (system, profile) in profiles.items():
        if within is not None and not within(system):
            continue
        verdict = (
            assess(profile, targets[0], today=today)
            if node_id is not None
            else assess_best(profile, targets, today=today)
        )
        outcome = _outcome(verdict, sizing.get(code, Sizing()))
        row = current.get(code)
        if row is not None and all(getattr(row, k) == v for k, v in outcome.items()):
            run.unchanged += 1
        else:
            new = Assessment(system_code=code, assessed_at=now, **outcome)
            if row is not None:
                row.superseded_at = now
                session.add(row)
                for name in ("readiness", "strategy", "rationale", "by", "at"):
                    setattr(new, f"override_{name}", getattr(row, f"override_{name}"))
            session.add(new)
            row = new
            run.written += 1
        if disclosure.shows_system(session, code, classified=system.classified):
            run.rows.append((system, row))
        else:
            run.classified += 1
    session.flush()
    return run


def override_assessment(
    *,
    session: Session,
    code: str,
    by: str,
    rationale: str,
    now: datetime,
    today: date,
    readiness: str | None = None,
    strategy: str | None = None,
    clear: bool = False,
    expected_id: int | None = None,
) -> Assessment:
    """Record a person's readiness and/or strategy for a system; the old row stays as history.

    With `expected_id`, the assessment in force must still be that one (else 409)."""
    check_override(by=by, rationale=rationale, readiness=readiness, strategy=strategy, clear=clear)
    # Classified systems are outside migration (R3) and never confirmed by name
    # (inventory/confidentiality.py).
    if find_system(session=session, code=code) is None:
        raise AssessmentError("mig_override_unknown_system", code=code)
    row = current_assessment(session=session, code=code)
    if expected_id is not None and (row is None or row.id != expected_id):
        raise overridden_meanwhile(session=session, code=code)
    if row is None:
        profile = system_profiles(session=session, today=today)[code][1]
        cloud = one_cloud_nodes(session=session)
        verdict = assess_best(profile, target_profiles(session=session), today=today)
        sizing = system_sizing(session=session, exclude_node_ids=cloud).get(code, Sizing())
        row = Assessment(system_code=code, assessed_at=now, **_outcome(verdict, sizing))
    if readiness in PLACEABLE and strategy is None and not clear:
        # A system made placeable needs a moving strategy too: the one the rules recommend
        # for a placeable system, unless the person gave one (retain would keep it out).
        kept = row.override_strategy or row.strategy
        if kept not in MOVING_STRATEGIES:
            profile = system_profiles(session=session, today=today)[code][1]
            recommended = recommend_strategy(profile, readiness).outcome
            if recommended not in MOVING_STRATEGIES:
                raise AssessmentError(
                    "mig_override_needs_strategy",
                    code=code,
                    strategy=one("strategy", recommended),
                    choices=labels("strategy", sorted(MOVING_STRATEGIES)),
                )
            strategy = recommended
    refusal = override_refusal(row.rules or [], readiness, strategy)
    if refusal is not None:
        raise AssessmentError("mig_r3_override")
    new = Assessment(
        system_code=code,
        node_id=row.node_id,
        readiness=row.readiness,
        strategy=row.strategy,
        rules=row.rules,
        sizing_vcpu=row.sizing_vcpu,
        sizing_memory_gib=row.sizing_memory_gib,
        sizing_storage_gib=row.sizing_storage_gib,
        assessed_at=row.assessed_at,
        override_readiness=None if clear else readiness or row.override_readiness,
        override_strategy=None if clear else strategy or row.override_strategy,
        override_rationale=rationale.strip(),
        override_by=by.strip(),
        override_at=now,
    )
    # Two overrides of one system at once: the later finds the row it read superseded, or a
    # current row that was not there when it read, and is refused with nothing written.
    _hold_system(session=session, code=code)
    if row.id is not None:
        superseded = session.execute(
            sa.update(Assessment)
            .where(col(Assessment.id) == row.id, col(Assessment.superseded_at).is_(None))
            .values(superseded_at=now)
            .execution_options(synchronize_session=False)
        )
        if superseded.rowcount != 1:  # type: ignore[attr-defined]
            raise overridden_meanwhile(session=session, code=code)
        session.expire(row)
    session.add(new)
    session.flush()
    if _current_rows(session=session, code=code) != 1:
        raise overridden_meanwhile(session=session, code=code)
    return new


def check_override(
    *, by: str, rationale: str, readiness: str | None, strategy: str | None, clear: bool
) -> None:
    """Refuse an override that says too little (who, why, what) or names no real value."""
    if not by.strip():
        raise AssessmentError("mig_override_by_required")
    if not rationale.strip():
        raise AssessmentError("mig_override_rationale_required")
    if not clear and readiness is None and strategy is None:
        raise AssessmentError("mig_override_nothing")
    if readiness is not None and readiness not in READINESS:
        raise AssessmentError(
            "mig_unknown_readiness", value=readiness, choices=labels("readiness", READINESS)
        )
    if strategy is not None and strategy not in STRATEGIES:
        raise AssessmentError(
            "mig_unknown_strategy", value=strategy, choices=labels("strategy", STRATEGIES)
        )


def _hold_system(*, session: Session, code: str) -> None:
    """Row-lock the system on PostgreSQL, so writes about it queue and each then reads what the
    one before it committed; on SQLite the first write of a transaction locks the ledger."""
    session.exec(select(System.id).where(col(System.code) == code).with_for_update()).first()


def _current_rows(*, session: Session, code: str) -> int:
    query = select(func.count()).where(
        col(Assessment.system_code) == code, col(Assessment.superseded_at).is_(None)
    )
    return int(session.exec(query).one())


def overridden_meanwhile(*, session: Session, code: str) -> AssessmentError:
    """The refusal of an override that lost a race, carrying the assessment in force (409)."""
    current = session.exec(
        select(Assessment)
        .where(col(Assessment.system_code) == code, col(Assessment.superseded_at).is_(None))
        .order_by(col(Assessment.id).desc())
    ).first()
    refusal = AssessmentError("mig_override_changed_meanwhile", code=code)
    shown: dict[str, Any] = {"system": code, "assessment_id": None}
    if current is not None:
        readiness, strategy = effective(current)
        shown.update(
            assessment_id=current.id,
            readiness=readiness,
            strategy=strategy,
            override_by=current.override_by,
        )
    refusal.problem_fields = {"current": shown}
    return refusal


def assessment_history(*, session: Session, code: str) -> list[Assessment]:
    """Every assessment row of a system, oldest first (the override audit trail)."""
    query = (
        select(Assessment).where(col(Assessment.system_code) == code).order_by(col(Assessment.id))
    )
    return list(session.exec(query))


# ---------------------------------------------------------------- use cases (session=, actor=)


def assess_in_scope(
    *,
    session: Session,
    actor: Actor,
    now: datetime,
    today: date,
    node_id: str | None = None,
    disclosure: Disclosure | None = None,
) -> AssessmentRun:
    """`migrate assess` for whoever acts: the whole province with a province grant, else only
    the systems the actor's grants cover; audited with what changed."""
    within = acting_scope(actor, "assess")
    run = run_assessment(
        session=session,
        now=now,
        today=today,
        node_id=node_id,
        disclosure=disclosure,
        within=within,
    )
    run.whole_province = within is None
    record(
        session=session,
        actor=actor,
        action="assessment.run",
        target=node_id or "*",
        after={
            "scope": "province" if within is None else "grants",
            "written": run.written,
            "unchanged": run.unchanged,
        },
        now=now,
    )
    return run


def assessments_in_scope(
    *,
    session: Session,
    actor: Actor,
    system: str | None = None,
    readiness: str | None = None,
    disclosure: Disclosure | None = None,
) -> list[tuple[System, Assessment]]:
    """The assessments in force that the actor may read, by system code: filtered to one
    system and/or one effective readiness (after overrides); classified systems only when the
    disclosure includes them."""
    disclosure = disclosure or Disclosure()
    within = reading_scope(actor)
    query = (
        select(System, Assessment)
        .join(Assessment, col(Assessment.system_code) == col(System.code))
        .where(col(Assessment.superseded_at).is_(None))
        .order_by(col(System.code), col(Assessment.id))
    )
    if system is not None:
        query = query.where(col(System.code) == system)
    rows = []
    for found, row in session.exec(query):
        if within is not None and not within(found):
            continue
        if readiness is not None and effective(row)[0] != readiness:
            continue
        if disclosure.shows_system(session, found.code, classified=found.classified):
            rows.append((found, row))
    return rows


def override_system(
    *,
    session: Session,
    actor: Actor,
    code: str,
    rationale: str,
    now: datetime,
    today: date,
    readiness: str | None = None,
    strategy: str | None = None,
    clear: bool = False,
    expected_assessment: int | None = None,
) -> tuple[System, Assessment]:
    """`migrate assess override` for whoever acts: the actor must hold `override` over the
    system's department; the decision is signed, kept as history and audited. Returns the
    system and its assessment now in force.

    `expected_assessment` is the optimistic check of a caller that showed an assessment to a
    person: if it is no longer the one in force, nothing is written (409)."""
    # What the request says is checked first, as the command line always has.
    check_override(
        by=actor.signature,
        rationale=rationale,
        readiness=readiness,
        strategy=strategy,
        clear=clear,
    )
    system = actor.require_system(session, "override", code)
    if system is None:
        # Outside the actor's scope or classified reads as unknown: no existence oracle.
        raise AssessmentError("mig_override_unknown_system", code=code)
    before = current_assessment(session=session, code=code)
    if expected_assessment is not None and (before is None or before.id != expected_assessment):
        raise overridden_meanwhile(session=session, code=code)
    was = effective(before) if before is not None else None
    row = override_assessment(
        session=session,
        code=code,
        by=actor.signature,
        rationale=rationale,
        now=now,
        today=today,
        readiness=readiness,
        strategy=strategy,
        clear=clear,
        # What the audit says it replaced is what the write replaces, or nothing is written.
        expected_id=before.id if before is not None else None,
    )
    after = effective(row)
    record(
        session=session,
        actor=actor,
        action="assessment.override",
        target=code,
        before=None if was is None else {"readiness": was[0], "strategy": was[1]},
        after={
            "readiness": after[0],
            "strategy": after[1],
            "rationale": row.override_rationale,
            "cleared": clear,
            "assessment_id": row.id,
        },
        now=now,
    )
    return system, row


def current_assessment(*, session: Session, code: str) -> Assessment | None:
    """The assessment of one system in force, if it was ever assessed."""
    query = select(Assessment).where(
        col(Assessment.system_code) == code, col(Assessment.superseded_at).is_(None)
    )
    return session.exec(query.order_by(col(Assessment.id).desc())).first()
