"""`yiyun db`: schema management through Alembic."""

from __future__ import annotations

import typer

from inventory.commands.common import fail
from inventory.db import get_engine, mask_url, upgrade
from inventory.settings import get_settings

app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command() -> None:
    """Create or upgrade the schema to the newest revision; safe to run again."""
    import sqlalchemy as sa

    url = get_settings().database_url
    try:
        revision = upgrade(get_engine(url))
    except sa.exc.OperationalError as error:
        fail(f"cannot open database {mask_url(url)}: {error.orig or error}")
    except sa.exc.ArgumentError:
        fail(f"not a database URL: {mask_url(url)}")
    typer.echo(f"database {mask_url(url)} is at schema revision {revision}")
