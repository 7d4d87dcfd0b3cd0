"""Fixtures of the report tests: the seeded report estate on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from inventory.settings import Settings
from tests.reporting.estate import seed_report_estate


@pytest.fixture
def report_estate(settings: Settings, engine: sa.Engine) -> Settings:
    """Settings whose database holds the report estate (KPI estate, scans, snapshots, waves)."""
    with Session(engine) as session:
        seed_report_estate(session, settings.today())
    return settings
