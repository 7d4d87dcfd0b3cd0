"""A system's next step: the one action its current state allows, as a command and a sentence."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from inventory.i18n import text
from inventory.models import Node, Resource, System
from inventory.queries import kept_while
from migrate.assess import current_assessments, effective, evidence_statuses
from migrate.deps import planner_edges
from migrate.messages import one
from migrate.models import Assessment, Dependency, MigrationEvent, Plan, SystemMigration
from migrate.planner import review
from migrate.plans import _plan_parameters, _stored_candidates
from migrate.rules import MOVING_STRATEGIES, NOT_APPLICABLE, PASS, PLACEABLE
from migrate.tracking import (
    ACCEPTANCE_DOCUMENT_LEVEL,
    SEQUENCE,
    STARTED,
    TRANSITIONS,
    TransitionRefused,
    held_from,
    in_force,
    live_resources_on,
    resolve_migration,
)

# Kinds of step that need nothing done in the ledger: there is nothing to move or it is over.
QUIET = frozenset({"nothing", "exempt", "done"})
# Kinds of step done outside the migration ledger (a scan, the register): a gate waits on them.
OUTSIDE = frozenset(
    {"scan_on_cloud", "crypto", "source_live", "no_source", "no_target", "retire", "stays"}
)
# Evidence statuses of a system with nothing to move (adoption statuses).
NOTHING_TO_MOVE = frozenset({"on_cloud", "retired_excluded", "classified_excluded"})
# A rule that kept a system out of a plan, as the plan's explanation names it ("R4 blocked").
_RULE_IN_EXPLANATION = re.compile(r"\b([RX]\d) (?:blocked|needs_work|exempt|out_of_scope)\b")
# The strategy an override proposes when the system has no moving one (a person may change it).
DEFAULT_MOVE = "rehost"
# MLPS level from which R3 keeps a system off the unified cloud: no override moves it.
NEVER_ON_CLOUD_LEVEL = 5


@dataclass(frozen=True)
class Blank:
    """A part of a command a person fills in (who, why, a file): named in the reader's words."""

    name: str

    def render(self, lang: str) -> str:
        return text(f"hint_ph_{self.name}", lang)


Token = str | Blank


@dataclass(frozen=True)
class Command:
    """A yiyun command line with the system code filled in and blanks for a person's choices."""

    tokens: tuple[Token, ...]

    def render(self, lang: str) -> str:
        return " ".join(t.render(lang) if isinstance(t, Blank) else t for t in self.tokens)

    def argv(self, **values: str) -> list[str]:
        """The command's arguments after `yiyun`, with each blank filled from `values`."""
        filled = [values[t.name] if isinstance(t, Blank) else t for t in self.tokens]
        return filled[1:]


def command(*tokens: Token) -> Command:
    return Command(("yiyun", *tokens))


@dataclass(frozen=True)
class NextStep:
    """What to do next for one system: `kind` is the stable key, `command` what to type."""

    code: str
    kind: str
    command: Command | None = None
    fields: dict[str, object] = field(default_factory=dict)
    # For advance steps: the state the command moves the system to; for plan imports: the
    # plan, the wave to fill in and the systems that go into it together.
    to_state: str | None = None
    plan: str | None = None
    wave: int | None = None
    systems: tuple[str, ...] = ()

    @property
    def quiet(self) -> bool:
        """Nothing to do in the migration: reports leave it out of their to-do lists."""
        return self.kind in QUIET

    def render(self, lang: str) -> str:
        values: dict[str, object] = {"code": self.code}
        for name, value in self.fields.items():
            render = getattr(value, "render", None)
            values[name] = render(lang) if callable(render) else value
        if self.command is not None:
            values["command"] = f"`{self.command.render(lang)}`"
        return text(f"hint_{self.kind}", lang, **values)


