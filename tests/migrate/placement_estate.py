"""Systems already on the unified cloud, each placed so that one or more of R1–R6 breaks."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from inventory.models import System
from tests.migrate.estate import add_resource, seed_migration_estate

# code → (System fields, nodes it runs on). Nodes (tests/migrate/estate.py): core is MLPS 3
# without a level-4 pool, core4 is MLPS 4 with one, nj is MLPS 2, edu-dc is off the cloud.
PLACED: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    # The JS-EDU-003: level 4 with no 密评, on a level-3 platform.
    "P1": ({"mlps_level": 4}, ("core",)),
    "P2": ({"mlps_level": 4, "crypto_assessed_on": date(2026, 3, 1)}, ("core4",)),
    "P3": ({"data_level": "important"}, ("nj",)),
    "P4": ({"classified": True, "name": "机要通信系统"}, ("core",)),
    # Still moving (partly off the cloud): assessment's business, not a finding.
    "P5": ({"mlps_level": 3}, ("core", "edu-dc")),
    "P6": ({"mlps_level": 4, "crypto_assessed_on": date(2026, 3, 1)}, ("core", "core4")),
    "P7": ({"data_level": "core", "lifecycle": "retired"}, ("core",)),
}

# (node, system) → rules broken there; the classified P4 is counted, never named.
EXPECTED = {
    ("core", "P1"): ("R1", "R2", "R6"),
    ("core", "P4"): ("R3",),
    ("core", "P6"): ("R1", "R2"),
    ("nj", "P3"): ("R5",),
}


def seed_placement_estate(session: Session, today: date) -> None:
    """The migration estate plus the systems above, each with a VM on its nodes."""
    seed_migration_estate(session, today)
    for code, (extra, nodes) in PLACED.items():
        fields = dict(extra)
        session.add(
            System(
                code=code,
                name=fields.pop("name", f"系统{code}"),
                department_code="JS-EDU",
                city="省级",
                mlps_level=fields.pop("mlps_level", 2),
                **fields,
            )
        )
        for node in nodes:
            add_resource(session, code, node, "vm", vcpu=2, memory_gib=4)
    session.commit()
