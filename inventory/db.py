"""Database engines and sessions for SQLite (the default) and PostgreSQL, and schema upgrades."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

from inventory.settings import get_settings
from inventory.urls import encode_password_at, mask_url

# mask_url lives in inventory.urls (one masking for every URL yiyun shows) and stays
# importable from here, where its callers have always found it.

MIGRATIONS = Path(__file__).parent / "migrations"
_engines: dict[str, sa.Engine] = {}


def normalize_url(url: str) -> str:
    """Accept postgresql:// and postgres:// and use psycopg 3 for them; an "@" in the
    password is percent-encoded, so SQLAlchemy, which splits at the first "@", reads the
    password and host that every other URL parser reads (the host follows the last "@")."""
    url = encode_password_at(url)
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the exporter read while a scan writes; busy_timeout makes writers queue.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Measured at 1M rows with bench/ingest.py: a 32 MiB page cache (default 2 MiB) keeps the
    # index pages of a bulk ingest in memory, and checkpointing the WAL every ~40 MiB instead
    # of ~4 MiB writes each hot page once per checkpoint, not ten times: first ingest
    # 48.7 s → 38.7 s, for ~40 MiB more peak RSS.
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def json_dumps(value: Any) -> str:
    """The one serializer of every JSON column, for the ORM and the bulk scan path alike.

    orjson, ~10x json.dumps; the rare value it refuses (an integer over 64 bits, a type it
    does not know) falls back to json.dumps, stringifying what JSON cannot hold.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, ensure_ascii=False, default=str)


# The URL forms yiyun is built and tested with; the drivers of both come with it.
SUPPORTED_SCHEMES = ("sqlite:///", "postgresql+psycopg://")


class UnusableDatabaseUrl(sa.exc.ArgumentError):
    """A database URL that cannot name a ledger yiyun opens: empty, a bare path, or a driver
    that is not installed. An ArgumentError, so every "not a database URL" handler holds it."""

    def __init__(self, reason: str, url: str, scheme: str = "") -> None:
        # reason: "empty", "bare_path", "no_driver" or "unknown_scheme".
        super().__init__(f"unusable database URL ({reason}): {mask_url(url)}")
        self.reason, self.url, self.scheme = reason, url, scheme


def check_database_url(url: str) -> str:
    """The URL normalized, or UnusableDatabaseUrl before anything is connected or created."""
    if not url.strip():
        raise UnusableDatabaseUrl("empty", url)
    if "://" not in url:
        # A path where a URL belongs: sqlite would otherwise never be asked.
        raise UnusableDatabaseUrl("bare_path", url)
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ValueError:
        # SQLAlchemy's parser lets a bad port through as a bare ValueError, whose text may
        # quote the URL: callers know ArgumentError as "not a database URL".
        raise sa.exc.ArgumentError(f"not a database URL: {mask_url(url)}") from None
    try:
        dialect = parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise UnusableDatabaseUrl("unknown_scheme", url, parsed.drivername) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        raise UnusableDatabaseUrl("no_driver", url, parsed.drivername) from None
    return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL, an in-memory database or a URI form."""
    parsed = make_url(normalize_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # sqlite's own URI syntax: the caller knows best
        return None
    return Path(database)


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    url = check_database_url(url)
    kwargs.setdefault("json_serializer", json_dumps)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def get_engine(url: str | None = None) -> sa.Engine:
    """One engine per URL for the process's lifetime."""
    url = normalize_url(url or get_settings().database_url)
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(engine: sa.Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: sa.Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: sa.Engine | None = None, revision: str = "head") -> str | None:
    """Bring the schema to `revision` (idempotent) and return the revision now in force."""
    from alembic import command

    engine = engine or get_engine()
    command.upgrade(alembic_config(engine), revision)
    return current_revision(engine)


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


class SchemaOutOfDate(RuntimeError):
    """The database is not at the schema this version of yiyun needs."""

    def __init__(self, url: str, current: str | None, needed: str | None) -> None:
        super().__init__(
            f"database {url} is at schema {current or 'none'}, "
            f"this yiyun needs {needed}: run `yiyun db upgrade` first"
        )
        self.url, self.current, self.needed = url, current, needed


def require_schema(engine: sa.Engine) -> None:
    """Refuse to work on a database that `yiyun db upgrade` has not brought up to date."""
    current = current_revision(engine)
    if current != head_revision():
        raise SchemaOutOfDate(mask_url(str(engine.url)), current, head_revision())
