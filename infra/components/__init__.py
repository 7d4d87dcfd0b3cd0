"""The unified cloud's Pulumi components (importing this needs the `infra` extra)."""

from infra.components.agent import InventoryAgent
from infra.components.landing_zone import WaveLandingZone
from infra.components.tenant import DepartmentTenant

__all__ = ["DepartmentTenant", "InventoryAgent", "WaveLandingZone"]
