"""Fixtures for the service: the migration estate plus a city, a plan, and tokens by role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from inventory.access import Actor
from inventory.grants import create_token
from inventory.models import Department, System
from inventory.settings import Settings
from service.app import create_app
from service.context import Service
from tests.migrate.conftest import invoke
from tests.migrate.estate import add_resource, seed_migration_estate

# The estate's departments: JS-EDU and JS-HEA (city 省级) from the migration estate, and
# NJ-D1 in 南京市 with two systems of its own, so city and department scopes differ.
DEPARTMENTS = {"JS-EDU": "省级", "JS-HEA": "省级", "NJ-D1": "南京市"}
ROLES = ("viewer", "department_it", "planner", "admin")
SCOPES = ("province", "city:省级", "city:南京市", "department:JS-EDU", "department:NJ-D1")


def seed_service_estate(session: Session, settings: Settings) -> None:
    seed_migration_estate(session, settings.today())
    session.add(Department(code="NJ-D1", name="南京市大数据局", city="南京市"))
    for code in ("N01", "N02"):
        session.add(
            System(
                code=code, name=f"系统{code}", department_code="NJ-D1", city="南京市", mlps_level=2
            )
        )
    session.commit()
    add_resource(session, "N01", "edu-dc", "vm")
    add_resource(session, "N02", "room", "vm")
    session.commit()


@dataclass
class Served:
    """The app in-process (FastAPI's TestClient: real ASGI, no socket) over a seeded ledger."""

    client: TestClient
    engine: sa.Engine
    settings: Settings

    def token(self, role: str, scope: str, principal: str | None = None) -> str:
        with Session(self.engine) as session:
            issued = create_token(
                session=session,
                actor=Actor.local("tests"),
                principal=principal or f"{role}@{scope}",
                role=role,
                scope=scope,
                lifetime=timedelta(days=1),
                now=datetime.now(tz=UTC),
            )
            session.commit()
            return issued.token

    def headers(self, role: str, scope: str, *, lang: str = "zh") -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token(role, scope)}",
            "Accept-Language": lang,
        }


@pytest.fixture
def served(settings: Settings, engine: sa.Engine) -> Iterator[Served]:
    """Estate, plan p1 (edu-dc and room onto core, two systems per wave), and the app."""
    with Session(engine) as session:
        seed_service_estate(session, settings)
    code, out, err = invoke(
        "migrate", "plan", "create", "--source", "edu-dc", "--source", "room",
        "--target", "core", "--name", "p1", "--max-systems-per-wave", "2",
        "--start", "2027-01-04", "--by", "planner",
    )  # fmt: skip
    assert code == 0, out + err
    app = create_app(Service(engine=engine, settings=settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Served(client=client, engine=engine, settings=settings)
