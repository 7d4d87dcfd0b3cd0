"""Fixtures for the portal: the service estate, and browsers-in-process logged in by role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from inventory.sessions import derived, start_session
from inventory.settings import Settings
from service.app import create_app
from service.context import Service
from service.portal.web import CSRF_FIELD, SESSION_COOKIE
from tests.portal.browser import (  # noqa: F401
    browser_context_args,
    browser_type_launch_args,
    page_problems,
)
from tests.service.conftest import DEPARTMENTS, ROLES, SCOPES, Served, served  # noqa: F401

__all__ = ["DEPARTMENTS", "ROLES", "SCOPES"]
_CSRF_INPUT = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')


@dataclass
class PortalUser:
    """A TestClient holding one person's session cookie, and that session's CSRF token."""

    client: TestClient
    csrf: str

    def get(self, path: str, **kwargs: object) -> object:
        return self.client.get(path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, data: dict[str, object] | None = None, **kwargs: object) -> object:
        """A form post carrying the CSRF token, as the page's form would."""
        return self.client.post(path, data={CSRF_FIELD: self.csrf, **(data or {})}, **kwargs)  # type: ignore[arg-type]


@dataclass
class Portal:
    """The app over the service estate (tests/service/conftest.py), with logins by role."""

    served: Served
    engine: sa.Engine
    settings: Settings

    def login(
        self, role: str, scope: str, *, principal: str | None = None, lang: str = "zh"
    ) -> PortalUser:
        with Session(self.engine) as session:
            sid = start_session(
                session=session,
                principal=principal or f"{role}@{scope}",
                kind="demo",
                name=None,
                claim_grants=[f"{role}:{scope}"],
                now=datetime.now(tz=UTC),
            )
            session.commit()
        app = self.served.client.app
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        client.cookies.set(SESSION_COOKIE, sid)
        client.cookies.set("yiyun_lang", lang)
        return PortalUser(client=client, csrf=derived(sid, "csrf"))

    def anonymous(self) -> TestClient:
        return TestClient(
            self.served.client.app, raise_server_exceptions=False, follow_redirects=False
        )


def csrf_in(page: str) -> str | None:
    """The CSRF token a rendered form carries."""
    found = _CSRF_INPUT.search(page)
    return found.group(1) if found else None


@pytest.fixture
def portal(served: Served, engine: sa.Engine, settings: Settings) -> Iterator[Portal]:  # noqa: F811
    yield Portal(served=served, engine=engine, settings=settings)


@pytest.fixture
def fresh_app(engine: sa.Engine, settings: Settings) -> Iterator[TestClient]:
    """The app over an empty ledger (no estate), for the login pages."""
    app = create_app(Service(engine=engine, settings=settings, demo_login=True))
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client
