"""Revision 0002 on both databases: the schema matches the models and 0002 downgrades cleanly."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import migrate.models  # noqa: F401  (the migration tables on SQLModel.metadata)
from inventory.db import alembic_config, current_revision, head_revision, make_engine, upgrade

MIGRATION_TABLES = {"dependency", "assessment", "plan", "wave", "systemmigration", "migrationevent"}


def only_migration_tables(
    obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
) -> bool:
    table = obj if kind == "table" else getattr(obj, "table", None)
    return table is None or getattr(table, "name", None) in MIGRATION_TABLES


def test_migration_tables_match_the_models(engine: sa.Engine) -> None:
    opts = {"compare_type": True, "include_object": only_migration_tables}
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, SQLModel.metadata) == []


def test_0002_downgrades_and_upgrades_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert upgrade(engine) == head_revision()

        command.downgrade(alembic_config(engine), "0001")
        after_downgrade = set(sa.inspect(engine).get_table_names())
        revision = upgrade(engine)

        assert not MIGRATION_TABLES & after_downgrade
        assert "system" in after_downgrade
        assert revision == current_revision(engine) == head_revision()
        assert set(sa.inspect(engine).get_table_names()) >= MIGRATION_TABLES
    finally:
        engine.dispose()
