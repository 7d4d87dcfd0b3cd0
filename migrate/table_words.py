"""Migrate table cells for people: codes named in the reader's language, stored wording worded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from inventory.i18n import label
from inventory.output import Format

# Column → the catalog kind its codes are named by (readiness.ready → 可迁移).
COLUMN_KINDS: Mapping[str, str] = {
    "readiness": "readiness",
    "assessed_readiness": "readiness",
    "override_readiness": "readiness",
    "strategy": "strategy",
    "assessed_strategy": "strategy",
    "override_strategy": "strategy",
    "state": "state",
    "from_state": "state",
    "to_state": "state",
    "status": "plan_status",
    "risk": "mig_risk",
    "type": "mig_dep_type",
    "strength": "mig_dep_strength",
    "origin": "mig_dep_origin",
    "environment": "mig_environment",
    "kind": "mig_constraint",
}
# Wave columns: None is "not placed".
WAVE_COLUMNS = frozenset({"wave", "from_wave", "to_wave"})


def for_people(rows: Iterable[dict[str, Any]], fmt: Format, lang: str) -> list[dict[str, Any]]:
    """Rows as a table or Markdown shows them in `lang`; JSON and CSV keep codes (a contract),
    and so does English, where the code is what a reader types."""
    rows = list(rows)
    if fmt in (Format.json, Format.csv) or lang == "en":
        return rows
    shown = []
    for row in rows:
        named = dict(row)
        for column, value in row.items():
            kind = COLUMN_KINDS.get(column)
            if kind is not None and isinstance(value, str):
                named[column] = label(kind, value, lang)
            elif column in WAVE_COLUMNS and value is None:
                named[column] = label("wave", "none", lang)
        shown.append(named)
    return shown
