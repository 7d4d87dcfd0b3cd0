"""Fixtures for the migration tests: the seeded estate and a plan made from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from inventory.settings import Settings
from tests.migrate.estate import seed_migration_estate

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    """Run `yiyun …` and return (exit code, stdout, stderr)."""
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def estate(settings: Settings, engine: sa.Engine) -> Settings:
    with Session(engine) as session:
        seed_migration_estate(session, settings.today())
    return settings


@pytest.fixture
def planned(estate: Settings) -> Iterator[Settings]:
    """The estate with plan p1: edu-dc and room onto core, two systems per wave."""
    code, out, err = invoke(
        "migrate", "plan", "create", "--source", "edu-dc", "--source", "room",
        "--target", "core", "--name", "p1", "--max-systems-per-wave", "2",
        "--start", "2027-01-04", "--by", "planner",
    )  # fmt: skip
    assert code == 0, out + err
    yield estate
