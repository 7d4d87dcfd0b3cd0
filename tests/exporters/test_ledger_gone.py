"""The exporter knows when its ledger is gone: a SQLite file moved, deleted, made unreadable or
replaced, or a database whose tables or whole database were dropped, gives
yiyun_exporter_up 0 at the next refresh (the last good snapshot still served, the reason
logged), and it comes back to 1 when the ledger does. Always the real `yiyun exporter serve`."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from inventory.db import make_engine, upgrade
from inventory.models import Resource
from inventory.settings import Settings
from tests.conftest import PG_ADMIN_URL, _pg_reachable, missing_peer
from tests.exporters.estate import seed_metrics_estate
from tests.exporters.test_server import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROVINCE = 'yiyun_adoption_ratio{city="",department="",scope="province"} 0.2667'
# Root reads any file, chmod 000 or not. The exporter runs without the two capabilities that
# let it (as a service user would), so an unreadable ledger is really unreadable to it.
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
PR_CAPBSET_DROP = 24


def without_permission_override() -> None:
    """preexec_fn: drop both from the bounding set; exec then leaves them out of root's set."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def sample(text: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


@dataclass
class Served:
    """A running `yiyun exporter serve`."""

    process: subprocess.Popen[str]
    url: str

    def scrape(self) -> str:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            assert response.status == 200
            return str(response.read().decode())

    def wait_up(self, value: float, *, what: str) -> str:
        """Poll until yiyun_exporter_up is `value`; the scrape that showed it."""
        return str(
            wait_for(
                lambda: next(
                    (t for t in [self.scrape()] if sample(t, "yiyun_exporter_up") == value), None
                ),
                what=what,
            )
        )

    def failures(self) -> float:
        return sample(self.scrape(), "yiyun_exporter_refresh_failures_total") or 0.0

    def wait_more_failures(self, count: int, *, what: str) -> str:
        """Poll until `count` more refreshes have failed: the state held across refreshes."""
        target = self.failures() + count
        return str(
            wait_for(
                lambda: next(
                    (
                        t
                        for t in [self.scrape()]
                        if (sample(t, "yiyun_exporter_refresh_failures_total") or 0) >= target
                    ),
                    None,
                ),
                what=what,
            )
        )


