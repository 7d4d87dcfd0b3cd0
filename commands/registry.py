"""`yiyun registry`: import the system register from CSV or XLSX, and list registered systems."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from commands.common import EXIT_PROBLEM, err_console, fail, open_ledger, warn
from commands.disclosure import IncludeClassifiedOption, disclosure_for, note_withheld
from commands.lang import cli_lang
from inventory.i18n import Wording, text
from inventory.output import Format, as_text, message_text

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
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who imports (recorded in the audit log beside the OS user)."),
    ] = None,
) -> None:
    """Add and update systems and departments from the register; a file with any problem
    imports nothing. Systems missing from the file are kept, never deleted."""
    import sqlalchemy as sa

    from inventory.access import Actor
    from inventory.db import session_scope
    from inventory.registry import (
        RegisterChanged,
        RegisterFileError,
        check_register_path,
        describe_diff,
        register_import,
        write_problems,
    )

    lang = cli_lang()
    try:
        check_register_path(file)
    except RegisterFileError as error:
        fail(str(error), lang=lang)
    if errors_out is not None and (errors_out.is_dir() or not errors_out.parent.is_dir()):
        fail(text("errors_out_folder", lang, path=errors_out), lang=lang)
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            report = register_import(
                session=session, actor=Actor.local(by), path=file, dry_run=dry_run
            )
    except RegisterFileError as error:
        fail(str(error), lang=lang)
    except (sa.exc.IntegrityError, RegisterChanged):
        fail(text("register_changed", lang), lang=lang)

    if errors_out is not None:
        try:
            write_problems(errors_out, report.problems)
        except OSError as error:
            fail(
                text("errors_out_write", lang, path=errors_out, error=error.strerror or error),
                lang=lang,
            )

    console = Console(highlight=False, soft_wrap=True)
    for warning in report.warnings:
        warn(warning.render(lang) if isinstance(warning, Wording) else str(warning), lang)
    if report.problems:
        err_console.print(
            message_text(
                text(
                    "register_problems",
                    lang,
                    file=file.name,
                    source=report.source,
                    count=len(report.problems),
                    rows=report.rows,
                ),
                "red",
            )
        )
        for problem in report.problems:
            # Cells are the department's own text: never let them be read as rich markup.
            err_console.print(as_text(f"  {problem.render(lang)}"), soft_wrap=True)
        if errors_out is not None:
            err_console.print(message_text(text("problems_written", lang, path=errors_out)))
        raise typer.Exit(EXIT_PROBLEM)

    heading = "register_checked" if dry_run else "register_imported"
    console.print(
        message_text(text(heading, lang, rows=report.rows, file=file.name, source=report.source))
    )
    console.print(
        text(
            "register_systems",
            lang,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
        ),
        markup=False,
    )
    console.print(
        text(
            "register_departments",
            lang,
            created=report.departments_created,
            updated=report.departments_updated,
        ),
        markup=False,
    )
    if report.not_in_file:
        console.print(text("register_not_in_file", lang, count=report.not_in_file), markup=False)
    if dry_run:
        # Codes and names are the register's own text: never read as markup.
        for line in describe_diff(report, lang):
            console.print(as_text(line), soft_wrap=True)


@app.command("list")
def list_command(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """List registered systems sorted by code; classified systems only when asked for."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from inventory.i18n import lifecycle_label
    from inventory.output import render_rows
    from inventory.queries import find_systems
    from inventory.registry import LIST_COLUMNS, TABLE_COLUMNS
    from inventory.settings import get_settings

    lang = cli_lang()
    engine = open_ledger(lang)
    disclosure = disclosure_for(include_classified)
    with session_scope(engine) as session:
        # The register alone: the list shows no KPI status, so none is computed.
        found = find_systems(
            session=session,
            actor=Actor.local(),
            settings=get_settings(),
            disclosure=disclosure,
            kpi=False,
        )
    rows = [system.as_row() for system in found.items]
    # Machines get every column; people get the ones that fit a terminal.
    columns = LIST_COLUMNS if fmt in (Format.json, Format.csv) else TABLE_COLUMNS
    if fmt in (Format.table, Format.md):
        # People read the lifecycle's name; JSON and CSV keep the stored code.
        rows = [{**row, "lifecycle": lifecycle_label(row["lifecycle"], lang)} for row in rows]
    render_rows(
        rows,
        columns,
        fmt,
        title=text("registered_systems", lang),
        lang=lang,
        headings={"code": text("system_code", lang), "name": text("system_name", lang)},
    )
    note_withheld(disclosure, lang)