@dataclass(frozen=True)
class Facts:
    """What decides a system's next step, read from the ledger (see `gather`)."""

    code: str
    today: date
    mlps_level: int
    crypto_assessed_on: date | None
    # Effective readiness and strategy (an override wins); None when never assessed.
    readiness: str | None
    strategy: str | None
    rules: tuple[str, ...]  # ids of the rules that stand in the way
    target: str | None  # the unified-cloud node it was assessed against
    evidence_status: str  # KPI status by evidence, exemptions counted
    sources: tuple[str, ...]  # nodes off the unified cloud it is on (what a plan moves from)
    # Its row in the plan in force that commands about it mean (None: in no plan in force).
    plan: str | None = None
    several_plans: bool = False
    state: str | None = None
    wave: int | None = None
    # The plan's own view of whether it may be placed (overrides since applied).
    placeable_in_plan: bool = False
    held_from: str | None = None
    live_on_source: int = 0
    plan_sources: tuple[str, ...] = ()
    # The first wave an imported plan accepts it in, with its move group; None: no wave does.
    import_wave: int | None = None
    import_systems: tuple[str, ...] = ()
    # Waiting for a wave, but gather() was asked not to try the waves (a page of a list): its
    # next step is known only once they are tried.
    waves_untried: bool = False


def _moves(readiness: str | None, strategy: str | None) -> bool:
    return readiness in PLACEABLE and strategy in MOVING_STRATEGIES


def _advance(facts: Facts, to_state: str, *extra: Token) -> NextStep:
    plan = ("--plan", facts.plan or "") if facts.several_plans else ()
    return NextStep(
        facts.code,
        "advance",
        command(
            "migrate", "advance", facts.code, "--to", to_state, "--by", Blank("by"), *extra, *plan
        ),
        {"state": one("state", facts.state), "to": one("state", to_state)},
        to_state=to_state,
        plan=facts.plan,
    )


def _before_a_wave(facts: Facts) -> NextStep:
    """A system with no wave: unblock it, place it in its plan, or plan it."""
    code = facts.code
    if facts.evidence_status in NOTHING_TO_MOVE or facts.readiness == "out_of_scope":
        # Already on the cloud, or retired: a placement finding is no step of a move.
        return NextStep(code, "nothing")
    if facts.readiness == "exempt" or facts.evidence_status == "exempt":
        return NextStep(code, "exempt")
    if facts.plan is None and not facts.sources:
        # No plan can take a system the inventory sees nowhere off the cloud.
        return NextStep(code, "no_source", command("scan"))
    if facts.readiness is None and facts.plan is None:
        return NextStep(code, "assess", command("migrate", "assess"))
    if facts.strategy == "retire":
        return NextStep(code, "retire")
    placeable = (
        facts.placeable_in_plan
        if facts.plan is not None
        else _moves(facts.readiness, facts.strategy)
    )
    if not placeable:
        rules = ", ".join(facts.rules) or "-"
        if facts.mlps_level >= NEVER_ON_CLOUD_LEVEL:
            return NextStep(code, "stays", None, {"level": facts.mlps_level})
        strategy = facts.strategy if facts.strategy in MOVING_STRATEGIES else DEFAULT_MOVE
        return NextStep(
            code,
            "override",
            command(
                "migrate",
                "assess",
                "override",
                code,
                "--readiness",
                "ready",
                "--strategy",
                strategy or DEFAULT_MOVE,
                "--by",
                Blank("by"),
                "--rationale",
                Blank("rationale"),
            ),
            {
                "readiness": one("readiness", facts.readiness),
                "strategy": one("strategy", facts.strategy),
                "rules": rules,
            },
        )
    if facts.plan is not None and facts.import_wave is not None:
        return NextStep(
            code,
            "plan_import",
            command("migrate", "plan", "import", facts.plan, Blank("file"), "--by", Blank("by")),
            {
                "plan": facts.plan,
                "wave": facts.import_wave,
                "systems": ", ".join(facts.import_systems),
                "export": f"yiyun migrate plan export {facts.plan} -o",
            },
            plan=facts.plan,
            wave=facts.import_wave,
            systems=facts.import_systems,
        )
    if not facts.sources:
        return NextStep(code, "no_source", command("scan"))
    if facts.target is None:
        return NextStep(code, "no_target", command("nodes", "list"))
    sources: list[Token] = []
    for node in facts.sources:
        sources += ["--source", node]
    return NextStep(
        code,
        # Already in a plan in force that cannot take it by import: a new plan over its nodes.
        "plan_create" if facts.plan is None else "plan_anew",
        command(
            "migrate",
            "plan",
            "create",
            *sources,
            "--target",
            facts.target,
            "--name",
            Blank("plan"),
            "--by",
            Blank("by"),
        ),
        {"plan": facts.plan or "-"},
    )


