"""yiyun's command line: global options and the command groups, nothing else."""

from __future__ import annotations

# First: from here until the commands run, Ctrl-C ends start-up with one line and exit 130,
# never a traceback out of an import.
from commands import interrupt  # isort: split

import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands.access import app as access_app
from commands.db import app as db_app
from commands.demo import demo
from commands.exporter import app as exporter_app
from commands.infra import app as infra_app
from commands.lang import Lang
from commands.localize import LocalizedGroup
from commands.migrate import app as migrate_app
from commands.nodes import app as nodes_app
from commands.registry import app as registry_app
from commands.report import app as report_app
from commands.scan import scan
from commands.serve import serve
from commands.tokens import app as tokens_app
from inventory.violations import use_placement_check

interrupt.started()

if TYPE_CHECKING:
    from inventory.violations import PlacementViolation


def _placement_violations(**arguments: Any) -> list[PlacementViolation]:
    """Systems placed on the unified cloud against R1–R6 (migrate's rules), imported when asked."""
    from migrate.placement import placement_violations

    return placement_violations(**arguments)


# The layers meet here: inventory's violations reach migrate/'s rules without importing them.
use_placement_check(_placement_violations)

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
app.add_typer(access_app, name="access")
app.add_typer(tokens_app, name="tokens")
app.command("scan")(scan)
app.command("demo")(demo)
app.command("serve")(serve)


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
