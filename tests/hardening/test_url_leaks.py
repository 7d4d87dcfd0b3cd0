"""URLs that carry a credential, through the real commands: a database URL with a password in
its query or an unencoded "@" in its password is shown masked by `db upgrade`, `demo`, the
exporter and every "cannot open" error, each still naming the host and database; a node file
whose endpoint URL carries a credential is refused, naming node, source and part, and the
ledger is left as it was."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import Session, select

from inventory.db import make_engine, upgrade
from inventory.models import Node, ScopeResult
from inventory.settings import Settings
from tests.hardening.conftest import YIYUN, Cli, isolated_env

CANARY = f"yiyunCanaryUrl{uuid.uuid4().hex[:12]}"
# SQLite ignores a password in the query, and SQLAlchemy says so (naming the parameter only).
pytestmark = pytest.mark.filterwarnings("ignore:Query string argument")


def with_query(url: str, parameter: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{parameter}"


@dataclass(frozen=True)
class Database:
    """A URL to give yiyun, and what of it a message must still show: host and database."""

    url: str
    where: str


def where_of(db_url: str) -> str:
    """The part of a test database's URL that names it: the file, or host:port/database."""
    if db_url.startswith("sqlite"):
        return db_url.removeprefix("sqlite:///")
    return db_url.split("@", 1)[1].split("?", 1)[0]


@pytest.fixture
def secret_db(db_url: str) -> Database:
    """The test database with the canary as its password in the query: PostgreSQL takes
    `password` as a libpq parameter (and trusts loopback), SQLite ignores it. It connects."""
    return Database(with_query(db_url, f"password={CANARY}"), where_of(db_url))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def broken_dbs(db_url: str, tmp_path: Path) -> list[tuple[Database, str]]:
    """Database URLs with the canary in their password that cannot be opened, each with the
    complaint it gets."""
    if db_url.startswith("sqlite"):
        missing = tmp_path / "missing" / "yiyun.db"
        return [
            (
                Database(f"sqlite:///{missing}?password={CANARY}", str(missing)),
                # A mistyped path is never created (only `db upgrade` creates a ledger).
                "no database file at",
            ),
            (
                Database(f"sqlite://nobody:p@{CANARY}@/{tmp_path}/y.db", f"{tmp_path}/y.db"),
                "not a database URL",
            ),
        ]
    port = closed_port()
    return [
        (
            # The "@" unencoded; no such role, so the connection fails after parsing right.
            Database(
                f"postgresql://yiyun_nobody:p@{CANARY}@127.0.0.1:5432/test",
                "127.0.0.1:5432/test",
            ),
            "cannot open database",
        ),
        (
            Database(
                f"postgresql://postgres@127.0.0.1:{port}/test?password={CANARY}",
                f"127.0.0.1:{port}/test",
            ),
            "cannot open database",
        ),
    ]


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """`yiyun demo` points the AWS credential chain at its own files: kept out of other tests."""
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "demo"


def test_db_upgrade_names_the_database_but_not_its_password(secret_db: Database, cli: Cli) -> None:
    code, out, err = cli("--db", secret_db.url, "db", "upgrade")

    assert code == 0, out + err
    assert secret_db.where in out and "password=***" in out
    assert CANARY not in out + err


@pytest.mark.parametrize(
    "command",
    [("db", "upgrade"), ("nodes", "list"), ("report", "adoption"), ("demo", "--systems", "20")],
    ids=["db-upgrade", "nodes-list", "report", "demo"],
)
def test_a_database_that_cannot_be_opened_is_named_without_its_password(
    broken_dbs: list[tuple[Database, str]],
    cli: Cli,
    demo_env: Path,
    command: tuple[str, ...],
) -> None:
    extra = ("--dir", str(demo_env)) if command[0] == "demo" else ()
    creates = command[0] == "demo" or command == ("db", "upgrade")
    for database, complaint in broken_dbs:
        code, out, err = cli("--db", database.url, *command, *extra)
        if complaint == "no database file at" and creates:
            # The commands that create a ledger try to, in a folder that is not there.
            complaint = "cannot open database"

        assert code == 2, out + err
        assert complaint in err and database.where in err
        assert CANARY not in out + err