def decide(facts: Facts) -> NextStep:
    """The next step the system's state allows; every command it names is accepted as is."""
    state = facts.state
    if state is None or (state in ("surveyed", "assessed") and facts.wave is None):
        if state == "surveyed":
            return _advance(facts, "assessed")
        return _before_a_wave(facts)
    if state in ("decommissioned", "cancelled"):
        return NextStep(facts.code, "done", None, {"state": one("state", state)})
    if state == "exempted":
        return NextStep(facts.code, "exempt")
    if state == "on_hold":
        held = facts.held_from
        resume = held if held in TRANSITIONS["on_hold"] and held in SEQUENCE else None
        if held == "rolled_back":
            resume = "migrating"
        if resume is None:
            resume = "planned" if facts.wave is not None else "assessed"
        if facts.wave is None and (resume == "planned" or resume in STARTED):
            resume = "assessed"
        return _advance(facts, resume)
    if state == "rolled_back":
        return _advance(facts, "migrating")
    if facts.wave is None and state in ("surveyed", "assessed", "planned"):
        # Work cannot start without a wave: place it first (or go back to assessed).
        if state == "planned":
            return _advance(facts, "assessed")
        return _before_a_wave(facts)
    following = SEQUENCE[SEQUENCE.index(state) + 1]
    if following == "accepted":
        if facts.evidence_status != "on_cloud":
            return NextStep(
                facts.code,
                "scan_on_cloud",
                command("scan"),
                {"status": one("status", facts.evidence_status)},
            )
        if facts.mlps_level >= 3 and (
            facts.crypto_assessed_on is None or facts.crypto_assessed_on > facts.today
        ):
            return NextStep(
                facts.code,
                "crypto",
                command("registry", "import", Blank("file")),
                {"level": facts.mlps_level},
            )
        if facts.mlps_level >= ACCEPTANCE_DOCUMENT_LEVEL:
            return _advance(facts, "accepted", "--evidence", Blank("doc"))
        return _advance(facts, "accepted")
    if following == "decommissioned" and facts.live_on_source:
        return NextStep(
            facts.code,
            "source_live",
            command("scan"),
            {"count": facts.live_on_source, "nodes": ", ".join(facts.plan_sources)},
        )
    return _advance(facts, following)


# ---------------------------------------------------------------- reading the facts


def _sources(session: Session, codes: set[str]) -> dict[str, tuple[str, ...]]:
    """code → nodes off the unified cloud it runs on or is registered on (plan sources)."""
    nodes = {n.id: n for n in session.exec(select(Node).where(col(Node.retired_at).is_(None)))}
    found: dict[str, set[str]] = {c: set() for c in codes}
    query = (
        select(Resource.system_code, Resource.node_id)
        .where(
            col(Resource.deleted_at).is_(None),
            col(Resource.system_code).in_(sorted(codes)),
        )
        .distinct()
    )
    for code, node in session.exec(query):
        if code in found and node in nodes and not nodes[node].one_cloud:
            found[code].add(node)
    declared_nodes = select(System.code, System.declared_node).where(
        col(System.code).in_(sorted(codes))
    )
    for code, declared in session.exec(declared_nodes):
        if code in found and declared in nodes and not nodes[declared].one_cloud:
            found[code].add(declared)
    return {c: tuple(sorted(n)) for c, n in found.items()}


