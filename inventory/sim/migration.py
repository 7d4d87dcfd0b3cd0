"""The demo's sample migration: which plan, how far its systems go, and what happened.

migrate/sample.py runs it (inventory/ never imports migrate/); `yiyun demo` (commands/demo.py,
above both) calls it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# The issue's own example: the education department cloud and the data centre's server room,
# both AWS-compatible in the sample estate, onto the provincial core node.
SOURCES = ("edu-dc", "gov-room")
TARGET = "js-core"
PLAN = "demo-js-core"
WAVE_SIZE = 3
BY = "yiyun demo"
# How far the first systems of the plan get: the rest stay planned.
ROUTE = (
    ("provisioning", "migrating", "testing", "cutover", "trial_run", "accepted", "decommissioned"),
    ("provisioning", "migrating", "testing", "cutover", "trial_run", "accepted"),
    ("provisioning", "migrating"),
    ("provisioning",),
)
# Before the cut-over the new copy is built; at it the old home is emptied and scanned again.
BUILD_BEFORE = "testing"
CUTOVER = "cutover"


@dataclass
class SampleMigration:
    """What the demo did: the plan, where each system ended and any gate that said no."""

    plan: str
    placed: int = 0
    waves: int = 0
    states: Counter[str] = field(default_factory=Counter)
    refusals: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None  # why there is no plan at all
    note: str | None = None  # logged with every step: the history says it is sample data
    lang: str = "zh"  # of the refusals kept above

    @property
    def accepted(self) -> int:
        return self.states["accepted"] + self.states["decommissioned"]
