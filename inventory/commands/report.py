"""`yiyun report`: the adoption KPI and its history (violations come with the collectors)."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from inventory.adoption import POLICY, STATUSES
from inventory.commands.common import open_ledger
from inventory.output import Format, dumps, escape_formula, render_rows
from inventory.settings import get_settings

app = typer.Typer(help="Reports: adoption KPI, history, violations.", no_args_is_help=True)


class GroupBy(StrEnum):
    province = "province"
    city = "city"
    department = "department"
    node = "node"


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


def print_adoption_table(report: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"[bold]非涉密系统上云率 cloud-adoption rate: {_percent(report['rate'])}[/bold] "
        f"({report['numerator']}/{report['denominator']})\n"
        f"policy {report['policy']}, as of {report['as_of']}",
        highlight=False,
    )
    total = sum(report["counts"].values())
    if total == 0:
        console.print("no systems in the register yet: run `yiyun registry import FILE`")
        return
    counts = Table(title="systems by status")
    counts.add_column("status")
    counts.add_column("systems", justify="right")
    for status in STATUSES:
        counts.add_row(status, str(report["counts"][status]))
    console.print(counts)
    if "groups" in report:
        groups = Table(title=f"by {report['by']}")
        for column in ("key", "rate", "on/denominator", "exempt", "partial", "off", "none"):
            groups.add_column(column, justify="left" if column == "key" else "right")
        for row in _group_rows(report):
            groups.add_row(
                row["key"],
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
            f"[yellow]stale nodes[/yellow] (no complete scan within the freshness limit): "
            f"{', '.join(report['stale_nodes'])}",
            highlight=False,
        )


def _print_csv(report: dict[str, Any]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = ["key", "numerator", "denominator", "rate", *STATUSES]
    writer.writerow(columns)
    for row in _group_rows(report):
        writer.writerow([escape_formula(row[c]) if row[c] is not None else "" for c in columns])
    print(buffer.getvalue(), end="")


def _print_md(report: dict[str, Any]) -> None:
    print(
        f"**非涉密系统上云率**: {_percent(report['rate'])} "
        f"({report['numerator']}/{report['denominator']}), policy `{report['policy']}`, "
        f"as of {report['as_of']}\n"
    )
    columns = ["key", "rate", "numerator", "denominator", *STATUSES]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in _group_rows(report):
        cells = [_percent(row["rate"]) if c == "rate" else str(row[c]) for c in columns]
        print("| " + " | ".join(cells) + " |")
    if report["stale_nodes"]:
        print(f"\nStale nodes: {', '.join(report['stale_nodes'])}")


@app.command("adoption")
def adoption(
    by: Annotated[GroupBy | None, typer.Option("--by", help="Break the KPI down.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
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
) -> None:
    """The cloud-adoption rate of non-classified systems (非涉密系统上云率), from evidence."""
    from inventory.reports import (
        adoption_report,
        snapshot_history,
        switches_from,
        take_snapshot,
    )

    settings = get_settings()
    engine = open_ledger()
    with Session(engine, expire_on_commit=False) as session:
        if history:
            render_rows(
                snapshot_history(session=session),
                [
                    "id",
                    "as_of",
                    "policy",
                    "numerator",
                    "denominator",
                    "rate",
                    "exempt_in_denominator",
                    "trust_declared",
                ],
                fmt,
                title=f"adoption snapshots ({POLICY} and earlier policies)",
            )
            return
        switches = switches_from(
            settings,
            exempt_in_denominator=exempt_in_denominator,
            trust_declared=trust_declared,
        )
        report = adoption_report(
            session=session,
            settings=settings,
            switches=switches,
            by=by.value if by else None,
        )
        if snapshot:
            stored = take_snapshot(session=session, settings=settings, switches=switches)
            Console(stderr=True).print(f"snapshot {stored.id} stored", highlight=False)
    if fmt is Format.json:
        print(dumps(report))
    elif fmt is Format.csv:
        _print_csv(report)
    elif fmt is Format.md:
        _print_md(report)
    else:
        print_adoption_table(report)


@app.command("violations")
def violations(
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    details: Annotated[
        bool, typer.Option("--details", help="List each unattributed resource, not just counts.")
    ] = False,
) -> None:
    """Freeze-rule violations (new resources on frozen nodes) and unattributed resources.

    Exits 1 when a freeze-rule violation exists, so a cron job notices.
    """
    from inventory.violations import (
        UNATTRIBUTED,
        freeze_violations,
        unattributed_counts,
        unattributed_resources,
    )

    settings = get_settings()
    with Session(open_ledger()) as session:
        frozen = freeze_violations(session=session, tz=settings.tz)
        counts = unattributed_counts(session=session)
        listed = unattributed_resources(session=session) if details else []
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
    if details:
        rows += [
            {
                "rule": UNATTRIBUTED,
                "node": r.node_id,
                "kind": r.kind,
                "native_id": r.native_id,
                "name": r.name,
                "count": 1,
                "created": r.created_at_source,
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
    render_rows(rows, columns, fmt, title="policy violations")
    if fmt is Format.table:
        Console(stderr=True).print(
            f"{len(frozen)} freeze-rule violation(s) (不再新建或外租); "
            f"{sum(counts.values())} unattributed resource(s) "
            f"(tag them with {settings.system_tag}=<system code>)",
            highlight=False,
        )
    if frozen:
        raise typer.Exit(1)


@app.command("scans")
def scans(
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    run: Annotated[
        int | None, typer.Option("--run", help="A scan run id (default: latest).")
    ] = None,
    failed_only: Annotated[bool, typer.Option("--failed", help="Only scopes that failed.")] = False,
) -> None:
    """Scope results of a scan run: what listed completely, what failed and why."""
    from sqlmodel import col, select

    from inventory.models import ScanRun, ScopeResult

    with Session(open_ledger()) as session:
        chosen = (
            session.get(ScanRun, run)
            if run
            else session.exec(select(ScanRun).order_by(col(ScanRun.id).desc())).first()
        )
        if chosen is None:
            Console(stderr=True).print("no scan has run yet: `yiyun scan`")
            return
        query = select(ScopeResult).where(ScopeResult.run_id == chosen.id)
        if failed_only:
            query = query.where(ScopeResult.status != "ok")
        results = session.exec(
            query.order_by(col(ScopeResult.node_id), col(ScopeResult.kind), col(ScopeResult.scope))
        ).all()
    render_rows(
        [r.model_dump() for r in results],
        [
            "node_id",
            "source",
            "kind",
            "scope",
            "status",
            "items",
            "pages",
            "api_calls",
            "retries",
            "duration_seconds",
            "error_code",
            "error_message",
        ],
        fmt,
        title=f"scan run {chosen.id}: {chosen.status}, started {chosen.started_at:%F %T}Z",
    )