def _plan_stamp(session: Session, plan: Plan) -> tuple[Any, ...]:
    """What a trial of the plan's waves reads besides the inventory and the register: the
    plan's rows (an import or an advance touches them, and an advance logs an event), the
    dependencies and the assessments (an override stamps its row)."""

    def scalar(column: Any, *where: Any) -> Any:
        return sa.select(column).where(*where).scalar_subquery()

    of_plan = col(SystemMigration.plan_id) == plan.id
    row = session.execute(
        sa.select(
            scalar(sa.func.max(SystemMigration.updated_at), of_plan),
            scalar(sa.func.count(col(SystemMigration.id)), of_plan),
            scalar(sa.func.max(MigrationEvent.id)),
            scalar(sa.func.max(Dependency.id)),
            scalar(sa.func.count(col(Dependency.id))),
            scalar(sa.func.max(Dependency.updated_at)),
            scalar(sa.func.max(Assessment.id)),
            scalar(sa.func.max(Assessment.override_at)),
        )
    ).one()
    return (plan.id, plan.updated_at, *row)


def _import_waves(
    session: Session, plan: Plan, codes: Iterable[str]
) -> dict[str, tuple[int, tuple[str, ...]]]:
    """code → (first wave a plan import accepts it in with its move group, that group), for
    unplaced systems of the plan; a system no wave accepts is left out.

    Each trial runs the planner's review over the whole plan (about a second for a province's
    plan): a system's answer is kept while nothing it reads has changed."""
    wanted = tuple(sorted(set(codes)))
    stamp = _plan_stamp(session, plan)
    return kept_while(
        session,
        ("import_waves", plan.id, wanted),
        stamp,
        lambda: _trial_waves(session, plan, wanted),
    )


def _trial_waves(
    session: Session, plan: Plan, codes: Iterable[str]
) -> dict[str, tuple[int, tuple[str, ...]]]:
    query = (
        select(SystemMigration, System)
        .join(System, col(System.code) == col(SystemMigration.system_code))
        .where(col(SystemMigration.plan_id) == plan.id)
    )
    rows = [(m, s) for m, s in session.exec(query) if not s.classified]
    candidates = _stored_candidates(session=session, plan=plan, rows=rows)
    parameters, target, _, _ = _plan_parameters(plan)
    edges = planner_edges(session=session)
    group_of = {m.system_code: m.move_group for m, _ in rows}
    placed = {m.system_code: m.wave for m, _ in rows if m.wave is not None}
    top = max(placed.values(), default=0)
    found: dict[str, tuple[int, tuple[str, ...]]] = {}
    for code in codes:
        group = tuple(sorted(c for c, g in group_of.items() if g == group_of.get(code)))
        for wave in range(1, top + 2):
            trial = {**placed, **dict.fromkeys(group, wave)}
            if not review(candidates, edges, [target], parameters, group_of, trial).errors:
                found[code] = (wave, group)
                break
    return found


# The steps decide() reaches only after the plan-import check: for a system whose waves were
# not tried (`waves_untried`), they may yet turn out to be a plan import.
AFTER_WAVE_TRIAL = frozenset({"plan_create", "plan_anew", "no_source", "no_target"})


def settled(facts: Facts) -> NextStep | None:
    """The system's next step, or None when it hangs on the waves that were not tried."""
    step = decide(facts)
    if facts.waves_untried and step.kind in AFTER_WAVE_TRIAL:
        return None
    return step


