"""What every command shares: opening the ledger and leaving with a clear message and exit code."""

from __future__ import annotations

from typing import NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.text import Text

from inventory.commands.lang import lang_or_locale
from inventory.db import SchemaOutOfDate, get_engine, mask_url, require_schema
from inventory.output import message_text
from inventory.reporting.i18n import text
from inventory.settings import get_settings
from inventory.urls import scrub

err_console = Console(stderr=True)

EXIT_PROBLEM = 1  # the command ran and found a problem (failed scope, bad file)
EXIT_USAGE = 2  # usage or configuration error


def report_error(message: str, lang: str | None = None) -> None:
    """An `error:` line on stderr; the message is shown as written, never read as markup
    (it carries names, paths and a source's own words)."""
    prefix = text("error_prefix", lang or lang_or_locale())
    # A full-width colon carries its own space.
    gap = "" if prefix.endswith("：") else " "
    err_console.print(Text.assemble((prefix, "red"), gap, message_text(message)), soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE, *, lang: str | None = None) -> NoReturn:
    report_error(message, lang)
    raise typer.Exit(code)


def warn(message: str, lang: str) -> None:
    """A warning line on stderr; the message is shown as written, never read as markup."""
    prefix = text("warning_prefix", lang)
    gap = "" if prefix.endswith("：") else " "
    err_console.print(Text.assemble((prefix, "yellow"), gap, message_text(message)))


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
    except (sa.exc.DBAPIError, sa.exc.ArgumentError) as error:
        fail_to_open(error, url, lang)
    return engine


def fail_to_open(error: sa.exc.DBAPIError | sa.exc.ArgumentError, url: str, lang: str) -> NoReturn:
    """Leave with "cannot open database" (or "not a database URL"): the URL masked, and the
    driver's own words with every secret of the URL taken out (an error may quote it)."""
    if isinstance(error, sa.exc.ArgumentError):
        fail(text("not_db_url", lang, url=mask_url(url)), lang=lang)
    # Only a failure to connect (no statement ran) is the database's: others are a bug to see.
    if not isinstance(error, sa.exc.OperationalError) and error.statement is not None:
        raise error
    reason = scrub(str(error.orig or error), url)
    fail(text("cannot_open_db", lang, url=mask_url(url), error=reason), lang=lang)
