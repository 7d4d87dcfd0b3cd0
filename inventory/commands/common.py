"""What every command shares: opening the ledger and leaving with a clear message and exit code."""

from __future__ import annotations

from typing import NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console

from inventory.db import SchemaOutOfDate, get_engine, mask_url, require_schema
from inventory.settings import get_settings

err_console = Console(stderr=True)

EXIT_PROBLEM = 1  # the command ran and found a problem (failed scope, bad file)
EXIT_USAGE = 2  # usage or configuration error


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def open_ledger() -> sa.Engine:
    """The engine for the configured database, refusing one whose schema is not current."""
    url = get_settings().database_url
    try:
        engine = get_engine(url)
        require_schema(engine)
    except SchemaOutOfDate as error:
        fail(str(error))
    except sa.exc.OperationalError as error:
        fail(f"cannot open database {mask_url(url)}: {error.orig or error}")
    except sa.exc.ArgumentError:
        fail(f"not a database URL: {mask_url(url)}")
    return engine
