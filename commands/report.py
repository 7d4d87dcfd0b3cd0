"""`yiyun report`: the adoption KPI and its history, violations, and the manager reports."""

from __future__ import annotations

import io
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from sqlmodel import Session

from commands.common import open_ledger
from commands.disclosure import (
    IncludeClassifiedOption,
    disclosure_for,
    note_withheld,
    note_withheld_counts,
)
from commands.lang import LangOption, cli_lang
from inventory.adoption import EVIDENCE_V1, EVIDENCE_V2, STATUSES
from inventory.confidentiality import Disclosure
from inventory.i18n import label, status_label, text
from inventory.output import (
    Format,
    Narrow,
    as_text,
    csv_text,
    dumps,
    escape_formula,
    md_cell,
    md_row,
    message_text,
    render_rows,
)
from inventory.scope_failures import failure_wording, scope_status_label
from inventory.settings import get_settings

app = typer.Typer(
    help="Reports: adoption KPI, history, violations; HTML, Excel and department scorecards.",
    no_args_is_help=True,
)


class GroupBy(StrEnum):
    province = "province"
    city = "city"
    department = "department"
    node = "node"


class KpiPolicy(StrEnum):
    evidence_v1 = EVIDENCE_V1
    evidence_v2 = EVIDENCE_V2


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f} %"


def _group_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    groups = report.get("groups")
    if groups is None:
        groups = [
            {
                "key": get_settings().province,
                **{k: report[k] for k in ("numerator", "denominator", "rate", "counts")},
            }
        ]
    return [
        {
            "key": g["key"],
            "numerator": g["numerator"],
            "denominator": g["denominator"],
            "rate": g["rate"],
            **g["counts"],
        }
        for g in groups
    ]


# The heading of each --by breakdown, and the wording of its key column.
_BY_SECTIONS = {
    "province": "section_kpi",
    "city": "section_city",
    "department": "section_department",
    "node": "section_node",
}


def _kpi_line(report: dict[str, Any], lang: str) -> str:
    return text(
        "kpi_line",
        lang,
        rate=_percent(report["rate"]),
        numerator=report["numerator"],
        denominator=report["denominator"],
    )


def print_adoption_table(report: dict[str, Any], lang: str) -> None:
    console = Console()
    console.print(
        f"[bold]{escape(_kpi_line(report, lang))}[/bold]\n"
        + escape(text("policy_as_of", lang, policy=report["policy"], as_of=report["as_of"])),
        highlight=False,
    )
    total = sum(report["counts"].values())
    if total == 0:
        console.print(escape(text("no_systems", lang)), highlight=False)
        return
    counts = Table(title=text("section_status", lang))
    counts.add_column(text("status", lang))
    counts.add_column(text("systems", lang), justify="right")
    for status in STATUSES:
        counts.add_row(status_label(status, lang), str(report["counts"][status]))
    console.print(counts)
    if "groups" in report:
        groups = Table(title=text(_BY_SECTIONS[report["by"]], lang))
        groups.add_column(text(report["by"], lang))
        for heading in (
            text("rate", lang),
            text("on_of_denominator", lang),
            *(status_label(s, lang) for s in ("exempt", "partial", "off_cloud", "no_evidence")),
        ):
            groups.add_column(heading, justify="right")
        for row in _group_rows(report):
            groups.add_row(
                as_text(row["key"]),
                _percent(row["rate"]),
                f"{row['numerator']}/{row['denominator']}",
                str(row["exempt"]),
                str(row["partial"]),
                str(row["off_cloud"]),
                str(row["no_evidence"]),
            )
        console.print(groups)
    if report["stale_nodes"]:
        console.print(
            as_text(text("stale_nodes_note", lang), "yellow"),
            as_text(", ".join(report["stale_nodes"])),
        )
    if report.get("expired_scopes"):
        console.print(
            as_text(_expired_note(lang), "yellow"), as_text(", ".join(report["expired_scopes"]))
        )


def _expired_note(lang: str) -> str:
    hours = get_settings().evidence_max_age_hours
    return text("expired_scopes_note", lang, hours=f"{hours:g}")


def _print_csv(report: dict[str, Any]) -> None:
    columns = ["key", "numerator", "denominator", "rate", *STATUSES]
    cells = [
        [escape_formula(row[c]) if row[c] is not None else "" for c in columns]
        for row in _group_rows(report)
    ]
    print(csv_text([columns, *cells]), end="")


