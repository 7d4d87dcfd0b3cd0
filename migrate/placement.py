"""Placement on the unified cloud: systems already there whose node breaks R1–R6 (合规问题)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from inventory.confidentiality import REDACTED, Disclosure
from inventory.evidence import evidence_nodes, one_cloud_nodes, retired_nodes
from inventory.models import Node, System
from inventory.violations import PlacementViolation, RuleBreach
from migrate.assess import target_profile
from migrate.rules import NOT_APPLICABLE, PASS, PLACEMENT_RULES, SystemProfile, TargetProfile


def placement_profile(system: System) -> SystemProfile:
    """What R1–R6 read of a system: its register fields (the rest is for scope and strategy)."""
    return SystemProfile(
        code=system.code,
        mlps_level=system.mlps_level,
        classified=system.classified,
        data_level=system.data_level,
        lifecycle=system.lifecycle,
        crypto_assessed_on=system.crypto_assessed_on,
    )


def breaches(system: SystemProfile, node: TargetProfile) -> tuple[RuleBreach, ...]:
    """The placement rules the system breaks on that node: the rules' own verdicts, the same
    functions migration assessment runs, and only those that decided something."""
    found = []
    for rule in PLACEMENT_RULES.values():
        result = rule(system, node)
        if result.outcome not in (PASS, NOT_APPLICABLE):
            found.append(RuleBreach(result.id, result.outcome, result.reason, dict(result.facts)))
    return tuple(found)


def systems_on_cloud(*, session: Session) -> dict[str, frozenset[str]]:
    """system code → the unified-cloud nodes it runs on, for systems whose live evidence is
    all on the unified cloud (the KPI's on_cloud by evidence, classified ones included: being
    there is what the rules judge)."""
    cloud = one_cloud_nodes(session=session)
    where = evidence_nodes(session=session, retired=retired_nodes(session=session))
    return {
        code: frozenset(nodes)
        for code, nodes in where.items()
        if nodes and nodes <= cloud  # a partial system is still moving: assessment's business
    }


def placement_violations(
    *, session: Session, disclosure: Disclosure | None = None
) -> list[PlacementViolation]:
    """One finding per (node, system) where a system on the unified cloud breaks any of R1–R6;
    a classified system's is kept, its code, name and facts redacted unless disclosed."""
    disclosure = disclosure or Disclosure()
    placed = systems_on_cloud(session=session)
    if not placed:
        return []
    on = sorted(set().union(*placed.values()))
    nodes = {
        n.id: target_profile(n) for n in session.exec(select(Node).where(col(Node.id).in_(on)))
    }
    # Every system is read rather than thousands of codes bound as parameters.
    systems = session.exec(select(System).where(col(System.lifecycle) != "retired"))
    found = []
    for system in systems:
        if system.code not in placed:
            continue
        profile = placement_profile(system)
        for node_id in sorted(placed[system.code]):
            broken = breaches(profile, nodes[node_id])
            if not broken:
                continue
            shown = disclosure.shows_system(session, system.code, classified=system.classified)
            found.append(
                PlacementViolation(
                    node_id=node_id,
                    system_code=system.code if shown else REDACTED,
                    name=system.name if shown else None,
                    department_code=system.department_code if shown else None,
                    # A classified system's facts (its level, its data) stay withheld too.
                    breaches=broken
                    if shown
                    else tuple(RuleBreach(b.rule, b.outcome, REDACTED) for b in broken),
                    redacted=not shown,
                )
            )
    return sorted(found, key=lambda v: (v.node_id, v.redacted, v.system_code))


def placement_counts(*, session: Session) -> dict[str, int]:
    """unified-cloud node → systems placed on it against R1–R6, zeros included: the exporter's
    yiyun_policy_violations{rule="placement"} (exporters.snapshot.PlacementCounts)."""
    counts = dict.fromkeys(sorted(one_cloud_nodes(session=session)), 0)
    for violation in placement_violations(session=session, disclosure=Disclosure()):
        counts[violation.node_id] = counts.get(violation.node_id, 0) + 1
    return counts
