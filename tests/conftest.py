"""Shared fixtures: every DB test runs on SQLite and on PostgreSQL, each in its own schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from inventory.db import dispose_engines, make_engine, sqlite_file, upgrade
from inventory.settings import Settings, set_settings

PG_ADMIN_URL = os.environ.get(
    "YIYUN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PEERS = os.environ.get("YIYUN_REQUIRE_PEERS") == "1"


def missing_peer(reason: str) -> None:
    """Skip on a laptop without the peer; fail under CI, where every peer must be present."""
    if REQUIRE_PEERS:
        pytest.fail(f"required peer missing (YIYUN_REQUIRE_PEERS=1): {reason}")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_peer(f"`{name}` is not installed")
    assert path is not None
    return path


def _pg_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as error:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error.__class__.__name__}"


@pytest.fixture(autouse=True)
def english_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Human output in English whatever the machine's locale (C.UTF-8 would mean Chinese),
    so tests that read messages are deterministic; a test wanting Chinese passes --lang zh."""
    monkeypatch.setenv("YIYUN_LANG", "en")
    set_settings(None)  # settings read before this point did not see YIYUN_LANG


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database URL; PostgreSQL gets a schema of its own, dropped afterwards."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "yiyun.db"
        yield f"sqlite:///{path}"
        dispose_engines()
        return
    problem = _pg_reachable()
    if problem:
        missing_peer(problem)
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        dispose_engines()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file that Alembic brought to head, made once per test process: a copy of it
    is a fresh ledger at head in a millisecond instead of the migrations' 0.4 s."""
    template = tmp_path_factory.mktemp("template") / "head.db"
    engine = make_engine(f"sqlite:///{template}")
    upgrade(engine)
    engine.dispose()
    return template


@dataclass(frozen=True)
class SchemaAtHead:
    """The DDL of a PostgreSQL schema Alembic brought to head, under a placeholder name."""

    ddl: str
    placeholder: str
    revision: str

    def create_in(self, engine: sa.Engine, schema: str) -> None:
        """Lay the schema out in the empty `schema` (tables, indexes, functions, triggers) and
        stamp it at head, as Alembic would have left it."""
        ddl = self.ddl.replace(self.placeholder, schema)
        with engine.begin() as connection:
            connection.exec_driver_sql(ddl)
            connection.exec_driver_sql(
                f'INSERT INTO "{schema}".alembic_version (version_num) VALUES (%s)',
                (self.revision,),
            )


def _dumped_ddl(pg_dump: str, schema: str) -> str:
    url = sa.make_url(PG_ADMIN_URL)
    command = [pg_dump, "--schema-only", "--no-owner", "--no-privileges", f"--schema={schema}"]
    command += ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    command += ["-U", url.username or "postgres", url.database or "postgres"]
    dumped = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    kept = []
    for line in dumped.splitlines():
        # psql's own commands (\restrict) and the CREATE SCHEMA the test has already run.
        if line.startswith("\\") or line.startswith(f"CREATE SCHEMA {schema}"):
            continue
        # pg_dump's session settings for a restore, and its emptied search_path: the DDL names
        # every object with its schema, and the engine's pooled connection keeps its own.
        if line.startswith("SET ") or "set_config('search_path'" in line:
            continue
        kept.append(line)
    return "\n".join(kept)


@pytest.fixture(scope="session")
def pg_at_head() -> Iterator[SchemaAtHead | None]:
    """One PostgreSQL schema migrated by Alembic once per test process, dumped as DDL: laying
    it out in a test's schema takes ~30 ms instead of the migrations' 0.3 s. None where
    PostgreSQL or pg_dump is missing (each test then migrates its own schema)."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None or _pg_reachable() is not None:
        yield None
        return
    # A name that occurs nowhere else in the DDL, so replacing it renames only the schema.
    placeholder = "yiyun_head_" + uuid.uuid4().hex
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{placeholder}"'))
    try:
        engine = make_engine(f"{PG_ADMIN_URL}?options=-csearch_path%3D{placeholder}")
        upgrade(engine)
        with engine.connect() as connection:
            revision = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            head = str(revision.scalar_one())
        engine.dispose()
        template = SchemaAtHead(_dumped_ddl(pg_dump, placeholder), placeholder, head)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{placeholder}" CASCADE'))
        admin.dispose()
    yield template


@pytest.fixture
def engine(
    db_url: str, sqlite_at_head: Path, pg_at_head: SchemaAtHead | None
) -> Iterator[sa.Engine]:
    """An engine on a database at Alembic's head: a copy of the SQLite template, or the
    PostgreSQL template's DDL laid out in the test's own schema."""
    path = sqlite_file(db_url)
    copied = path is not None and not path.exists()
    if copied:
        shutil.copyfile(sqlite_at_head, path)
    engine = make_engine(db_url)
    schema = db_url.rpartition("search_path%3D")[2] if path is None else ""
    if path is None and pg_at_head is not None and schema:
        pg_at_head.create_in(engine, schema)
    elif not copied:
        upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def settings(db_url: str, engine: sa.Engine) -> Iterator[Settings]:
    """Settings pointing the CLI and domain code at the test database."""
    configured = Settings(database_url=db_url)
    set_settings(configured)
    yield configured
    set_settings(None)
