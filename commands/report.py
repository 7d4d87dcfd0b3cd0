"""`yiyun report`: the adoption KPI and its history, violations, and the manager reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
    from inventory.access import Actor
    from inventory.queries import adoption_kpi, snapshot_trend
    from inventory.reports import UnknownPolicy, policy_from, switches_from, take_snapshot

    language = cli_lang(lang)
    settings = get_settings()
    engine = open_ledger(language)
    with Session(engine, expire_on_commit=False) as session:
        if history:
            trend, _ = snapshot_trend(session=session, actor=Actor.local())
            render_rows(
                # Newest first, as people read a history.
                trend[::-1],
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
        report = adoption_kpi(
            session=session,
            actor=Actor.local(),
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
    from inventory.access import Actor
    from inventory.queries import policy_findings
    from inventory.violations import PLACEMENT

    language = cli_lang(lang)
    settings = get_settings()
    disclosure = disclosure_for(include_classified)
    with Session(open_ledger(language)) as session:
        found = policy_findings(
            session=session,
            actor=Actor.local(),
            settings=settings,
            details=details,
            disclosure=disclosure,
        )
    # People read the findings in words; JSON and CSV carry the rules' own reasons.
    readable = fmt in (Format.table, Format.md)
    rows = found.rows((lambda p: finding_text(p, language)) if readable else finding_reasons)
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
                    frozen=len(found.frozen),
                    unattributed=sum(found.unattributed.values()),
                    tag=settings.system_tag,
                )
            )
        )
        Console(stderr=True).print(
            text("pl_summary", language, count=len(found.placed)), highlight=False, markup=False
        )
    note_withheld(disclosure, language)
    if found.frozen or found.placed:
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
    from inventory.access import Actor
    from inventory.queries import UnknownToReader, scan_run_scopes, scan_runs
    from inventory.runs import close_abandoned_runs

    language = cli_lang(lang)
    engine = open_ledger(language)
    disclosure = disclosure_for(include_classified)
    # A look from the terminal closes the runs a killed scan left `running` (the API's reads
    # never write: they show them as they stand).
    close_abandoned_runs(engine)
    actor = Actor.local()
    found = None
    with Session(engine) as session:
        if not run:
            latest, _ = scan_runs(session=session, actor=actor, limit=1)
            run = latest[0].id if latest else None
        try:
            if run:
                found = scan_run_scopes(
                    session=session, actor=actor, run_id=run, disclosure=disclosure
                )
        except UnknownToReader:
            found = None
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


def _switches(exempt_in_denominator: bool | None, trust_declared: bool | None) -> Any:
    from inventory.reports import switches_from

    return switches_from(
        get_settings(), exempt_in_denominator=exempt_in_denominator, trust_declared=trust_declared
    )


@contextmanager
def _report_session() -> Iterator[Session]:
    """The ledger for one manager report; a KPI policy setting yiyun does not know ends it."""
    from commands.common import fail
    from inventory.reports import UnknownPolicy

    with Session(open_ledger(), expire_on_commit=False) as session:
        try:
            yield session
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
    from exporters.reports.actions import province_report_html
    from inventory.access import Actor

    language = cli_lang(lang)
    disclosure = disclosure_for(include_classified)
    with _report_session() as session:
        page = province_report_html(
            session=session,
            actor=Actor.local(),
            settings=get_settings(),
            switches=_switches(exempt_in_denominator, trust_declared),
            lang=language,
            disclosure=disclosure,
        )
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
    from exporters.reports.actions import province_report_xlsx
    from inventory.access import Actor

    language = cli_lang(lang)
    disclosure = disclosure_for(include_classified)
    with _report_session() as session:
        workbook = province_report_xlsx(
            session=session,
            actor=Actor.local(),
            settings=get_settings(),
            switches=_switches(exempt_in_denominator, trust_declared),
            lang=language,
            disclosure=disclosure,
        )
    note_withheld(disclosure, language)
    target = output or _default_output("xlsx")
    _write_atomically(target, workbook, language)
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
    from exporters.reports.actions import DepartmentUnknown, department_scorecard_file
    from inventory.access import Actor

    language = cli_lang(lang)
    disclosure = disclosure_for(include_classified)
    try:
        with _report_session() as session:
            scorecard_file = department_scorecard_file(
                session=session,
                actor=Actor.local(),
                settings=get_settings(),
                switches=_switches(exempt_in_denominator, trust_declared),
                department=department,
                fmt=fmt.value,
                lang=language,
                disclosure=disclosure,
            )
    except DepartmentUnknown as error:
        fail(error.render(language), lang=language)
    if not include_classified:
        # The department's own classified systems, not the whole report's.
        note_withheld_counts(language, systems=scorecard_file.card.classified_count)
    page = scorecard_file.page
    if output is None or str(output) == "-":
        print(page, end="")
        return
    _write_atomically(output, page.encode("utf-8"), language)
    _announce(output, language)
