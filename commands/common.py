"""What every command shares: opening the ledger and leaving with a clear message and exit code."""

from __future__ import annotations

from typing import NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.text import Text

from commands.lang import lang_or_locale
from inventory.db import (
    SUPPORTED_SCHEMES,
    SchemaOutOfDate,
    UnusableDatabaseUrl,
    get_engine,
    mask_url,
    require_schema,
    sqlite_file,
)
from inventory.i18n import text
from inventory.output import Prose, message_text
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
    # On a terminal, wrapped as prose with each `command` whole; into a file or a pipe, one
    # line per message.
    err_console.print(
        Prose.assemble((prefix, "red"), gap, message_text(message)),
        soft_wrap=not err_console.is_terminal,
    )


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
        # Connecting to a SQLite path that is not there would leave an empty database at a
        # mistyped path; only `db upgrade` (and `demo`) create a ledger.
        path = sqlite_file(url)
        if path is not None and not path.exists():
            fail(text("err_no_ledger_file", lang, path=path), lang=lang)
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
    if isinstance(error, UnusableDatabaseUrl):
        fail(unusable_url_message(error, lang), lang=lang)
    if isinstance(error, sa.exc.ArgumentError):
        fail(text("not_db_url", lang, url=mask_url(url)), lang=lang)
    # Only a failure to connect (no statement ran) is the database's: others are a bug to see.
    if not isinstance(error, sa.exc.OperationalError) and error.statement is not None:
        raise error
    reason = scrub(str(error.orig or error), url)
    fail(text("cannot_open_db", lang, url=mask_url(url), error=reason), lang=lang)


def unusable_url_message(error: UnusableDatabaseUrl, lang: str) -> str:
    """What is wrong with the URL, and the form that would work."""
    supported = ("、" if lang == "zh" else ", ").join(SUPPORTED_SCHEMES)
    if error.reason == "empty":
        return text("err_db_url_empty", lang, supported=supported)
    if error.reason == "bare_path":
        # A path is no secret, unless it is a URL without its scheme ("user:pw@host/db").
        path = error.url if "@" not in error.url else mask_url(error.url)
        return text("err_db_url_bare_path", lang, path=path)
    key = "err_db_driver_missing" if error.reason == "no_driver" else "err_db_scheme_unknown"
    return text(key, lang, scheme=error.scheme, url=mask_url(error.url), supported=supported)
