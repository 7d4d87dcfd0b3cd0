"""The portal for real-browser journeys: `yiyun serve` over a seeded ledger, the real provider.

A journey module imports the fixtures (`live`, `cloud_node` and the provider's) and logs
people in with `login_as`, which clicks through /login and the provider's form as a person
would. `live` is module-scoped (one service per engine per module, seeding and startup take
seconds) and indirectly parametrised by engine name; unparametrised it is SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from playwright.sync_api import BrowserContext, Page
from sqlmodel import Session

from inventory.db import make_engine, upgrade
from inventory.settings import Settings
from inventory.sim.aws import SIM_REGION, reset_moto, seed_instances, start_moto_server
from tests.conftest import PG_ADMIN_URL, _pg_reachable, missing_peer
from tests.service.conftest import seed_service_estate
from tests.service.oidc_peer import (
    ACCOUNTS,
    PORTAL_CLIENT_ID,
    PORTAL_CLIENT_SECRET,
    Account,
    OidcProvider,
    oidc_keys,
)
from tests.service.uvicorn_peer import (
    YIYUN,
    LiveService,
    estate_provider,
    oidc_environment,
    start_service,
)

__all__ = [
    "ACCOUNTS",
    "CloudNode",
    "LivePortal",
    "cloud_node_fixture",
    "estate_provider",
    "live_fixture",
    "login_as",
    "oidc_keys",
]

ENGINES = ("sqlite", "postgresql")
CLI_TIMEOUT_SECONDS = 120
# Playwright's waits: the provider and the service answer on loopback in milliseconds.
LOGIN_TIMEOUT_MS = 15_000
# The estate's plan, as tests/service/conftest.py makes it: edu-dc and room onto core.
PLAN = (
    "migrate", "plan", "create", "--source", "edu-dc", "--source", "room",
    "--target", "core", "--name", "p1", "--max-systems-per-wave", "2",
    "--start", "2027-01-04", "--by", "planner",
)  # fmt: skip
# Dummy credentials through the standard chain only: nothing of the developer's AWS setup.
AWS_ENV_LEAKS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


@dataclass
class LivePortal:
    """A running `yiyun serve` with the portal, over its own ledger, trusting the provider."""

    engine_name: str
    db_url: str
    engine: sa.Engine
    service: LiveService
    provider: OidcProvider
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.service.url

    def url(self, path: str) -> str:
        return f"{self.service.url}{path}"

    def cli(
        self, *args: str, env: dict[str, str | None] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`yiyun --db URL …` as a separate process, as a person at the console runs it; in
        `env`, None takes a variable away."""
        environment = {**os.environ, "YIYUN_LANG": "en", **(env or {})}
        return subprocess.run(
            [str(YIYUN), "--db", self.db_url, *args],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            env={name: value for name, value in environment.items() if value is not None},
            check=False,
        )

    def ok(self, *args: str, env: dict[str, str | None] | None = None) -> str:
        done = self.cli(*args, env=env)
        assert done.returncode == 0, (
            f"yiyun {' '.join(args)} → {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout

    def adoption(self, by: str | None = None) -> dict[str, Any]:
        """`yiyun report adoption --format json [--by …]` on the same ledger."""
        extra = ("--by", by) if by else ()
        report: dict[str, Any] = json.loads(
            self.ok("report", "adoption", "--format", "json", *extra)
        )
        return report

    def adoptions(self, *bys: str | None) -> list[dict[str, Any]]:
        """Several `report adoption`s at once (each is a process that takes a second to start)."""
        with ThreadPoolExecutor(max_workers=len(bys)) as pool:
            return list(pool.map(self.adoption, bys))

    def login_as(self, target: Page | BrowserContext, account: str | Account) -> Page:
        return login_as(target, account, base=self.base)


def login_as(target: Page | BrowserContext, account: str | Account, *, base: str) -> Page:
    """Log in through /login → the provider's form → back; the page, on the page after login.

    Give each person a context of their own: the provider's SSO cookie would log the next one
    in as the first without showing the form."""
    person = ACCOUNTS[account] if isinstance(account, str) else account
    page = target if isinstance(target, Page) else target.new_page()
    page.goto(f"{base}/login")
    page.locator("a[href^='/login/start']").click()
    page.wait_for_url(lambda url: not url.startswith(base), timeout=LOGIN_TIMEOUT_MS)
    page.locator("#username").fill(person.sub)
    page.locator("#password").fill(person.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(
        lambda url: url.startswith(base) and "/auth/callback" not in url and "/login" not in url,
        timeout=LOGIN_TIMEOUT_MS,
    )
    return page


@dataclass
class Ledger:
    url: str
    engine: sa.Engine
    drop: list[str] = field(default_factory=list)  # a PostgreSQL schema to drop afterwards


def _new_ledger(engine_name: str, folder: Path) -> Ledger:
    if engine_name == "sqlite":
        url = f"sqlite:///{folder / 'yiyun.db'}"
        return Ledger(url=url, engine=make_engine(url))
    problem = _pg_reachable()
    if problem:
        missing_peer(problem)
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    return Ledger(url=url, engine=make_engine(url), drop=[schema])


def _drop(ledger: Ledger) -> None:
    ledger.engine.dispose()
    if not ledger.drop:
        return
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as connection:
        for schema in ledger.drop:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def portal_environment(provider: OidcProvider) -> dict[str, str]:
    """The service trusts the provider for API tokens and logs people in as `yiyun-portal`.

    No YIYUN_PORTAL_URL: the port is picked at start, and the redirect URI then comes from
    the request's own address, which is 127.0.0.1 as the provider's client requires."""
    return {
        **oidc_environment(provider),
        "YIYUN_OIDC_PORTAL_CLIENT_ID": PORTAL_CLIENT_ID,
        "YIYUN_OIDC_PORTAL_CLIENT_SECRET": PORTAL_CLIENT_SECRET,
    }


@pytest.fixture(scope="module", name="live")
def live_fixture(
    request: pytest.FixtureRequest,
    estate_provider: OidcProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LivePortal]:
    """The service estate (tests/service/conftest.py: JS-EDU, JS-HEA, NJ-D1, plan p1) on a
    fresh ledger of the engine named by the parameter, served by a real `yiyun serve`."""
    engine_name = getattr(request, "param", "sqlite")
    assert engine_name in ENGINES, engine_name
    workdir = tmp_path_factory.mktemp(f"live-{engine_name}")
    ledger = _new_ledger(engine_name, workdir)
    try:
        upgrade(ledger.engine)
        settings = Settings(database_url=ledger.url)
        with Session(ledger.engine) as session:
            seed_service_estate(session, settings)
        environment = portal_environment(estate_provider)
        portal = LivePortal(
            engine_name=engine_name,
            db_url=ledger.url,
            engine=ledger.engine,
            service=None,  # type: ignore[arg-type]  # set once it runs, below
            provider=estate_provider,
            workdir=workdir,
            env=environment,
        )
        portal.ok(*PLAN)
        portal.service = start_service(ledger.url, workdir / "serve", environment=environment)
        try:
            yield portal
        finally:
            code = portal.service.stop()
            assert code == 0, portal.service.stderr()
    finally:
        _drop(ledger)


@dataclass
class CloudNode:
    """A unified-cloud node whose resources live in a real AWS-compatible endpoint (moto's
    server over HTTP): put a tagged VM there, then `yiyun scan` finds it."""

    node_id: str
    endpoint: str
    folder: Path

    def aws_env(self) -> dict[str, str | None]:
        env: dict[str, str | None] = {name: None for name in AWS_ENV_LEAKS}
        return {
            **env,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(self.folder / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.folder / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def node_file(self) -> Path:
        entry = {
            "id": self.node_id,
            "name": "省政务云（新区）",
            "level": "province_core",
            "one_cloud": True,
            "city": "省级",
            "mlps_level": 3,
            "sources": [
                {
                    "kind": "aws",
                    "endpoint_url": self.endpoint,
                    "regions": [SIM_REGION],
                    "services": ["ec2"],
                    "max_attempts": 2,
                }
            ],
        }
        path = self.folder / "nodes.yaml"
        path.write_text(
            yaml.safe_dump({"nodes": [entry]}, allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )
        return path

    def move_onto(self, portal: LivePortal, system: str) -> str:
        """The system's VM now runs on this node; the real scan of it records that."""
        seed_instances(self.endpoint, SIM_REGION, count=1, tags={"yiyun.io/system": system})
        portal.ok("nodes", "apply", str(self.node_file()))
        return portal.ok("scan", "--node", self.node_id, env=self.aws_env())


@pytest.fixture(scope="module", name="cloud_node")
def cloud_node_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudNode]:
    server, endpoint = start_moto_server()
    try:
        reset_moto(endpoint)
        yield CloudNode(
            node_id="js-cloud", endpoint=endpoint, folder=tmp_path_factory.mktemp("cloud")
        )
    finally:
        server.stop()
