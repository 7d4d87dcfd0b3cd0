"""The demo's sample migration, run for real: a plan by the planner, a few systems moved in the
simulators, every step through the gates `yiyun migrate advance` uses."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.db import session_scope
from inventory.i18n import text
from inventory.models import Node, utcnow
from inventory.settings import Settings
from inventory.sim.migration import (
    BUILD_BEFORE,
    BY,
    CUTOVER,
    PLAN,
    ROUTE,
    SOURCES,
    TARGET,
    WAVE_SIZE,
    SampleMigration,
)
from migrate.models import Plan, SystemMigration

if TYPE_CHECKING:
    from inventory.sim.estate import RunningEstate


def run_sample_migration(
    engine: sa.Engine, running: RunningEstate, settings: Settings, lang: str
) -> SampleMigration:
    """Plan SOURCES onto TARGET with the planner, then take the first systems of the plan along
    ROUTE through `migrate.tracking.advance`: their workloads are rebuilt on the target and
    removed from the source in the simulators, and the inventory is scanned again, so the
    acceptance and decommissioning gates pass on evidence, not on say-so."""
    from migrate.planner import Parameters
    from migrate.plans import PlanError, create_plan

    outcome = SampleMigration(plan=PLAN, lang=lang, note=text("demo_migration_note", lang))
    present = {n.id for n in running.estate.nodes}
    if not {*SOURCES, TARGET} <= present:
        outcome.skipped = ", ".join(sorted({*SOURCES, TARGET} - present))
        return outcome
    try:
        with session_scope(engine) as session:
            _plan, result = create_plan(
                session=session,
                name=PLAN,
                sources=list(SOURCES),
                target=TARGET,
                by=BY,
                now=utcnow(),
                today=settings.today(),
                parameters=Parameters(max_systems_per_wave=WAVE_SIZE),
            )
    except PlanError as error:
        outcome.skipped = error.render(lang)
        return outcome
    outcome.placed, outcome.waves = len(result.wave_of), result.waves
    order = sorted(result.wave_of, key=lambda code: (result.wave_of[code], code))
    routes = dict(zip(order, ROUTE, strict=False))
    built: list[str] = []
    for code, route in routes.items():
        before = route[: route.index(BUILD_BEFORE)] if BUILD_BEFORE in route else route
        if not all(_advance(engine, settings, code, state, outcome) for state in before):
            continue
        if BUILD_BEFORE in route:
            running.move(code, SOURCES, TARGET)
            if _advance(engine, settings, code, BUILD_BEFORE, outcome):
                built.append(code)
    if built:
        for code in built:
            running.clear(code, SOURCES)
        _rescan(engine, settings)
    for code in built:
        route = routes[code]
        # all() stops at the first refusal: the system stays where the gate held it.
        all(
            _advance(engine, settings, code, state, outcome)
            for state in route[route.index(CUTOVER) :]
        )
    with Session(engine) as session:
        states = session.exec(
            select(SystemMigration.state)
            .join(Plan, col(Plan.id) == col(SystemMigration.plan_id))
            .where(col(Plan.name) == PLAN)
        )
        outcome.states = Counter(states)
    return outcome


def _advance(
    engine: sa.Engine, settings: Settings, code: str, state: str, outcome: SampleMigration
) -> bool:
    """One step through the same function `yiyun migrate advance` calls; a refusal is kept."""
    from migrate.tracking import TransitionRefused, advance

    today = settings.today()
    # The acceptance document (验收文号) a department files when it signs the move off.
    evidence = f"示范验收〔{today.year}〕{code}号" if state == "accepted" else None
    try:
        with session_scope(engine) as session:
            advance(
                session=session,
                code=code,
                to_state=state,
                by=BY,
                now=utcnow(),
                today=today,
                note=outcome.note,
                evidence=evidence,
                plan_name=PLAN,
            )
    except TransitionRefused as refused:
        outcome.refusals[code] = refused.render(outcome.lang)
        return False
    return True


def _rescan(engine: sa.Engine, settings: Settings) -> None:
    """Scan the plan's nodes again, quietly, with the same deletion guard as `yiyun scan`."""
    from inventory.scan import Scanner
    from inventory.store import SweepGuard

    guard = SweepGuard(ratio=settings.sweep_guard_ratio, minimum=settings.sweep_guard_min)
    with Session(engine, expire_on_commit=False) as session:
        nodes = list(
            session.exec(
                select(Node).where(col(Node.id).in_([*SOURCES, TARGET])).order_by(col(Node.id))
            )
        )
    Scanner(engine, concurrency=4, guard=guard).run(nodes)
