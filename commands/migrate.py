"""`yiyun migrate`: dependencies, assessment, wave plans and tracking of department-cloud moves."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from commands.choices import LabelledChoice
from commands.common import (
    EXIT_PROBLEM,
    EXIT_USAGE,
    err_console,
    fail,
    open_ledger,
    report_error,
    warn,
)
from commands.disclosure import IncludeClassifiedOption, disclosure_for, note_withheld
from commands.lang import cli_lang
from inventory.confidentiality import Disclosure
from inventory.i18n import STATE_ORDER as STATES
from inventory.i18n import label, readiness_label, state_label, text
from inventory.output import (
    Format,
    Prose,
    as_text,
    dumps,
    message_text,
    render_rows,
)
from migrate.fact_words import facts_line
from migrate.reasons import outcome_label, rule_reason
from migrate.rules import READINESS, STRATEGIES
from migrate.table_words import for_people
from migrate.wording import Label

app = typer.Typer(
    help="Migration of department clouds: dependencies, assessment, wave plans, tracking.",
    no_args_is_help=True,
)
deps_app = typer.Typer(
    help="Dependencies between systems: import, infer, list, add, delete.", no_args_is_help=True
)
plan_app = typer.Typer(
    help="Wave plans: create, list, show, export, import an edited export.", no_args_is_help=True
)
assess_app = typer.Typer(
    help="Assess readiness and strategy of every system; override with a rationale.",
    invoke_without_command=True,
)
app.add_typer(deps_app, name="deps")
app.add_typer(assess_app, name="assess")
app.add_typer(plan_app, name="plan")

console = Console(highlight=False, soft_wrap=True)

# Typed as codes or as their Chinese or English names (`--to 已验收`, `--to accepted`).
STATE_CHOICE = LabelledChoice("state", STATES)
READINESS_CHOICE = LabelledChoice("readiness", READINESS)
STRATEGY_CHOICE = LabelledChoice("strategy", STRATEGIES)


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    xlsx = "xlsx"


class StatusBy(StrEnum):
    wave = "wave"
    department = "department"


def _now() -> datetime:
    from inventory.models import utcnow

    return utcnow()


def _today() -> date:
    from inventory.settings import get_settings

    return get_settings().today()


def _say(text: str) -> None:
    # Codes, names and notes are people's own text: never read as rich markup or emoji codes,
    # and a control character in one is shown, not obeyed.
    console.print(message_text(text))


def _problems(heading: str, problems: list[Any], lang: str) -> None:
    err_console.print(message_text(heading, "red"))
    for problem in problems:
        err_console.print(as_text(f"  {problem.render(lang)}"), soft_wrap=True)


# ---------------------------------------------------------------- deps


@deps_app.command("import")
def deps_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or XLSX with columns from, to, type (calls/data/shared_infra) and "
            "optional strength (hard/soft); Chinese headers 依赖方, 被依赖方, 依赖类型, 依赖强度.",
            metavar="FILE",
            show_default=False,
        ),
    ],
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Remove declared dependencies this file no longer lists."),
    ] = False,
) -> None:
    """Declare dependencies (`from` depends on `to`); a file with any problem changes nothing."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.deps import import_dependency_file
    from migrate.sheets import SheetError

    lang = cli_lang()
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            report = import_dependency_file(
                session=session, actor=Actor.local(), path=file, now=_now(), replace=replace
            )
            if not report.ok:
                session.rollback()
    except SheetError as error:
        fail(error.render(lang), lang=lang)
    if not report.ok:
        _problems(
            text("deps_problems", lang, file=file.name, count=len(report.problems)),
            report.problems,
            lang,
        )
        raise typer.Exit(EXIT_PROBLEM)
    _say(
        text(
            "deps_imported",
            lang,
            rows=report.rows,
            file=file.name,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
        )
        + (text("deps_removed", lang, removed=report.removed) if replace else "")
    )