def test_demo_names_the_database_but_not_its_password(
    secret_db: Database, cli: Cli, demo_env: Path
) -> None:
    code, out, err = cli("--db", secret_db.url, "demo", "--dir", str(demo_env), "--systems", "20")
    again = cli("--db", secret_db.url, "demo", "--dir", str(demo_env), "--systems", "20")

    assert code == 0, out + err
    flat = "".join(out.split())  # rich folds the suggested commands
    assert "".join(secret_db.where.split()) in flat and "password=***" in flat
    assert again[0] == 2 and "already holds" in again[2] and secret_db.where in again[2]
    assert CANARY not in out + err + again[1] + again[2]


def exporter_output(url: str, tmp_path: Path, until: str) -> tuple[str, str]:
    """Start `yiyun exporter serve` on `url`; (what it printed up to a line holding `until`,
    everything it printed by the time it stopped)."""
    process = subprocess.Popen(
        [*YIYUN, "--db", url, "exporter", "serve", "--port", "0", "--refresh", "1"],
        env=isolated_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    try:
        assert process.stdout is not None
        while not seen or until not in seen[-1]:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[0]
    return "".join(seen), "".join(seen) + rest


def test_the_exporter_banner_names_the_database_but_not_its_password(
    secret_db: Database, db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()

    banner, output = exporter_output(secret_db.url, tmp_path, until="/metrics")

    assert "/metrics" in banner, output
    flat = "".join(banner.split())  # the banner may wrap the URL over lines
    assert "".join(secret_db.where.split()) in flat and "password=***" in flat
    assert CANARY not in output


def test_the_exporter_failing_to_reach_the_database_never_shows_its_password(
    broken_dbs: list[tuple[Database, str]], tmp_path: Path
) -> None:
    openable = [db for db, complaint in broken_dbs if complaint == "cannot open database"]
    for database in openable:
        logged, output = exporter_output(database.url, tmp_path, until="failed")

        assert "snapshot refresh from" in logged and "failed" in logged, output
        assert "".join(database.where.split()) in "".join(logged.split())
        assert CANARY not in output


# --- endpoint URLs in the node file ---------------------------------------------------------

NODE = {
    "id": "edu-dc",
    "name": "省教育厅部门云",
    "level": "department_cloud",
    "one_cloud": False,
    "sources": [
        {
            "kind": "aws",
            "id": "edu-s3",
            "endpoint_url": "https://s3.edu.example",
            "regions": ["edu-1"],
        }
    ],
}
CREDENTIAL_URLS = [
    pytest.param(
        f"https://s3.edu.example/?X-Amz-Security-Token={CANARY}",
        ("query parameter 'X-Amz-Security-Token'", "查询参数 'X-Amz-Security-Token'"),
        id="security-token",
    ),
    pytest.param(
        f"https://s3.edu.example/?region=edu-1&token={CANARY}",
        ("query parameter 'token'", "查询参数 'token'"),
        id="token",
    ),
    pytest.param(
        f"https://edu:{CANARY}@s3.edu.example/",
        ("user:password@", "用户名:密码@"),
        id="user-password",
    ),
]


def node_file(tmp_path: Path, endpoint_url: str) -> Path:
    node = {**NODE, "sources": [{**NODE["sources"][0], "endpoint_url": endpoint_url}]}
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump({"nodes": [node]}, allow_unicode=True), encoding="utf-8")
    return path


def nodes_table(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return sorted(
            tuple(map(repr, row)) for row in connection.execute(sa.select(Node.__table__))
        )


@pytest.fixture
def ledger(engine: sa.Engine, settings: Settings, db_url: str, cli: Cli, tmp_path: Path) -> str:
    """A ledger that already holds the node, at its clean endpoint."""
    code, out, err = cli(
        "--db", db_url, "nodes", "apply", str(node_file(tmp_path, "https://s3.edu.example"))
    )
    assert code == 0, out + err
    return db_url


@pytest.mark.parametrize(("endpoint_url", "parts"), CREDENTIAL_URLS)
def test_nodes_apply_refuses_an_endpoint_url_with_credentials(
    ledger: str,
    engine: sa.Engine,
    cli: Cli,
    tmp_path: Path,
    endpoint_url: str,
    parts: tuple[str, str],
) -> None:
    before = nodes_table(engine)
    path = node_file(tmp_path, endpoint_url)

    english = cli("--db", ledger, "--lang", "en", "nodes", "apply", str(path))
    chinese = cli("--db", ledger, "--lang", "zh", "nodes", "apply", str(path))

    where = (
        "node #1 (edu-dc): sources[0].endpoint_url",
        "第 1 个节点 (edu-dc): sources[0].endpoint_url",
    )
    for (code, out, err), lang in ((english, 0), (chinese, 1)):
        assert code == 1, out + err  # a refused file, as every refused node file (README)
        assert CANARY not in out + err
        assert where[lang] in err
        assert parts[lang] in err
    assert "the value of source 'edu-s3' is a URL carrying credentials" in english[2]
    assert "源 'edu-s3' 的取值是带凭据的 URL" in chinese[2]
    assert "standard AWS chain" in english[2] and "标准 AWS 凭据链" in chinese[2]
    assert nodes_table(engine) == before


@pytest.mark.parametrize(("endpoint_url", "parts"), CREDENTIAL_URLS)
def test_scan_config_refuses_an_endpoint_url_with_credentials(
    ledger: str,
    engine: sa.Engine,
    cli: Cli,
    tmp_path: Path,
    endpoint_url: str,
    parts: tuple[str, str],
) -> None:
    before = nodes_table(engine)

    code, out, err = cli("--db", ledger, "--config", str(node_file(tmp_path, endpoint_url)), "scan")

    assert code == 2, out + err
    assert CANARY not in out + err
    assert "edu-dc" in err and "edu-s3" in err and parts[0] in err
    assert nodes_table(engine) == before


def test_a_node_stored_with_a_credential_url_is_never_scanned_with_it(
    engine: sa.Engine, settings: Settings, db_url: str, cli: Cli
) -> None:
    """A row written before `nodes apply` refused such URLs: the scan fails that source with a
    reason, sends nothing to the endpoint, and echoes the credential nowhere."""
    with Session(engine) as session:
        session.add(
            Node(
                id="edu-dc",
                name="省教育厅部门云",
                level="department_cloud",
                one_cloud=False,
                sources=[
                    {
                        "kind": "aws",
                        "name": "edu-s3",
                        "endpoint_url": f"http://127.0.0.1:{closed_port()}/?token={CANARY}",
                        "regions": ["edu-1"],
                    }
                ],
            )
        )
        session.commit()

    code, out, err = cli("--db", db_url, "-vv", "scan")

    assert code == 1, out + err
    assert CANARY not in out + err
    with Session(engine) as session:
        results = session.exec(select(ScopeResult)).all()
    assert [(r.source, r.status) for r in results] == [("edu-s3", "error")]
    assert "endpoint_url carries credentials" in str(results[0].error_message)
    assert CANARY not in str(results[0].error_message)


def test_db_upgrade_masks_a_credential_url_stored_before_and_the_scan_still_refuses_it(
    db_url: str, cli: Cli
) -> None:
    """A ledger at 0005 whose node kept `?token=…` in an endpoint URL: `db upgrade` (0006)
    leaves a dump of the node table without the token, and the source is still refused."""
    from tests.hardening.test_stored_secrets import dump

    engine = make_engine(db_url)
    upgrade(engine, "0005")
    url = f"http://127.0.0.1:{closed_port()}/?token={CANARY}"
    with Session(engine) as session:
        session.add(
            Node(
                id="edu-dc",
                name="省教育厅部门云",
                level="department_cloud",
                one_cloud=False,
                sources=[{"kind": "aws", "name": "edu-s3", "endpoint_url": url}],
            )
        )
        session.commit()
    assert CANARY in dump(db_url)

    code, out, err = cli("--db", db_url, "db", "upgrade")

    assert code == 0, out + err
    assert CANARY not in dump(db_url)
    with Session(engine) as session:
        stored = session.exec(select(Node)).one().sources
    assert stored is not None and stored[0]["endpoint_url"].endswith("/?token=***")
    code, out, err = cli("--db", db_url, "scan")
    assert code == 1, out + err
    with Session(engine) as session:
        results = session.exec(select(ScopeResult)).all()
    assert [(r.source, r.status) for r in results] == [("edu-s3", "error")]
    assert "endpoint_url carries credentials" in str(results[0].error_message)
    engine.dispose()
