"""`yiyun nodes`: load cloud node definitions from the node file and list them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inventory.commands.common import (
    EXIT_PROBLEM,
    err_console,
    fail,
    open_ledger,
    report_error,
)
from inventory.commands.lang import cli_lang
from inventory.db import mask_url, session_scope
from inventory.nodes import ApplyReport, NodeFileError, apply_nodes, list_nodes, load_node_file
from inventory.output import Format, render_rows
from inventory.reporting.i18n import text
from inventory.settings import get_settings

app = typer.Typer(help="Cloud node definitions (the node file).", no_args_is_help=True)

LIST_COLUMNS = [
    "id",
    "name",
    "level",
    "one_cloud",
    "city",
    "owner_department",
    "mlps_level",
    "dedicated_level4_pool",
    "frozen_since",
    "capacity_vcpu",
    "capacity_memory_gib",
    "capacity_storage_gib",
    "zones",
    "system_tag",
    "sources",
    "updated_at",
]
CAPACITY_COLUMNS = ("capacity_vcpu", "capacity_memory_gib", "capacity_storage_gib")
# A terminal is too narrow for every column: the table keeps what people scan for, under short
# headings (TEXTS keys); JSON, CSV and Markdown carry every column under its English key.
TABLE_COLUMNS = {
    "id": "node",
    "name": "node_name",
    "level": "node_level",
    "one_cloud": "one_cloud",
    "city": "city",
    "mlps_level": "mlps_level",
    "frozen_since": "frozen_since",
    "source_names": "sources",
}


def _amount(value: float | None) -> str:
    # Written out in full: a capacity of 120000 GiB must not turn into 1.2e+05 in a CSV.
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() else str(value)


def _for_people(row: dict[str, Any]) -> dict[str, Any]:
    """A list row with lists and numbers as text, for table, CSV and Markdown."""
    return {
        **row,
        **{column: _amount(row[column]) for column in CAPACITY_COLUMNS},
        "zones": " ".join(row["zones"]),
        "sources": ", ".join(f"{s['name']} ({s['kind']})" for s in row["sources"]),
        "source_names": " ".join(s["name"] for s in row["sources"]),
    }


def _print_table(rows: list[dict[str, Any]], lang: str) -> None:
    table = Table(title=text("cloud_nodes", lang))
    for column, heading in TABLE_COLUMNS.items():
        # Ids are what people copy into other commands: never wrap or cut them; the rest
        # folds rather than ends in "…", so nothing is hidden on a narrow terminal.
        table.add_column(text(heading, lang), no_wrap=column == "id", overflow="fold")
    for row in rows:
        table.add_row(*[_cell(row.get(column), lang) for column in TABLE_COLUMNS])
    Console().print(table)


def _cell(value: Any, lang: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return text("yes" if value else "no", lang)
    return str(value)


def _print_report(report: ApplyReport, file: Path, database: str, lang: str) -> None:
    counts = {
        "created": len(report.created),
        "updated": len(report.updated),
        "unchanged": len(report.unchanged),
    }
    heading = "nodes_dry_run" if report.dry_run else "nodes_applied"
    typer.echo(text(heading, lang, file=file, database=database, **counts))
    if report.created:
        created = "nodes_to_create" if report.dry_run else "nodes_created"
        typer.echo(text(created, lang, nodes=", ".join(report.created)))
    for node_id, columns in report.updated.items():
        updated = "nodes_to_update" if report.dry_run else "nodes_updated"
        typer.echo(text(updated, lang, node=node_id, columns=", ".join(columns)))
    if report.not_in_file:
        typer.echo(text("nodes_not_in_file", lang, nodes=", ".join(report.not_in_file)))


@app.command("apply")
def apply_command(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Node file (YAML); defaults to the global --config.", show_default=False
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would change; write nothing.")
    ] = False,
) -> None:
    """Create or update nodes from a node file; a file with any problem applies nothing."""
    lang = cli_lang()
    settings = get_settings()
    path = file or (Path(settings.config) if settings.config else None)
    if path is None:
        fail(text("node_file_needed", lang), lang=lang)
    if not path.is_file():
        fail(text("node_file_missing", lang, path=path), lang=lang)
    try:
        specs = load_node_file(path)
    except NodeFileError as error:
        count = len(error.problems)
        summary = text(
            "node_file_problem" if count == 1 else "node_file_problems",
            lang,
            path=path,
            count=count,
        )
        report_error(escape(summary), lang)
        for problem in error.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from None
    engine = open_ledger(lang)
    with session_scope(engine) as session:
        report = apply_nodes(session=session, specs=specs, dry_run=dry_run)
    _print_report(report, path, mask_url(settings.database_url), lang)


@app.command("list")
def list_command(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """List the ledger's cloud nodes with their sources (names and kinds, never credentials)."""
    lang = cli_lang()
    engine = open_ledger(lang)
    with session_scope(engine) as session:
        rows = list_nodes(session=session)
    if fmt is Format.json:
        render_rows(rows, LIST_COLUMNS, fmt)
    elif fmt is Format.table:
        if not rows:
            err_console.print(text("no_nodes_yet", lang), markup=False, highlight=False)
        _print_table([_for_people(row) for row in rows], lang)
    else:
        # CSV is for machines: English keys; Markdown is for people: translated headings.
        render_rows(
            [_for_people(row) for row in rows],
            LIST_COLUMNS,
            fmt,
            lang=lang if fmt is Format.md else None,
            headings={column: text(key, lang) for column, key in TABLE_COLUMNS.items()},
        )