def gather(
    *,
    session: Session,
    today: date,
    codes: Sequence[str] | None = None,
    try_waves: bool = True,
) -> dict[str, Facts]:
    """The facts of every (or each named) non-classified system, read in bulk.

    Which wave a plan import would accept a system in is found by running the planner's
    review on trial waves (seconds on a province's plan); `try_waves=False` leaves that out and
    marks those systems `waves_untried`."""
    query = select(System).where(col(System.classified).is_(False))
    if codes is not None:
        query = query.where(col(System.code).in_(sorted(set(codes))))
    systems = {s.code: s for s in session.exec(query)}
    if not systems:
        return {}
    wanted = None if codes is None else set(systems)
    assessments = current_assessments(session=session, codes=wanted)
    statuses = evidence_statuses(session=session, today=today, codes=wanted)
    sources = _sources(session, set(systems))
    rows: dict[str, list[tuple[Plan, SystemMigration]]] = {}
    query_rows = (
        select(Plan, SystemMigration)
        .join(SystemMigration, col(SystemMigration.plan_id) == col(Plan.id))
        .where(in_force(), col(SystemMigration.system_code).in_(sorted(systems)))
        .order_by(col(Plan.id))
        # The plan's review (megabytes at province scale) would be decoded once per row;
        # only a trial of its waves reads it, and then once.
        .options(defer(Plan.review))  # type: ignore[arg-type]
    )
    for plan, migration in session.exec(query_rows):
        rows.setdefault(migration.system_code, []).append((plan, migration))
    facts: dict[str, Facts] = {}
    wanting_wave: dict[int, tuple[Plan, list[str]]] = {}
    for code, system in systems.items():
        row = assessments.get(code)
        readiness, strategy = effective(row) if row is not None else (None, None)
        standing = tuple(
            r["id"]
            for r in (row.rules or [] if row is not None else [])
            if r.get("outcome") not in (PASS, NOT_APPLICABLE) and not str(r["id"]).startswith("T")
        )
        base = Facts(
            code=code,
            today=today,
            mlps_level=system.mlps_level,
            crypto_assessed_on=system.crypto_assessed_on,
            readiness=readiness,
            strategy=strategy,
            rules=standing,
            target=row.node_id if row is not None else None,
            evidence_status=statuses.get(code, "no_evidence"),
            sources=sources.get(code, ()),
        )
        mine = rows.get(code, [])
        if mine:
            plan, migration = _the_row(session, code, mine)
            # The plan's view of it (what `plan import` checks): overrides since then win.
            candidate_readiness: str | None = migration.readiness
            candidate_strategy = migration.strategy
            if row is not None and (row.override_readiness or row.override_strategy):
                candidate_readiness, candidate_strategy = readiness, strategy
            if row is None and migration.wave is None:
                standing = tuple(dict.fromkeys(_RULE_IN_EXPLANATION.findall(migration.explanation)))
            base = replace(
                base,
                readiness=candidate_readiness,
                strategy=candidate_strategy,
                rules=standing,
                target=base.target or plan.target_node,
                plan=plan.name,
                several_plans=len(mine) > 1,
                state=migration.state,
                wave=migration.wave,
                placeable_in_plan=_moves(candidate_readiness, candidate_strategy),
                plan_sources=tuple(plan.source_nodes),
                held_from=held_from(session=session, plan_id=plan.id or 0, code=code)
                if migration.state == "on_hold"
                else None,
                live_on_source=live_resources_on(
                    session=session, code=code, node_ids=plan.source_nodes
                )
                if migration.state == "accepted"
                else 0,
            )
            if migration.wave is None and migration.state in ("surveyed", "assessed", "planned"):
                wanting_wave.setdefault(plan.id or 0, (plan, []))[1].append(code)
        facts[code] = base
    for plan, wanting in wanting_wave.values():
        if not try_waves:
            for code in wanting:
                facts[code] = replace(facts[code], waves_untried=True)
            continue
        for code, (wave, group) in _import_waves(session, plan, wanting).items():
            facts[code] = replace(facts[code], import_wave=wave, import_systems=group)
    return facts


def _the_row(
    session: Session, code: str, mine: list[tuple[Plan, SystemMigration]]
) -> tuple[Plan, SystemMigration]:
    """The plan row `migrate advance` means without --plan, else the latest plan's."""
    if len(mine) == 1:
        return mine[0]
    try:
        return resolve_migration(session=session, code=code)
    except TransitionRefused:
        return mine[-1]


def next_steps(
    *, session: Session, today: date, codes: Sequence[str] | None = None
) -> dict[str, NextStep]:
    """code → its next step, for every (or each named) non-classified system."""
    return {
        code: decide(f) for code, f in gather(session=session, today=today, codes=codes).items()
    }


def next_step(*, session: Session, code: str, today: date) -> NextStep | None:
    """The system's next step; None for an unknown or classified one (nothing confirms it)."""
    return next_steps(session=session, today=today, codes=[code]).get(code)
