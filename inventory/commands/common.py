"""What every command shares: opening the ledger and leaving with a clear message and exit code."""

from __future__ import annotations

from typing import NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console

from inventory.commands.lang import lang_or_locale
from inventory.db import SchemaOutOfDate, get_engine, mask_url, require_schema
from inventory.reporting.i18n import text
from inventory.settings import get_settings

err_console = Console(stderr=True)

EXIT_PROBLEM = 1  # the command ran and found a problem (failed scope, bad file)
EXIT_USAGE = 2  # usage or configuration error


def report_error(message: str, lang: str | None = None) -> None:
    """An `error:` line on stderr (rich markup in `message` is honoured)."""
    prefix = text("error_prefix", lang or lang_or_locale())
    # A full-width colon carries its own space.
    gap = "" if prefix.endswith("：") else " "
    err_console.print(f"[red]{prefix}[/red]{gap}{message}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE, *, lang: str | None = None) -> NoReturn:
    report_error(message, lang)
    raise typer.Exit(code)


def warn(message: str, lang: str) -> None:
    """A warning line on stderr; the message is shown as written, never read as markup."""
    from rich.markup import escape

    prefix = text("warning_prefix", lang)
    gap = "" if prefix.endswith("：") else " "
    err_console.print(f"[yellow]{prefix}[/yellow]{gap}{escape(message)}", highlight=False)


def open_ledger(lang: str | None = None) -> sa.Engine:
    """The engine for the configured database, refusing one whose schema is not current."""
    url = get_settings().database_url
    lang = lang or lang_or_locale()
    try:
        engine = get_engine(url)
        require_schema(engine)
    except SchemaOutOfDate as error:
        fail(
            text(
                "schema_out_of_date",
                lang,
                url=error.url,
                current=error.current or text("schema_none", lang),
                needed=error.needed,
            ),
            lang=lang,
        )
    except sa.exc.OperationalError as error:
        fail(text("cannot_open_db", lang, url=mask_url(url), error=error.orig or error), lang=lang)
    except sa.exc.ArgumentError:
        fail(text("not_db_url", lang, url=mask_url(url)), lang=lang)
    return engine
