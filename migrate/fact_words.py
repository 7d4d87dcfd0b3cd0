"""The facts a rule was decided on, as one line a person reads ("系统等保级别：2；…")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inventory.i18n import has_text, label, text

# Fact → the catalog kind its stored values are named by (lifecycle.active → 在用).
_VALUE_KINDS = {
    "readiness": "readiness",
    "lifecycle": "lifecycle",
    "evidence_status": "status",
    "declared_node_level": "node_level",
    "data_level": "mig_data_level",
}
_SEPARATORS = {"zh": "；", "en": "; "}


def _value(name: str, value: Any, lang: str) -> str:
    if value is None:
        return text("mig_fact_none", lang)
    if isinstance(value, bool):
        return text("mig_fact_yes" if value else "mig_fact_no", lang)
    if isinstance(value, list | tuple):
        return ("、" if lang == "zh" else ", ").join(str(v) for v in value) or "-"
    kind = _VALUE_KINDS.get(name)
    if kind is not None and lang != "en":
        return label(kind, str(value), lang)
    return str(value)


def facts_line(facts: Mapping[str, Any] | None, lang: str) -> str:
    """Each fact by its name in `lang` with its value; English keeps the stored names, which
    are what the JSON output calls them."""
    parts = []
    for name, value in (facts or {}).items():
        named = text(f"mig_fact.{name}", lang) if has_text(f"mig_fact.{name}", lang) else name
        parts.append(text("mig_fact_pair", lang, name=named, value=_value(name, value, lang)))
    return _SEPARATORS.get(lang, "; ").join(parts) or "-"
