"""`yiyun registry`: import the system register from CSV or XLSX, and list registered systems."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from inventory.commands.common import EXIT_PROBLEM, err_console, fail, open_ledger
from inventory.output import Format

app = typer.Typer(
    help="The system register (政务信息系统目录): import it from CSV/XLSX, list it.",
    no_args_is_help=True,
)


@app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="Register file: .csv (UTF-8, UTF-8 with BOM or GB18030) or .xlsx (first sheet).",
            metavar="FILE",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and count what would change; write nothing.")
    ] = False,
    errors_out: Annotated[
        Path | None,
        typer.Option(
            "--errors-out",
            help="Also write every problem to this CSV file (row, column, value, reason).",
        ),
    ] = None,
) -> None:
    """Add and update systems and departments from the register; a file with any problem
    imports nothing. Systems missing from the file are kept, never deleted."""
    import sqlalchemy as sa

    from inventory.db import session_scope
    from inventory.registry import (
        RegisterFileError,
        check_register_path,
        import_register,
        write_problems,
    )

    try:
        check_register_path(file)
    except RegisterFileError as error:
        fail(str(error))
    if errors_out is not None and (errors_out.is_dir() or not errors_out.parent.is_dir()):
        fail(f"cannot write the error file {errors_out}: its folder does not exist")
    engine = open_ledger()
    try:
        with session_scope(engine) as session:
            report = import_register(session=session, path=file, dry_run=dry_run)
    except RegisterFileError as error:
        fail(str(error))
    except sa.exc.IntegrityError:
        fail("the register changed in the database while importing; nothing was written, run again")

    if errors_out is not None:
        try:
            write_problems(errors_out, report.problems)
        except OSError as error:
            fail(f"cannot write the error file {errors_out}: {error.strerror or error}")

    console = Console(highlight=False, soft_wrap=True)
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if report.problems:
        err_console.print(
            f"[red]{file.name}[/red] ({report.source}): {len(report.problems)} problem(s) in "
            f"{report.rows} row(s); nothing imported",
            highlight=False,
        )
        for problem in report.problems:
            # Cells are the department's own text: never let them be read as rich markup.
            err_console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        if errors_out is not None:
            err_console.print(f"problems written to {errors_out}", markup=False)
        raise typer.Exit(EXIT_PROBLEM)

    heading = "dry run (nothing written), checked" if dry_run else "imported"
    console.print(
        f"{heading}: {report.rows} row(s) from {file.name} ({report.source})", markup=False
    )
    console.print(
        f"systems: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged",
        markup=False,
    )
    console.print(
        f"departments: {report.departments_created} created, {report.departments_updated} updated",
        markup=False,
    )
    if report.not_in_file:
        console.print(
            f"{report.not_in_file} registered system(s) are not in this file (kept, not deleted)",
            markup=False,
        )


@app.command("list")
def list_command(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: Annotated[
        bool,
        typer.Option(
            "--include-classified", help="Also list classified (涉密) systems, which are hidden."
        ),
    ] = False,
) -> None:
    """List registered systems sorted by code; classified systems only when asked for."""
    from inventory.db import session_scope
    from inventory.output import render_rows
    from inventory.registry import LIST_COLUMNS, TABLE_COLUMNS, list_systems

    engine = open_ledger()
    with session_scope(engine) as session:
        rows, hidden = list_systems(session=session, include_classified=include_classified)
    # Machines get every column; people get the ones that fit a terminal.
    columns = LIST_COLUMNS if fmt in (Format.json, Format.csv) else TABLE_COLUMNS
    render_rows(rows, columns, fmt, title="registered systems")
    if hidden and fmt is Format.table:
        err_console.print(
            f"{hidden} classified system(s) not shown (--include-classified)", highlight=False
        )
