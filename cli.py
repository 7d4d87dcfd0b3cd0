"""yiyun's command line: global options and the command groups, nothing else."""

from __future__ import annotations

# First: from here until the commands run, Ctrl-C ends start-up with one line and exit 130,
# never a traceback out of an import.
from inventory.commands import interrupt  # isort: split

import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exporters.commands import app as exporter_app
from infra.commands import app as infra_app
from inventory.commands.db import app as db_app
from inventory.commands.demo import demo, use_sample_migration
from inventory.commands.lang import Lang
from inventory.commands.localize import LocalizedGroup
from inventory.commands.nodes import app as nodes_app
from inventory.commands.registry import app as registry_app
from inventory.commands.report import app as report_app
from inventory.commands.scan import scan
from inventory.reporting.content import use_migration_view
from inventory.violations import use_placement_check
from migrate.commands import app as migrate_app

interrupt.started()

if TYPE_CHECKING:
    from sqlmodel import Session

    from inventory.reporting.content import MigrationLedger
    from inventory.sim.migration import SampleMigration
    from inventory.violations import PlacementViolation


def _migration_ledger(session: Session) -> MigrationLedger:
    """The manager reports' view of migrate/'s tables, imported only when a report is built."""
    from migrate.report_view import migration_ledger

    return migration_ledger(session)


def _placement_violations(**arguments: Any) -> list[PlacementViolation]:
    """Systems placed on the unified cloud against R1–R6 (migrate's rules), imported when asked."""
    from migrate.placement import placement_violations

    return placement_violations(**arguments)


def _sample_migration(*arguments: Any) -> SampleMigration:
    """`yiyun demo`'s sample plan, moved for real by migrate/ (imported when the demo runs)."""
    from migrate.sample import run_sample_migration

    return run_sample_migration(*arguments)


# The layers meet here: inventory's reports read the migration ledger without importing it.
use_migration_view(_migration_ledger)
use_placement_check(_placement_violations)
use_sample_migration(_sample_migration)

app = typer.Typer(
    # Every --help in the reader's language: the root group translates the tree before parsing.
    cls=LocalizedGroup,
    name="yiyun",
    help="一云 — inventory and migration ledger of the provincial unified government cloud.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def main_options(
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL (default: YIYUN_DATABASE_URL or sqlite:///yiyun.db)."
        ),
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", help="Node file (YAML) used by `scan` and `demo`.")
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output.")
    ] = 0,
    lang: Annotated[
        Lang | None,
        typer.Option(
            "--lang",
            help="Language of tables, messages and reports: zh or en "
            "(default: YIYUN_LANG, else the locale, else zh). JSON and CSV stay English.",
        ),
    ] = None,
) -> None:
    from inventory.settings import get_settings, set_settings

    overrides: dict[str, str] = {}
    if db is not None:  # `--db ''` is a mistake to report, not the default
        overrides["database_url"] = db
    if config:
        overrides["config"] = config
    if lang:
        overrides["lang"] = lang.value
    if overrides:
        set_settings(get_settings().model_copy(update=overrides))
    from inventory.logs import configure_logging

    configure_logging(logging.WARNING - 10 * verbose)


app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(nodes_app, name="nodes")
app.add_typer(report_app, name="report")
app.add_typer(exporter_app, name="exporter")
app.add_typer(migrate_app, name="migrate")
app.add_typer(infra_app, name="infra")
app.command("scan")(scan)
app.command("demo")(demo)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        # Typer turns one inside a command into exit 130; this is one while building the
        # command tree or after it, which would otherwise end in a traceback.
        interrupt.say_interrupted()
        raise SystemExit(interrupt.EXIT_INTERRUPTED) from None


if __name__ == "__main__":
    main()
