"""`yiyun db`: schema management through Alembic."""

from __future__ import annotations

import typer

from commands.common import fail_to_open
from commands.lang import cli_lang
from inventory.db import get_engine, mask_url, upgrade
from inventory.i18n import text
from inventory.output import echo
from inventory.settings import get_settings

app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command() -> None:
    """Create or upgrade the schema to the newest revision; safe to run again."""
    import sqlalchemy as sa

    lang = cli_lang()
    url = get_settings().database_url
    try:
        revision = upgrade(get_engine(url))
    except (sa.exc.DBAPIError, sa.exc.ArgumentError) as error:
        fail_to_open(error, url, lang)
    echo(text("db_at_revision", lang, url=mask_url(url), revision=revision))
