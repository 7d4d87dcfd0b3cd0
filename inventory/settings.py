"""Runtime settings read from the environment (YIYUN_ prefix) with the product's defaults."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator may tune; no secret ever lives here."""

    model_config = SettingsConfigDict(env_prefix="YIYUN_", extra="ignore")

    database_url: str = "sqlite:///yiyun.db"
    config: str | None = None
    timezone: str = "Asia/Shanghai"
    province: str = "江苏省"
    # KPI policy (evidence-v1 or evidence-v2) and its switches (DESIGN.md, The KPI).
    kpi_policy: str = "evidence-v2"
    exempt_in_denominator: bool = True
    trust_declared: bool = False
    freshness_hours: float = 24.0
    # evidence-v2: a live row is evidence only while its scope listed completely this recently.
    evidence_max_age_hours: float = Field(default=168.0, gt=0)
    # A complete listing that would tombstone at least this share of a scope's live rows,
    # and at least this many, is held until the next listing agrees or an operator confirms.
    sweep_guard_ratio: float = Field(default=0.5, ge=0, le=1)
    sweep_guard_min: int = Field(default=10, ge=1)
    system_tag: str = "yiyun.io/system"
    # Language of reports and human output (zh or en); unset follows the locale.
    lang: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def today(self, now: datetime | None = None) -> date:
        """The calendar date in the province's time zone, which exemptions and freezes use."""
        moment = now or datetime.now(tz=self.tz)
        return moment.astimezone(self.tz).date()


_override: Settings | None = None


@lru_cache(maxsize=1)
def _from_environment() -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The settings in force: the CLI's global options, else the environment."""
    return _override or _from_environment()


def set_settings(settings: Settings | None) -> None:
    """Install settings built from global CLI options (None goes back to the environment)."""
    global _override
    _override = settings
    _from_environment.cache_clear()