@contextmanager
def exporter(db_url: str, *, refresh: int = 1) -> Iterator[tuple[Served, list[str]]]:
    """Serve `db_url`; on leaving, SIGTERM it and hand back its stderr in the list."""
    port = free_port()
    command = [sys.executable, "-c", "from cli import main; main()", "--db", db_url]
    process = subprocess.Popen(
        [*command, "exporter", "serve", "--port", str(port), "--refresh", str(refresh)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "YIYUN_DATABASE_URL": ""},
        preexec_fn=without_permission_override,
    )
    err: list[str] = []
    try:
        yield Served(process, f"http://127.0.0.1:{port}/metrics"), err
        process.send_signal(signal.SIGTERM)
        err.append(process.communicate(timeout=30)[1])
        assert process.returncode == 0, err[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def seed(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        seed_metrics_estate(session, today=Settings().today())
    engine.dispose()


# --- a SQLite file that goes away --------------------------------------------------------


def other_database(path: Path) -> None:
    """A SQLite database that is not a yiyun ledger."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('not a ledger')")
    connection.close()


@dataclass
class Mishap:
    """What happens to the ledger file, how it comes back, and the reason the log gives."""

    name: str
    gone: Callable[[Path], None]
    back: Callable[[Path], None]
    reason: str
    stays_absent: bool  # nothing may be left at the path while it is gone


def move_away(db: Path) -> None:
    db.rename(db.with_name("moved-away.db"))


def move_back(db: Path) -> None:
    db.with_name("moved-away.db").rename(db)


def delete(db: Path) -> None:
    backup = sqlite3.connect(db.with_name("backup.db"))
    with sqlite3.connect(db) as live:
        live.backup(backup)
    live.close()
    backup.close()
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)


def restore_copy(db: Path) -> None:
    shutil.copyfile(db.with_name("backup.db"), db)  # a new file: another inode


def replace(db: Path) -> None:
    os.link(db, db.with_name("original.db"))
    other_database(db.with_name("other.db"))
    os.replace(db.with_name("other.db"), db)


def put_back(db: Path) -> None:
    os.replace(db.with_name("original.db"), db)


MISHAPS = [
    Mishap("moved", move_away, move_back, "is gone (moved or deleted)", stays_absent=True),
    Mishap("deleted", delete, restore_copy, "is gone (moved or deleted)", stays_absent=True),
    Mishap(
        "unreadable",
        lambda db: db.chmod(0),
        lambda db: db.chmod(0o644),
        "cannot read the ledger file",
        stays_absent=False,
    ),
    Mishap("replaced", replace, put_back, "was replaced by another file", stays_absent=False),
]


@pytest.mark.parametrize("mishap", MISHAPS, ids=[m.name for m in MISHAPS])
def test_a_sqlite_ledger_that_goes_away_is_up_zero_until_it_comes_back(
    tmp_path: Path, mishap: Mishap
) -> None:
    db = tmp_path / "yiyun.db"
    seed(f"sqlite:///{db}")

    with exporter(f"sqlite:///{db}") as (served, err):
        before = served.wait_up(1.0, what="the first good snapshot")
        mishap.gone(db)
        during = served.wait_up(0.0, what=f"up 0 once the ledger is {mishap.name}")
        # Refreshes go on failing while it is away (a replacement without yiyun's schema is
        # no ledger either), and none of them leaves a file of its own at the path.
        still = served.wait_more_failures(2, what="two more failed refreshes")
        absent = not db.exists()
        mishap.back(db)
        after = served.wait_up(1.0, what="up 1 once the ledger is back")

    assert PROVINCE in before
    # What a failed refresh always does: the last good snapshot, marked up 0.
    assert PROVINCE in during and PROVINCE in still
    assert sample(still, "yiyun_exporter_up") == 0.0
    assert (sample(during, "yiyun_exporter_refresh_failures_total") or 0) >= 1
    assert absent or not mishap.stays_absent
    assert PROVINCE in after
    assert mishap.reason in err[0] and str(db) in err[0]
    assert "works again" in err[0]
    assert "Traceback" not in err[0]


def test_an_exporter_started_on_a_missing_ledger_never_creates_it(tmp_path: Path) -> None:
    db = tmp_path / "not-yet.db"

    with exporter(f"sqlite:///{db}") as (served, err):
        served.wait_up(0.0, what="up 0 without a ledger")
        served.wait_more_failures(2, what="two more failed refreshes")
        created = db.exists()
        seed(f"sqlite:///{db}")
        after = served.wait_up(1.0, what="up 1 once the ledger exists")

    assert not created
    assert PROVINCE in after
    assert "is gone (moved or deleted)" in err[0]


# --- tables and databases that go away (SQLite and PostgreSQL) ------------------------------


def drop_everything(engine: sa.Engine) -> Callable[[], None]:
    """PostgreSQL: drop the ledger's schema; SQLite: every table. Returns what brings the
    empty schema back (the seeding then rebuilds the ledger in it)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

        def recreate() -> None:
            with engine.begin() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

        return recreate
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE alembic_version"))
    return lambda: None


def test_a_ledger_whose_schema_is_dropped_is_up_zero_until_rebuilt(
    db_url: str, engine: sa.Engine
) -> None:
    seed(db_url)

    with exporter(db_url) as (served, err):
        served.wait_up(1.0, what="the first good snapshot")
        recreate = drop_everything(engine)
        during = served.wait_up(0.0, what="up 0 once the schema is gone")
        recreate()
        seed(db_url)
        after = served.wait_up(1.0, what="up 1 once the ledger is rebuilt")

    assert PROVINCE in during and PROVINCE in after
    assert "SchemaOutOfDate" in err[0] and "yiyun db upgrade" in err[0]


def test_a_ledger_missing_one_table_is_up_zero_until_it_is_back(
    db_url: str, engine: sa.Engine
) -> None:
    seed(db_url)
    table = Resource.__table__  # type: ignore[attr-defined]

    with exporter(db_url) as (served, err):
        served.wait_up(1.0, what="the first good snapshot")
        table.drop(engine)
        during = served.wait_up(0.0, what="up 0 once the resource table is gone")
        table.create(engine)
        after = served.wait_up(1.0, what="up 1 once the table is back")

    assert PROVINCE in during
    assert sample(after, "yiyun_exporter_up") == 1.0
    assert "resource" in err[0] and "Traceback" not in err[0]


def test_a_dropped_postgresql_database_is_up_zero_until_recreated() -> None:
    problem = _pg_reachable()
    if problem:
        missing_peer(problem)
    name = "yiyun_gone_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)

    def create() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        seed(url)

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    create()
    try:
        with exporter(url) as (served, err):
            served.wait_up(1.0, what="the first good snapshot")
            drop()
            during = served.wait_up(0.0, what="up 0 once the database is dropped")
            create()
            after = served.wait_up(1.0, what="up 1 once the database is back")
    finally:
        drop()
        admin.dispose()

    assert PROVINCE in during and PROVINCE in after
    assert f'database "{name}" does not exist' in err[0]
