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

from inventory.adoption import POLICY, STATUSES, PolicySwitches
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


def _print_table(report: dict[str, Any]) -> None:
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
    from inventory.reports import adoption_report, snapshot_history, take_snapshot

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
        switches = PolicySwitches(
            exempt_in_denominator=settings.exempt_in_denominator
            if exempt_in_denominator is None
            else exempt_in_denominator,
            trust_declared=settings.trust_declared if trust_declared is None else trust_declared,
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
        _print_table(report)
