"""Alembic environment: runs migrations on the engine yiyun hands it, never an ini URL."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import inventory.models  # noqa: F401  (registers the tables on SQLModel.metadata)
import migrate.models  # noqa: F401

target_metadata = SQLModel.metadata
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from inventory.db import get_engine

        engine = get_engine()
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
