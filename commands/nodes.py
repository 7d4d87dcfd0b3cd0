"""`yiyun nodes`: load cloud node definitions from the node file, list them, retire them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from commands.common import (
    EXIT_PROBLEM,
    err_console,
    fail,
    open_ledger,
    report_error,
    warn,
)
from commands.lang import cli_lang
from inventory.access import Actor
from inventory.db import mask_url, session_scope
from inventory.i18n import node_level_label, text
from inventory.locks import LocksUnavailable
from inventory.nodes import (
    ApplyReport,
    NodeBusy,
    NodeFileError,
    UnknownNode,
    apply_node_file,
    load_node_file,
    retire_node_as,
)
from inventory.output import Format, echo, render_rows
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
    "retired_at",
    "retired_by",
    "retired_reason",
]
CAPACITY_COLUMNS = ("capacity_vcpu", "capacity_memory_gib", "capacity_storage_gib")
# A terminal is too narrow for every column: the table keeps what people scan for, under short
# headings (TEXTS keys); JSON, CSV and Markdown carry every column under its English key.
TABLE_COLUMNS = {
    "id": "node",
    "name": "node_name",
    "state": "node_state",
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


def _state(row: dict[str, Any], lang: str) -> str:
    """`active`, or `retired <date>` for a node that `nodes retire` took out of scans."""
    retired_at = row["retired_at"]
    if retired_at is None:
        return text("node_live", lang)
    return text("node_retired_on", lang, date=retired_at.date().isoformat())


def _print_table(rows: list[dict[str, Any]], lang: str) -> None:
    # The shared renderer folds between words, or lays rows out as blocks on a terminal too
    # narrow for the columns: a level or a date is never cut in the middle.
    render_rows(
        [
            {**row, "state": _state(row, lang), "level": node_level_label(row["level"], lang)}
            for row in rows
        ],
        tuple(TABLE_COLUMNS),
        Format.table,
        title=text("cloud_nodes", lang),
        lang=lang,
        headings={column: text(key, lang) for column, key in TABLE_COLUMNS.items()},
    )


def _print_report(report: ApplyReport, file: Path, database: str, lang: str) -> None:
    counts = {
        "created": len(report.created),
        "updated": len(report.updated),
        "unchanged": len(report.unchanged),
    }
    dry = report.dry_run
    heading = "nodes_dry_run" if dry else "nodes_applied"
    echo(text(heading, lang, file=file, database=database, **counts))
    if report.created:
        created = "nodes_to_create" if dry else "nodes_created"
        echo(text(created, lang, nodes=", ".join(report.created)))
    for node_id, columns in report.updated.items():
        updated = "nodes_to_update" if dry else "nodes_updated"
        echo(text(updated, lang, node=node_id, columns=", ".join(columns)))
    for node_id, renames in report.renamed_sources.items():
        for old, new in renames:
            renamed = "source_to_rename" if dry else "source_renamed"
            echo(text(renamed, lang, node=node_id, old=old, new=new))
    if report.revived:
        revived = "nodes_to_revive" if dry else "nodes_revived"
        echo(text(revived, lang, nodes=", ".join(report.revived)))
    if report.retired:
        retired = "nodes_to_retire" if dry else "nodes_pruned"
        echo(text(retired, lang, nodes=", ".join(report.retired)))
    if report.not_in_file:
        echo(text("nodes_not_in_file", lang, nodes=", ".join(report.not_in_file)))
        warn(text("nodes_missing_from_file", lang, nodes=", ".join(report.not_in_file)), lang)


def _refuse_file(error: NodeFileError, path: Path, lang: str) -> NoReturn:
    """Print every problem of a refused node file and leave with exit 1."""
    count = len(error.problems)
    summary = text(
        "node_file_problem" if count == 1 else "node_file_problems", lang, path=path, count=count
    )
    report_error(summary, lang)
    for problem in error.problems:
        echo(f"  {problem.describe(lang)}", err=True)
    raise typer.Exit(EXIT_PROBLEM)


def _locks_unavailable(error: LocksUnavailable, lang: str) -> NoReturn:
    """Retiring a node takes its scan lock; without the lock file, nothing is changed."""
    fail(
        text("scan_locks_unavailable", lang, path=error.path, error=error.reason),
        EXIT_PROBLEM,
        lang=lang,
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
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Retire the ledger's nodes that the file no longer lists (needs --by).",
        ),
    ] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="Who prunes: recorded on each retired node.")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why, recorded with --prune (default: left the node file)."),
    ] = None,
) -> None:
    """Create or update nodes from a node file; a file with any problem applies nothing.

    Nodes in the ledger but not in the file are kept (and still scanned) until retired:
    `yiyun nodes retire ID`, or --prune here.
    """
    lang = cli_lang()
    settings = get_settings()
    path = file or (Path(settings.config) if settings.config else None)
    if path is None:
        fail(text("node_file_needed", lang), lang=lang)
    if prune and (by is None or not by.strip()):
        fail(text("prune_needs_by", lang), lang=lang)
    if not path.is_file():
        fail(text("node_file_missing", lang, path=path), lang=lang)
    try:
        specs = load_node_file(path)
    except NodeFileError as error:
        _refuse_file(error, path, lang)
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            report = apply_node_file(
                session=session,
                actor=Actor.local(by),
                specs=specs,
                dry_run=dry_run,
                prune=prune,
                note=reason,
            )
    except NodeFileError as error:
        _refuse_file(error, path, lang)
    except NodeBusy as error:
        fail(text("node_busy_retire", lang, node=error.node_id), EXIT_PROBLEM, lang=lang)
    except LocksUnavailable as error:
        _locks_unavailable(error, lang)
    _print_report(report, path, mask_url(settings.database_url), lang)


@app.command("retire")
def retire_command(
    node_id: Annotated[str, typer.Argument(metavar="ID", help="The node to retire.")],
    by: Annotated[str, typer.Option("--by", help="Who retires it (recorded).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded with every row).")],
) -> None:
    """Retire a node that left the estate or was renamed: its live rows are tombstoned with
    their history kept, and it is no longer scanned. A node file listing it again brings it
    back."""
    lang = cli_lang()
    if not by.strip() or not reason.strip():
        fail(text("retire_needs_by_reason", lang), lang=lang)
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            result = retire_node_as(
                session=session, actor=Actor.local(by), node_id=node_id, reason=reason
            )
    except UnknownNode as error:
        hint = text("did_you_mean", lang, names=repr(error.close)) if error.close else ""
        fail(text("unknown_node", lang, node=node_id) + hint, lang=lang)
    except NodeBusy:
        fail(text("node_busy_retire", lang, node=node_id), EXIT_PROBLEM, lang=lang)
    except LocksUnavailable as error:
        _locks_unavailable(error, lang)
    if result.already:
        at = result.retired_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        message = text(
            "node_already_retired",
            lang,
            node=node_id,
            at=at,
            by=result.retired_by,
            reason=result.retired_reason,
        )
    else:
        message = text("node_retired", lang, node=node_id, count=result.tombstoned)
    echo(message)


@app.command("list")
def list_command(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """List the ledger's cloud nodes with their sources (ids and kinds, never credentials);
    retired nodes are listed too, marked as retired."""
    from inventory.access import Actor
    from inventory.queries import find_nodes

    lang = cli_lang()
    engine = open_ledger(lang)
    with session_scope(engine) as session:
        # The node file's view: what is allocated and scanned is for GET /nodes and reports.
        found = find_nodes(
            session=session, actor=Actor.local(), settings=get_settings(), usage=False
        )
    rows = [node.row for node in found]
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
