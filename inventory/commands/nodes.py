"""`yiyun nodes`: load cloud node definitions from the node file and list them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inventory.commands.common import EXIT_PROBLEM, err_console, fail, open_ledger
from inventory.db import mask_url, session_scope
from inventory.nodes import ApplyReport, NodeFileError, apply_nodes, list_nodes, load_node_file
from inventory.output import Format, render_rows
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
# headers; JSON, CSV and Markdown carry every column under its English key.
TABLE_COLUMNS = {
    "id": "id",
    "name": "name",
    "level": "level",
    "one_cloud": "one cloud",
    "city": "city",
    "mlps_level": "MLPS",
    "frozen_since": "frozen since",
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


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Cloud nodes")
    for column, header in TABLE_COLUMNS.items():
        # Ids are what people copy into other commands: never wrap or cut them; the rest
        # folds rather than ends in "…", so nothing is hidden on a narrow terminal.
        table.add_column(header, no_wrap=column == "id", overflow="fold")
    for row in rows:
        table.add_row(*[_cell(row.get(column)) for column in TABLE_COLUMNS])
    Console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _print_report(report: ApplyReport, file: Path, database: str) -> None:
    counts = (len(report.created), len(report.updated), len(report.unchanged))
    if report.dry_run:
        typer.echo(
            f"dry run of {file} against {database}, nothing written: would create {counts[0]}, "
            f"update {counts[1]}, leave {counts[2]} unchanged"
        )
    else:
        typer.echo(
            f"applied {file} to {database}: {counts[0]} created, {counts[1]} updated, "
            f"{counts[2]} unchanged"
        )
    if report.created:
        typer.echo(f"  {'to create' if report.dry_run else 'created'}: {', '.join(report.created)}")
    for node_id, columns in report.updated.items():
        typer.echo(
            f"  {'to update' if report.dry_run else 'updated'}: {node_id} ({', '.join(columns)})"
        )
    if report.not_in_file:
        typer.echo(
            f"  not in this file (kept in the ledger, unchanged): {', '.join(report.not_in_file)}"
        )


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
    settings = get_settings()
    path = file or (Path(settings.config) if settings.config else None)
    if path is None:
        fail("give the node file: `yiyun nodes apply nodes.yaml` (or the global --config)")
    if not path.is_file():
        fail(f"node file {path} not found")
    try:
        specs = load_node_file(path)
    except NodeFileError as error:
        count = len(error.problems)
        err_console.print(
            f"[red]error:[/red] {escape(str(path))}: {count} problem{'s' if count != 1 else ''}, "
            "nothing applied",
            highlight=False,
            soft_wrap=True,
        )
        for problem in error.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from None
    engine = open_ledger()
    with session_scope(engine) as session:
        report = apply_nodes(session=session, specs=specs, dry_run=dry_run)
    _print_report(report, path, mask_url(settings.database_url))


@app.command("list")
def list_command(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """List the ledger's cloud nodes with their sources (names and kinds, never credentials)."""
    engine = open_ledger()
    with session_scope(engine) as session:
        rows = list_nodes(session=session)
    if fmt is Format.json:
        render_rows(rows, LIST_COLUMNS, fmt)
    elif fmt is Format.table:
        if not rows:
            err_console.print("no nodes yet: load them with `yiyun nodes apply nodes.yaml`")
        _print_table([_for_people(row) for row in rows])
    else:
        render_rows([_for_people(row) for row in rows], LIST_COLUMNS, fmt)