@deps_app.command("infer")
def deps_infer() -> None:
    """Refresh the dependencies inferred from the inventory (systems sharing a namespace)."""
    from inventory.db import session_scope
    from migrate.deps import refresh_inferred

    lang = cli_lang()
    engine = open_ledger(lang)
    with session_scope(engine) as session:
        added, removed = refresh_inferred(session=session, now=_now())
    _say(text("deps_inferred", lang, added=added, removed=removed))


@deps_app.command("list")
def deps_list(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Every dependency, declared and inferred."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.deps import dependencies_in_scope

    lang = cli_lang()
    engine = open_ledger(lang)
    disclosure = disclosure_for(include_classified)
    with session_scope(engine) as session:
        rows = dependencies_in_scope(session=session, actor=Actor.local(), disclosure=disclosure)
    note_withheld(disclosure, lang)
    render_rows(
        for_people(rows, fmt, lang),
        # The id is what `deps delete ID` takes.
        ("id", "from", "to", "type", "strength", "origin", "basis"),
        fmt,
        title=text("dependencies", lang),
        lang=lang,
        headings=_dependency_headings(lang),
    )


def _dependency_headings(lang: str) -> dict[str, str]:
    return {
        "id": text("dep_id", lang),
        "from": text("dep_from", lang),
        "to": text("dep_to", lang),
        "type": text("dep_type", lang),
        "strength": text("dep_strength", lang),
    }


@deps_app.command("add")
def deps_add(
    source: Annotated[
        str, typer.Argument(help="The system that depends.", metavar="FROM", show_default=False)
    ],
    target: Annotated[
        str, typer.Argument(help="The system it depends on.", metavar="TO", show_default=False)
    ],
    by: Annotated[str, typer.Option("--by", help="Who declares the dependency.")],
    kind: Annotated[str, typer.Option("--type", help="calls / data / shared_infra.")] = "calls",
    strength: Annotated[
        str | None,
        typer.Option("--strength", help="hard / soft (default: hard for shared_infra, else soft)."),
    ] = None,
) -> None:
    """Declare one dependency (`FROM` depends on `TO`); kept until deleted or replaced."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.deps import DependencyError, DependencyRefused, declare_dependency

    lang = cli_lang()
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            edge = declare_dependency(
                session=session,
                actor=Actor.local(by),
                from_system=source,
                to_system=target,
                now=_now(),
                kind=kind,
                strength=strength,
            )
            facts = (edge.id, edge.type, edge.strength)
    except DependencyRefused as error:
        fail(error.render(lang), EXIT_PROBLEM, lang=lang)
    except DependencyError as error:
        fail(error.render(lang), lang=lang)
    _say(
        text(
            "deps_added",
            lang,
            id=facts[0],
            source=source,
            target=target,
            type=label("mig_dep_type", facts[1], lang),
            strength=label("mig_dep_strength", facts[2], lang),
        )
    )


@deps_app.command("delete")
def deps_delete(
    dependency: Annotated[
        int,
        typer.Argument(
            help="The dependency's id, as `deps add` printed it or the API lists it.",
            metavar="ID",
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="Who removes the dependency.")],
) -> None:
    """Remove one declared dependency; inferred ones go when the systems stop sharing."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.deps import DependencyError, DependencyRefused, remove_dependency

    lang = cli_lang()
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            edge = remove_dependency(
                session=session, actor=Actor.local(by), dependency_id=dependency, now=_now()
            )
    except DependencyRefused as error:
        fail(error.render(lang), EXIT_PROBLEM, lang=lang)
    except DependencyError as error:
        fail(error.render(lang), lang=lang)
    _say(text("deps_deleted", lang, id=dependency, source=edge.from_system, target=edge.to_system))


# ---------------------------------------------------------------- assess

ASSESS_COLUMNS = (
    "system_code",
    "department_code",
    "readiness",
    "strategy",
    "assessed_readiness",
    "assessed_strategy",
    "override_by",
    "node",
    "rules",
    "vcpu",
    "memory_gib",
    "storage_gib",
)


@assess_app.callback()
def assess_command(
    ctx: typer.Context,
    node: Annotated[
        str | None,
        typer.Option(
            "--node", help="Check placement against this unified-cloud node (default: the best)."
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Assess every system: readiness from rules R1–R6 and X1–X3, strategy from T1–T9, sizing."""
    if ctx.invoked_subcommand is not None:
        return
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.assess import AssessmentError, assess_in_scope

    lang = cli_lang()
    engine = open_ledger(lang)
    disclosure = disclosure_for(include_classified)
    try:
        with session_scope(engine) as session:
            run = assess_in_scope(
                session=session,
                actor=Actor.local(),
                now=_now(),
                today=_today(),
                node_id=node,
                disclosure=disclosure,
            )
    except AssessmentError as error:
        fail(error.render(lang), lang=lang)
    note_withheld(disclosure, lang)
    rows = _assessment_rows(run.rows)
    if fmt is Format.table:
        # A terminal gets the rule ids; `assess show SYSTEM` and json/csv give the reasons.
        brief = [
            {
                **row,
                "rules": ", ".join(part.split(":")[0] for part in str(row["rules"]).split("; ")),
            }
            for row in rows
        ]
        render_rows(
            for_people(brief, fmt, lang),
            ("system_code", "department_code", "readiness", "strategy", "override_by", "rules",
             "vcpu", "memory_gib", "storage_gib"),
            fmt,
            title=text("assessment", lang),
            lang=lang,
        )  # fmt: skip
        counts: dict[str, int] = {}
        for line in rows:
            key = str(line["readiness"])
            counts[key] = counts.get(key, 0) + 1
        changes = text(
            "assess_changes_classified" if run.classified else "assess_changes",
            lang,
            written=run.written,
            unchanged=run.unchanged,
            classified=run.classified,
        )
        _say(
            text("term_comma", lang).join(
                f"{readiness_label(k, lang)}{text('term_colon', lang)}{v}"
                for k, v in sorted(counts.items())
            )
            + changes
        )
    else:
        if fmt is Format.md:
            # Markdown is read: the reasons in the reader's language, the codes named.
            for line, (_, row) in zip(rows, run.rows, strict=True):
                line["rules"] = _fired_text(row.rules or [], row.node_id, lang)
        render_rows(for_people(rows, fmt, lang), ASSESS_COLUMNS, fmt, lang=lang)


def _assessment_rows(pairs: list[Any]) -> list[dict[str, Any]]:
    from migrate.assess import effective

    rows: list[dict[str, Any]] = []
    for system, row in pairs:
        readiness, strategy = effective(row)
        fired = [r for r in row.rules or [] if r["outcome"] not in ("pass", "n/a")]
        rows.append(
            {
                "system_code": system.code,
                "department_code": system.department_code,
                "readiness": readiness,
                "strategy": strategy,
                "assessed_readiness": row.readiness,
                "assessed_strategy": row.strategy,
                "override_by": row.override_by,
                "node": row.node_id,
                "rules": "; ".join(f"{r['id']} {r['outcome']}: {r['reason']}" for r in fired),
                "vcpu": row.sizing_vcpu,
                "memory_gib": row.sizing_memory_gib,
                "storage_gib": row.sizing_storage_gib,
            }
        )
    return rows


@assess_app.command("list")
def assess_list(
    system: Annotated[str | None, typer.Option("--system", help="Only this system.")] = None,
    readiness: Annotated[
        str | None,
        typer.Option(
            "--readiness",
            help="Only systems with this readiness (after overrides).",
            parser=READINESS_CHOICE.parse,
            metavar=READINESS_CHOICE.metavar,
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """The assessments in force, without assessing again."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.assess import assessments_in_scope

    lang = cli_lang()
    engine = open_ledger(lang)
    disclosure = disclosure_for(include_classified)
    with session_scope(engine) as session:
        pairs = assessments_in_scope(
            session=session,
            actor=Actor.local(),
            system=system,
            readiness=readiness,
            disclosure=disclosure,
        )
        rows = _assessment_rows(pairs)
    note_withheld(disclosure, lang)
    render_rows(
        for_people(rows, fmt, lang), ASSESS_COLUMNS, fmt, title=text("assessment", lang), lang=lang
    )


def _fired_text(rules: list[dict[str, Any]], node: str | None, lang: str) -> str:
    from migrate.reasons import fired_rules

    return fired_rules(rules, node).render(lang)


@assess_app.command("override")
def assess_override(
    system: Annotated[str, typer.Argument(help="System code.", show_default=False)],
    by: Annotated[str, typer.Option("--by", help="Who decides (name or role).")],
    rationale: Annotated[str, typer.Option("--rationale", help="Why; kept in the audit trail.")],
    readiness: Annotated[
        str | None,
        typer.Option(
            "--readiness",
            help="ready / needs_work / blocked / exempt / out_of_scope.",
            parser=READINESS_CHOICE.parse,
            metavar=READINESS_CHOICE.metavar,
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            help="rehost / replatform / refactor / repurchase / retire / retain / relocate.",
            parser=STRATEGY_CHOICE.parse,
            metavar=STRATEGY_CHOICE.metavar,
        ),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the override and go back to the rules.")
    ] = False,
) -> None:
    """Override a system's readiness and/or strategy; every override is kept as history."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.assess import AssessmentError, effective, override_system

    lang = cli_lang()
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            _, row = override_system(
                session=session,
                actor=Actor.local(by),
                code=system,
                rationale=rationale,
                now=_now(),
                today=_today(),
                readiness=readiness,
                strategy=strategy,
                clear=clear,
            )
    except AssessmentError as error:
        fail(error.render(lang), EXIT_PROBLEM, lang=lang)
    final_readiness, final_strategy = effective(row)
    _say(
        text(
            "override_done",
            lang,
            system=system,
            # Named in the reader's language, as the tables name them (English: the codes).
            readiness=Label("readiness", final_readiness).render(lang),
            strategy=Label("strategy", final_strategy).render(lang) if final_strategy else "-",
            rule_readiness=Label("readiness", row.readiness).render(lang),
            rule_strategy=Label("strategy", row.strategy).render(lang) if row.strategy else "-",
            by=row.override_by,
        )
    )


@assess_app.command("show")
def assess_show(
    system: Annotated[str, typer.Argument(help="System code.", show_default=False)],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """A system's rules and facts, and every assessment and override it has had."""
    from inventory.db import session_scope
    from inventory.registry import find_system
    from migrate.assess import assessment_history

    lang = cli_lang()
    engine = open_ledger(lang)
    disclosure = disclosure_for(include_classified)
    with session_scope(engine) as session:
        if find_system(session=session, code=system, disclosure=disclosure) is None:
            fail(text("unknown_system", lang, system=system), lang=lang)
        rows = assessment_history(session=session, code=system)
    if not rows:
        fail(text("not_assessed", lang, system=system), EXIT_PROBLEM, lang=lang)
    history = [
        {
            "assessed_at": r.assessed_at,
            "node": r.node_id,
            "readiness": r.readiness,
            "strategy": r.strategy,
            "override_readiness": r.override_readiness,
            "override_strategy": r.override_strategy,
            "override_by": r.override_by,
            "override_at": r.override_at,
            "override_rationale": r.override_rationale,
            "superseded_at": r.superseded_at,
            "rules": r.rules,
        }
        for r in rows
    ]
    if fmt is Format.json:
        print(dumps(history))
        return
    current = rows[-1]
    node = current.node_id or text("no_node", lang)
    _say(text("assessed_against", lang, system=system, node=node, at=current.assessed_at))
    render_rows(
        [
            {
                "rule": r["id"],
                "outcome": outcome_label(str(r["outcome"]), lang),
                "reason": rule_reason(r, lang, current.node_id),
                # A spreadsheet keeps the facts as data; a screen reads them as one line.
                "facts": dumps(r["facts"])
                if fmt is Format.csv
                else facts_line(r.get("facts"), lang),
            }
            for r in current.rules or []
        ],
        ("rule", "outcome", "reason", "facts"),
        fmt,
        title=text("rules_and_facts", lang),
        lang=lang,
    )
    columns = (
        "assessed_at",
        "readiness",
        "strategy",
        "override_readiness",
        "override_strategy",
        "override_by",
        "override_at",
        "override_rationale",
        "superseded_at",
    )
    render_rows(
        for_people(history, fmt, lang), columns, fmt, title=text("assess_history", lang), lang=lang
    )


# ---------------------------------------------------------------- plan


@plan_app.command("create")
def plan_create(
    source: Annotated[
        list[str], typer.Option("--source", help="Source node id (repeat for several).")
    ],
    target: Annotated[str, typer.Option("--target", help="Target unified-cloud node id.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Plan name (default: TARGET-START).")
    ] = None,
    max_systems_per_wave: Annotated[
        int, typer.Option("--max-systems-per-wave", min=1, help="Most systems in one wave.")
    ] = 20,
    start: Annotated[
        datetime | None,
        typer.Option("--start", formats=["%Y-%m-%d"], help="First wave starts (default: today)."),
    ] = None,
    wave_days: Annotated[int, typer.Option("--wave-days", min=1, help="Days per wave.")] = 14,
    strict_order: Annotated[
        bool,
        typer.Option(
            "--strict-order",
            help="Dependency targets move in an earlier wave, never the same one.",
        ),
    ] = False,
    by: Annotated[str, typer.Option("--by", help="Who makes the plan.")] = "yiyun",
) -> None:
    """Plan the systems on the source nodes into waves onto the target node."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.planner import Parameters
    from migrate.plans import PlanError, make_plan

    lang = cli_lang()
    today = _today()
    first = start.date() if start else today
    plan_name = name or f"{target}-{first:%Y%m%d}"
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            plan, result = make_plan(
                session=session,
                actor=Actor.local(by),
                name=plan_name,
                sources=source,
                target=target,
                now=_now(),
                today=today,
                start=first,
                wave_days=wave_days,
                parameters=Parameters(
                    max_systems_per_wave=max_systems_per_wave, strict_order=strict_order
                ),
            )
            review = dict(plan.review or {})
    except PlanError as error:
        fail(error.render(lang), lang=lang)
    excluded = review.get("excluded", {})
    _say(
        text(
            "plan_created",
            lang,
            plan=plan_name,
            placed=len(result.wave_of),
            waves=result.waves,
            unplaced=len(result.unplaced),
            size=review["lower_bound"]["size"],
            chain=review["lower_bound"]["chain"],
        )
    )
    if excluded.get("classified"):
        _say(text("plan_classified_outside", lang, count=excluded["classified"]))
    if excluded.get("in_other_plans"):
        _say(text("plan_in_other_plans", lang, count=len(excluded["in_other_plans"])))
    _say(text("plan_see", lang, plan=plan_name))


@plan_app.command("archive")
def plan_archive(
    name: Annotated[str, typer.Argument(help="Plan name.", show_default=False)],
    by: Annotated[str, typer.Option("--by", help="Who archives the plan.")],
) -> None:
    """Drop a plan: it no longer holds its systems; refused once any is past planned."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.plans import PlanError, archive_plan_as

    lang = cli_lang()
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            archive_plan_as(session=session, actor=Actor.local(by), name=name, now=_now())
    except PlanError as error:
        # An unknown plan is a mistake in the command (2); a refusal of a real plan is 1.
        code = EXIT_USAGE if error.key == "mig_unknown_plan" else EXIT_PROBLEM
        fail(error.render(lang), code, lang=lang)
    _say(text("mig_plan_archived", lang, plan=name))


@plan_app.command("list")
def plan_list(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """Every plan with its size."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.plans import visible_plans

    lang = cli_lang()
    engine = open_ledger(lang)
    with session_scope(engine) as session:
        rows = visible_plans(session=session, actor=Actor.local())
    if fmt is Format.table:
        rows = [{**r, "status": label("plan_status", r["status"], lang)} for r in rows]
    columns = (
        "name",
        "target_node",
        "source_nodes",
        "status",
        "waves",
        "systems",
        "placed",
        "created_by",
        "created_at",
    )
    render_rows(
        rows,
        columns,
        fmt,
        title=text("migration_plans", lang),
        lang=lang,
        headings={"name": text("plan", lang), "created_at": text("created", lang)},
    )


def _load_plan(
    name: str, lang: str, disclosure: Disclosure
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.plans import PlanError, plan_details

    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            view = plan_details(
                session=session, actor=Actor.local(), name=name, disclosure=disclosure
            )
            return view.head, view.rows
    except PlanError as error:
        fail(error.render(lang), lang=lang)


@plan_app.command("show")
def plan_show(
    name: Annotated[str, typer.Argument(help="Plan name.", show_default=False)],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Waves, placements with their explanations, unmet constraints and cross-wave dependencies."""
    from migrate.plans import constraint_detail, plan_explanation, sheet_text

    lang = cli_lang()
    disclosure = disclosure_for(include_classified)
    head, rows = _load_plan(name, lang, disclosure)
    note_withheld(disclosure, lang)
    review = head["review"] or {}
    if fmt is Format.json:
        print(dumps({**head, "systems": rows}))
        return
    if fmt is Format.csv:
        print(sheet_text(rows), end="")
        return
    _say(
        text(
            "plan_header",
            lang,
            plan=head["plan"],
            sources=text("term_enumeration", lang).join(head["source_nodes"]),
            target=head["target_node"],
            waves=review.get("waves", 0),
            placed=review.get("placed", 0),
            not_placed=review.get("not_placed", 0),
        )
    )
    render_rows(
        for_people(rows, fmt, lang),
        ("wave", "wave_start", "system_code", "department_code", "environment", "readiness",
         "strategy", "move_group", "state", "risk"),
        fmt,
        title=text("plan_systems", lang),
        lang=lang,
        headings={"state": text("migration_state", lang)},
    )  # fmt: skip
    _say(text("plan_why", lang))
    for row in rows:
        _say(f"  {row['system_code']}: {plan_explanation(row, review, lang)}")
    constraints = review.get("constraints", [])
    if constraints:
        shown = [
            {**c, "systems": ", ".join(c["systems"]), "detail": constraint_detail(c, lang)}
            for c in constraints
        ]
        render_rows(
            for_people(shown, fmt, lang),
            ("kind", "systems", "detail"),
            fmt,
            title=text("unmet_constraints", lang),
            lang=lang,
            headings={
                "kind": text("constraint_kind", lang),
                "systems": text("plan_systems", lang),
            },
        )
    cross = review.get("cross_wave", [])
    if cross:
        render_rows(
            for_people(cross, fmt, lang),
            ("from", "from_wave", "to", "to_wave", "type", "strength"),
            fmt,
            title=text("cross_wave", lang),
            lang=lang,
            headings=_dependency_headings(lang),
        )


@plan_app.command("export")
def plan_export(
    name: Annotated[str, typer.Argument(help="Plan name.", show_default=False)],
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="csv or xlsx (to edit), or json (for infra)."),
    ] = ExportFormat.csv,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Export the plan: CSV to edit in a spreadsheet, JSON for landing-zone provisioning."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.plans import PlanError, export_plan

    lang = cli_lang()
    disclosure = disclosure_for(include_classified)
    if fmt is ExportFormat.xlsx and output is None:
        fail(text("mig_export_needs_output", lang), lang=lang)
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            export = export_plan(
                session=session,
                actor=Actor.local(),
                name=name,
                fmt=fmt.value,
                disclosure=disclosure,
            )
    except PlanError as error:
        fail(error.render(lang), lang=lang)
    note_withheld(disclosure, lang)
    if output is None:
        print(export.text, end="")
        return
    try:
        # The file's bytes: a CSV with a BOM, so that Excel on a Chinese desktop reads UTF-8.
        output.write_bytes(export.content)
    except OSError as error:
        fail(text("cannot_write", lang, path=output, error=error.strerror or error), lang=lang)
    err_console.print(message_text(text("written", lang, path=output)))


@plan_app.command("import")
def plan_import(
    name: Annotated[str, typer.Argument(help="Plan name.", show_default=False)],
    file: Annotated[
        Path,
        typer.Argument(
            help="The CSV/XLSX export with the wave column edited (blank: not placed).",
            metavar="FILE",
            show_default=False,
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="Who edited the plan.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would change; write nothing.")
    ] = False,
) -> None:
    """Bring back an edited plan: checked whole, re-explained and re-scored, or nothing changes."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.plans import PlanError, import_plan_edits
    from migrate.sheets import SheetError

    lang = cli_lang()
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            outcome = import_plan_edits(
                session=session,
                actor=Actor.local(by),
                name=name,
                path=file,
                now=_now(),
                dry_run=dry_run,
            )
            if not outcome.ok or dry_run:
                session.rollback()
    except PlanError as error:
        fail(error.render(lang), lang=lang)
    except SheetError as error:
        fail(error.render(lang), lang=lang)
    for warning in outcome.warnings:
        warn(warning.render(lang), lang)
    if not outcome.ok:
        _problems(
            text("plan_import_problems", lang, file=file.name, count=len(outcome.problems)),
            outcome.problems,
            lang,
        )
        raise typer.Exit(EXIT_PROBLEM)
    heading = "plan_import_dry" if dry_run else "plan_import_done"
    _say(text(heading, lang, plan=name, count=len(outcome.moved)))
    for code, old, new in outcome.moved:
        _say(f"  {code}: {old or '-'} → {new or '-'}")
    unmet = [c for c in outcome.constraints if c["kind"] not in ("dependency_stays",)]
    if unmet:
        _say(text("plan_unmet", lang, count=len(unmet), plan=name))


# ---------------------------------------------------------------- tracking


@app.command("advance")
def advance_command(
    system: Annotated[str, typer.Argument(help="System code.", show_default=False)],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The new state (see `migrate transitions`).",
            parser=STATE_CHOICE.parse,
            metavar=STATE_CHOICE.metavar,
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="Who records the change.")],
    note: Annotated[str | None, typer.Option("--note", help="Free text for the log.")] = None,
    evidence: Annotated[
        str | None,
        typer.Option("--evidence", help="A reference: test report, ticket, approval doc no."),
    ] = None,
    plan: Annotated[
        str | None, typer.Option("--plan", help="The plan (needed if the system is in several).")
    ] = None,
) -> None:
    """Move a system to its next state; refused (exit 1, nothing written) unless allowed."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.tracking import TransitionRefused, advance_system

    lang = cli_lang()
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            event = advance_system(
                session=session,
                actor=Actor.local(by),
                code=system,
                to_state=to,
                now=_now(),
                today=_today(),
                note=note,
                evidence=evidence,
                plan_name=plan,
            )
    except TransitionRefused as error:
        # Nothing was written; the step the system's state does allow goes with the refusal.
        report_error(text("refused", lang, reason=error.render(lang)), lang)
        hint = _next_step_line(engine, system, lang)
        if hint:
            err_console.print(
                Prose.assemble(message_text(hint)), soft_wrap=not err_console.is_terminal
            )
        raise typer.Exit(EXIT_PROBLEM) from None
    _say(
        text(
            "advanced",
            lang,
            system=system,
            from_state=state_label(event.from_state, lang),
            to_state=state_label(event.to_state, lang),
            by=event.by,
        )
    )
    hint = _next_step_line(engine, system, lang)
    if hint:
        _say(hint)


def _next_step_line(engine: Any, system: str, lang: str) -> str | None:
    """The "Next: …" line for the system as the ledger now stands (migrate/next_step.py), if any."""
    from inventory.db import session_scope
    from migrate.next_step import next_step

    with session_scope(engine) as session:
        step = next_step(session=session, code=system, today=_today())
    if step is None or step.quiet:
        return None
    return text("hint_next", lang, step=step.render(lang))


@app.command("status")
def status_command(
    plan: Annotated[str | None, typer.Option("--plan", help="Only this plan.")] = None,
    by: Annotated[StatusBy, typer.Option("--by", help="Group progress by.")] = StatusBy.wave,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Progress per wave or department, and where claimed states and evidence disagree."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.plans import PlanError
    from migrate.tracking import STATES, migration_progress

    lang = cli_lang()
    engine = open_ledger(lang)
    disclosure = disclosure_for(include_classified)
    try:
        with session_scope(engine) as session:
            report = migration_progress(
                session=session,
                actor=Actor.local(),
                today=_today(),
                plan_name=plan,
                by=by.value,
                disclosure=disclosure,
            )
    except PlanError as error:
        fail(error.render(lang), lang=lang)
    note_withheld(disclosure, lang)
    if fmt is Format.json:
        print(dumps(report.as_dict()))
        return
    flat = [{**g, **g["states"]} for g in report.groups]
    if fmt is Format.table:
        flat = [
            {
                **g,
                "progress": "-" if g["progress"] is None else f"{g['progress']:.0%}",
                "wave": label("wave", str(g.get("wave")), lang) if "wave" in g else None,
            }
            for g in flat
        ]
    states = [s for s in STATES if any(s in g["states"] for g in report.groups)]
    columns = ("plan", by.value, "systems", "accepted_or_done", "progress", *states)
    if fmt is Format.csv:
        render_rows(flat, columns, fmt)
        return
    render_rows(
        flat,
        columns,
        fmt,
        title=text(f"progress_by_{by.value}", lang),
        lang=lang,
        headings={state: state_label(state, lang) for state in states},
    )
    if report.discrepancies:
        render_rows(
            [d.as_dict() for d in report.discrepancies],
            ("plan", "system_code", "wave", "state", "evidence_status", "kind", "detail"),
            fmt,
            title=text("discrepancies", lang),
            lang=lang,
            headings={
                "state": text("migration_state", lang),
                "kind": text("discrepancy_kind", lang),
            },
        )
    else:
        _say(text("no_discrepancies", lang))


@app.command("history")
def history_command(
    system: Annotated[str, typer.Argument(help="System code.", show_default=False)],
    plan: Annotated[str | None, typer.Option("--plan", help="Only this plan.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """A system's migration log (append-only): who moved it from what to what, and when."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from migrate.tracking import TransitionRefused, system_history

    lang = cli_lang()
    engine = open_ledger(lang)
    disclosure = disclosure_for(include_classified)
    with session_scope(engine) as session:
        try:
            rows = system_history(
                session=session,
                actor=Actor.local(),
                code=system,
                plan_name=plan,
                disclosure=disclosure,
            )
        except TransitionRefused:
            # A code registered nowhere (or withheld) has no history, as it always had none.
            rows = []
    note_withheld(disclosure, lang)
    if fmt is not Format.json:
        from migrate.tracking import checks_text

        # A person reads the gate facts in a table and in a spreadsheet; JSON keeps them whole.
        rows = [{**r, "checks": checks_text(r["checks"], lang)} for r in rows]
    if fmt is Format.table:
        rows = [
            {
                **r,
                "from_state": state_label(r["from_state"], lang),
                "to_state": state_label(r["to_state"], lang),
            }
            for r in rows
        ]
    render_rows(
        rows,
        ("at", "plan", "from_state", "to_state", "by", "note", "evidence", "checks"),
        fmt,
        title=text("migration_log", lang, system=system),
        lang=lang,
        headings={
            "plan": text("plan", lang),
            "from_state": text("mig_from_state", lang),
            "to_state": text("mig_to_state", lang),
            "evidence": text("mig_evidence", lang),
            "checks": text("mig_checks", lang),
        },
    )


@app.command("transitions")
def transitions_command() -> None:
    """The allowed state transitions and the gates checked against the inventory."""
    from migrate.tracking import STATES, TRANSITIONS

    lang = cli_lang()
    for state in STATES:
        targets = [s for s in STATES if s in TRANSITIONS[state]]
        if lang == "en":
            _say(f"{state:>15} → {', '.join(targets) or text('final_state', lang)}")
            continue
        # The name a reader knows, with the code `--to` also takes.
        named = "、".join(f"{state_label(s, lang)}（{s}）" for s in targets)
        _say(f"{state_label(state, lang)}（{state}） → {named or text('final_state', lang)}")
    _say(text("gates", lang))