def _print_md(report: dict[str, Any], lang: str) -> None:
    policy = f"`{report['policy']}`"
    as_of = text("policy_as_of", lang, policy=policy, as_of=report["as_of"])
    print(f"**{_kpi_line(report, lang)}**\n\n{as_of}\n")
    columns = ["key", "rate", "numerator", "denominator", *STATUSES]
    headings = [
        text(report.get("by") or "province", lang),
        *(text(c, lang) for c in ("rate", "numerator", "denominator")),
        *(status_label(s, lang) for s in STATUSES),
    ]
    print(md_row(headings))
    print("|" + "---|" * len(columns))
    for row in _group_rows(report):
        print(md_row(_percent(row["rate"]) if c == "rate" else row[c] for c in columns))
    if report["stale_nodes"]:
        print(f"\n{text('stale_nodes', lang)}: {md_cell(', '.join(report['stale_nodes']))}")
    if report.get("expired_scopes"):
        print(f"\n{_expired_note(lang)} {md_cell(', '.join(report['expired_scopes']))}")


@app.command("adoption")
def adoption(
    by: Annotated[GroupBy | None, typer.Option("--by", help="Break the KPI down.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    snapshot: Annotated[
        bool, typer.Option("--snapshot", help="Also store the KPI as a dated AdoptionSnapshot.")
    ] = False,
    history: Annotated[
        bool, typer.Option("--history", help="List stored snapshots instead of computing.")
    ] = False,
    exempt_in_denominator: Annotated[
        bool | None,
        typer.Option(
            "--exempt-in-denominator/--no-exempt-in-denominator",
            help="Count exempt systems in the denominator (default from settings: on).",
        ),
    ] = None,
    trust_declared: Annotated[
        bool | None,
        typer.Option(
            "--trust-declared/--no-trust-declared",
            help="Let a declared one_cloud node stand in for missing evidence (default: off).",
        ),
    ] = None,
    policy: Annotated[
        KpiPolicy | None,
        typer.Option(
            "--policy",
            help="KPI policy (default from settings: evidence-v2, evidence older than "
            "YIYUN_EVIDENCE_MAX_AGE_HOURS does not count; evidence-v1: all live evidence).",
        ),
    ] = None,
    lang: LangOption = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """The cloud-adoption rate of non-classified systems (非涉密系统上云率), from evidence."""
    from commands.common import fail
    from inventory.reports import (
        UnknownPolicy,
        adoption_report,
        policy_from,
        snapshot_history,
        switches_from,
        take_snapshot,
    )

    language = cli_lang(lang)
    settings = get_settings()
    engine = open_ledger(language)
    with Session(engine, expire_on_commit=False) as session:
        if history:
            render_rows(
                snapshot_history(session=session),
                [
                    "id",
                    "as_of",
                    "policy",
                    "policy_change",
                    "numerator",
                    "denominator",
                    "rate",
                    "exempt_in_denominator",
                    "trust_declared",
                ],
                fmt,
                title=text("snapshots_title", language),
                lang=language,
                headings={"id": text("snapshot_id", language)},
            )
            return
        switches = switches_from(
            settings,
            exempt_in_denominator=exempt_in_denominator,
            trust_declared=trust_declared,
        )
        try:
            chosen = policy_from(settings, policy.value if policy else None)
        except UnknownPolicy as error:
            fail(text("unknown_policy", language, policy=error.policy), lang=language)
        disclosure = disclosure_for(include_classified)
        report = adoption_report(
            session=session,
            settings=settings,
            switches=switches,
            by=by.value if by else None,
            policy=chosen,
            disclosure=disclosure,
        )
        if snapshot:
            stored = take_snapshot(
                session=session, settings=settings, switches=switches, policy=chosen
            )
            Console(stderr=True).print(
                text("snapshot_stored", language, id=stored.id), highlight=False
            )
    note_withheld(disclosure, language)
    if fmt is Format.json:
        print(dumps(report))
    elif fmt is Format.csv:
        _print_csv(report)
    elif fmt is Format.md:
        _print_md(report, language)
    else:
        print_adoption_table(report, language)


def _basis_wording(basis: str | None, lang: str) -> str | None:
    if basis is None:
        return None
    return text("basis_source" if basis == "source creation time" else "basis_first_seen", lang)


@app.command("violations")
def violations(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    details: Annotated[
        bool, typer.Option("--details", help="List each unattributed resource, not just counts.")
    ] = False,
    lang: LangOption = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Freeze-rule violations (new resources on frozen nodes), unattributed resources, and
    systems on the unified cloud placed against R1–R6.

    Exits 1 when a freeze-rule or placement violation exists, so a cron job notices.
    """
    from exporters.reports.findings import finding_reasons, finding_text
    from inventory.violations import (
        PLACEMENT,
        UNATTRIBUTED,
        freeze_violations,
        placement_violations,
        unattributed_counts,
        unattributed_resources,
    )

    language = cli_lang(lang)
    settings = get_settings()
    disclosure = disclosure_for(include_classified)
    with Session(open_ledger(language)) as session:
        frozen = freeze_violations(session=session, tz=settings.tz, disclosure=disclosure)
        counts = unattributed_counts(session=session)
        listed = unattributed_resources(session=session, disclosure=disclosure) if details else []
        placed = placement_violations(session=session, disclosure=disclosure)
    rows: list[dict[str, Any]] = [
        {
            "rule": v.rule,
            "node": v.node_id,
            "kind": v.kind,
            "native_id": v.native_id,
            "name": v.name,
            "count": 1,
            "created": v.created,
            "frozen_since": v.frozen_since,
            "basis": v.basis,
        }
        for v in frozen
    ]
    # People read the findings in words; JSON and CSV carry the rules' own reasons.
    readable = fmt in (Format.table, Format.md)
    rows += [
        {
            "rule": PLACEMENT,
            "node": p.node_id,
            "kind": "system",
            "native_id": p.system_code,
            "name": p.name,
            "count": 1,
            "basis": finding_text(p, language) if readable else finding_reasons(p),
        }
        for p in placed
    ]
    if details:
        rows += [
            {
                "rule": UNATTRIBUTED,
                "node": r.node_id,
                "kind": r.kind,
                "native_id": r.native_id,
                "name": r.name,
                "count": 1,
                "created": r.created,
            }
            for r in listed
        ]
    else:
        rows += [
            {"rule": UNATTRIBUTED, "node": node, "kind": kind, "count": count}
            for (node, kind), count in sorted(counts.items())
        ]
    columns = [
        "rule",
        "node",
        "kind",
        "native_id",
        "name",
        "count",
        "created",
        "frozen_since",
        "basis",
    ]
    if fmt in (Format.table, Format.md):
        # People read the rule and its basis in words; machines keep the codes.
        rows = [
            {
                **row,
                "rule": text("pl_rule", language)
                if row["rule"] == PLACEMENT
                else text(f"rule_{row['rule']}", language),
                "basis": row["basis"]
                if row["rule"] == PLACEMENT
                else _basis_wording(row.get("basis"), language),
                "kind": text("pl_system", language) if row["rule"] == PLACEMENT else row["kind"],
            }
            for row in rows
        ]
    render_rows(
        rows,
        columns,
        fmt,
        title=text("violations_title", language),
        lang=language,
        headings={"name": text("resource_name", language)},
    )
    if fmt is Format.table:
        Console(stderr=True).print(
            message_text(
                text(
                    "violations_summary",
                    language,
                    frozen=len(frozen),
                    unattributed=sum(counts.values()),
                    tag=settings.system_tag,
                )
            )
        )
        Console(stderr=True).print(
            text("pl_summary", language, count=len(placed)), highlight=False, markup=False
        )
    note_withheld(disclosure, language)
    if frozen or placed:
        raise typer.Exit(1)


@app.command("scans")
def scans(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    run: Annotated[
        int | None, typer.Option("--run", help="A scan run id (default: latest).")
    ] = None,
    failed_only: Annotated[
        bool,
        typer.Option("--failed", help="Only scopes that failed, were held, or never ran."),
    ] = False,
    lang: LangOption = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Scope results of a scan run: what listed completely, what failed and why, what was
    held or retired, and what never ran."""
    from inventory.runs import scan_run_rows

    language = cli_lang(lang)
    engine = open_ledger(language)
    disclosure = disclosure_for(include_classified)
    found = scan_run_rows(engine=engine, run_id=run, disclosure=disclosure)
    if found is None:
        Console(stderr=True).print(text("no_scans", language), highlight=False, markup=False)
        return
    chosen, rows = found
    title = text(
        "scan_run_title",
        language,
        run=chosen.id,
        status=run_status_wording(chosen.status, rows, language),
        started=f"{chosen.started_at:%F %T}",
    )
    if failed_only:
        rows = [row for row in rows if row["status"] not in ("ok", "retired")]
    _print_scans(rows, fmt, title, language)
    not_run = sum(1 for row in rows if row["status"] == "not_run")
    if not_run and fmt in (Format.table, Format.md):
        Console(stderr=True).print(
            text("scans_not_run", language, count=not_run), highlight=False, markup=False
        )
    note_withheld(disclosure, language)


def run_status_wording(status: str, rows: list[dict[str, Any]], lang: str) -> str:
    """A run's status as its title says it: a `failed` run where not one scope listed
    completely failed outright, not in part."""
    if status == "failed" and not any(row["status"] in ("ok", "retired") for row in rows):
        return text("term_run_status_all_failed", lang)
    return text(f"run_status_{status}", lang)


def _scope_where(row: dict[str, Any]) -> str:
    return "/".join(str(row[key]) for key in ("node_id", "source", "kind", "scope"))


def _scans_by_line(rows: list[dict[str, Any]], title: str, lang: str) -> Narrow:
    def print_lines(_: list[dict[str, Any]], console: Console, needed: int) -> None:
        """The scope results for a terminal too narrow for their table (80 columns): one
        line per scope (where, status, items, seconds) and its error folded beneath it,
        instead of fifteen columns squeezed to "…"."""
        console.print(as_text(title, "bold"))
        for row in rows:
            seconds = row["duration_seconds"]
            line = text(
                "term_scope_line",
                lang,
                where=_scope_where(row),
                status=scope_status_label(row["status"], lang),
                items=row["items"],
                seconds="—" if seconds is None else f"{seconds:.1f}",
            )
            console.print(as_text(line, "" if row["status"] in ("ok", "retired") else "red"))
            error = failure_wording(
                row["status"], row.get("error_code"), row.get("error_message"), lang, row
            )
            if error:
                # Folded beneath itself, so the scope lines stay the ones at the margin.
                console.print(Padding(message_text(error, "dim"), (0, 0, 0, 4)))
        Console(stderr=True).print(message_text(text("term_scans_narrow", lang, needed=needed)))

    return print_lines


def _print_scans(rows: list[dict[str, Any]], fmt: Format, title: str, language: str) -> None:
    # People read the run's id and status in the title; machines get them on every row.
    run_columns = ["run_id", "run_status"] if fmt in (Format.json, Format.csv) else []
    # The lines below a table's width word the rows themselves, from their codes.
    by_line = _scans_by_line(rows, title, language) if fmt is Format.table else None
    if fmt in (Format.table, Format.md):
        # People read the status and the failure in words; machines keep the codes.
        rows = [
            {
                **row,
                "status": scope_status_label(row["status"], language),
                "sweep": row.get("sweep") and label("sweep_verdict", row["sweep"], language),
                "error_message": failure_wording(
                    row["status"], None, row.get("error_message"), language, row
                ),
            }
            for row in rows
        ]
    render_rows(
        rows,
        [
            *run_columns,
            "node_id",
            "source",
            "kind",
            "scope",
            "status",
            "items",
            "pages",
            "api_calls",
            "retries",
            "deleted",
            "held",
            "sweep",
            "duration_seconds",
            "error_code",
            "error_message",
        ],
        fmt,
        title=title,
        lang=language,
        headings={"node_id": text("node", language)},
        narrow=by_line,
    )


# --- manager reports: HTML, Excel, department scorecard ------------------------------------


class ScorecardFormat(StrEnum):
    md = "md"
    html = "html"
    json = "json"


# `report html` and `report xlsx` write one format each; they take -f/--format like every
# report command, so one script line can name the format of whichever report it asks for.
class HtmlFormat(StrEnum):
    html = "html"


class XlsxFormat(StrEnum):
    xlsx = "xlsx"


ExemptOption = Annotated[
    bool | None,
    typer.Option(
        "--exempt-in-denominator/--no-exempt-in-denominator",
        help="Count exempt systems in the denominator (default from settings: on).",
    ),
]
TrustOption = Annotated[
    bool | None,
    typer.Option(
        "--trust-declared/--no-trust-declared",
        help="Let a declared one_cloud node stand in for missing evidence (default: off).",
    ),
]


def _gather_report(
    exempt_in_denominator: bool | None, trust_declared: bool | None, disclosure: Disclosure
) -> Any:
    from commands.common import fail
    from exporters.reports.content import gather_report
    from inventory.reports import UnknownPolicy, switches_from

    settings = get_settings()
    switches = switches_from(
        settings, exempt_in_denominator=exempt_in_denominator, trust_declared=trust_declared
    )
    with Session(open_ledger(), expire_on_commit=False) as session:
        try:
            return gather_report(
                session=session, settings=settings, switches=switches, disclosure=disclosure
            )
        except UnknownPolicy as error:
            fail(text("unknown_policy", cli_lang(None), policy=error.policy))


def _write_atomically(path: Path, payload: bytes, lang: str) -> None:
    """Write next to the target and rename, so a failed run never leaves half a report."""
    import os
    import tempfile

    from commands.common import fail

    path = path.expanduser()
    if not path.parent.exists():
        fail(text("folder_missing", lang, path=path.parent), lang=lang)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _default_output(suffix: str) -> Path:
    return Path(f"yiyun-report-{get_settings().today().isoformat()}.{suffix}")


def _announce(path: Path, lang: str) -> None:
    Console(stderr=True).print(message_text(text("written", lang, path=path)))


@app.command("html")
def html_report(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File to write (default: yiyun-report-DATE.html; - for stdout)."
        ),
    ] = None,
    fmt: Annotated[
        HtmlFormat, typer.Option("--format", "-f", help="Output format.")
    ] = HtmlFormat.html,
    lang: LangOption = None,
    exempt_in_denominator: ExemptOption = None,
    trust_declared: TrustOption = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """One self-contained HTML file for managers: KPI, trend, charts, lists (no network needed)."""
    from exporters.reports.html import render_html

    language = cli_lang(lang)
    disclosure = disclosure_for(include_classified)
    content = _gather_report(exempt_in_denominator, trust_declared, disclosure)
    page = render_html(content, language)
    note_withheld(disclosure, language)
    if output is not None and str(output) == "-":
        print(page, end="")
        return
    target = output or _default_output("html")
    _write_atomically(target, page.encode("utf-8"), language)
    _announce(target, language)


@app.command("xlsx")
def xlsx_report(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: yiyun-report-DATE.xlsx)."),
    ] = None,
    fmt: Annotated[
        XlsxFormat, typer.Option("--format", "-f", help="Output format.")
    ] = XlsxFormat.xlsx,
    lang: LangOption = None,
    exempt_in_denominator: ExemptOption = None,
    trust_declared: TrustOption = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """The report as an Excel workbook, one sheet per view (summary, cities, departments, …).

    Sheets: summary, by city, by department, systems, violations, migration progress,
    one network (一张网), scan freshness and trend.
    """
    from exporters.reports.xlsx import build_workbook

    language = cli_lang(lang)
    disclosure = disclosure_for(include_classified)
    buffer = io.BytesIO()
    content = _gather_report(exempt_in_denominator, trust_declared, disclosure)
    build_workbook(content, language).save(buffer)
    note_withheld(disclosure, language)
    target = output or _default_output("xlsx")
    _write_atomically(target, buffer.getvalue(), language)
    _announce(target, language)


@app.command("scorecard")
def scorecard(
    department: Annotated[
        str, typer.Option("--department", help="Department code, as in the register.")
    ],
    fmt: Annotated[
        ScorecardFormat, typer.Option("--format", "-f", help="md, html or json.")
    ] = ScorecardFormat.md,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    lang: LangOption = None,
    exempt_in_denominator: ExemptOption = None,
    trust_declared: TrustOption = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """One department's page: its rate, systems, plan and wave, blockers and next steps."""
    from commands.common import fail
    from exporters.reports.scorecard import (
        UnknownDepartment,
        department_scorecard,
        scorecard_html,
        scorecard_json,
        scorecard_markdown,
    )

    language = cli_lang(lang)
    disclosure = disclosure_for(include_classified)
    content = _gather_report(exempt_in_denominator, trust_declared, disclosure)
    try:
        card = department_scorecard(content, department, language)
    except UnknownDepartment as error:
        hint = (
            text("did_you_mean", language, names=", ".join(error.suggestions))
            if error.suggestions
            else ""
        )
        fail(f"{text('unknown_department', language, code=department)}{hint}", lang=language)
    if not include_classified:
        # The department's own classified systems, not the whole report's.
        note_withheld_counts(language, systems=card.classified_count)
    if fmt is ScorecardFormat.json:
        page = dumps(scorecard_json(card, content)) + "\n"
    elif fmt is ScorecardFormat.html:
        page = scorecard_html(card, content, language)
    else:
        page = scorecard_markdown(card, content, language)
    if output is None or str(output) == "-":
        print(page, end="")
        return
    _write_atomically(output, page.encode("utf-8"), language)
    _announce(output, language)
