"""Placement findings in words: the rules a system on the unified cloud breaks, with the facts."""

from __future__ import annotations

from inventory.i18n import text
from inventory.violations import PlacementViolation, RuleBreach

# 等保 levels as Chinese writes them: 等保四级, 三级平台.
_ZH_LEVELS = {1: "一级", 2: "二级", 3: "三级", 4: "四级", 5: "五级"}


def _level(value: object, lang: str) -> str:
    if value is None:
        return text("pl_unrecorded", lang)
    if lang == "zh" and isinstance(value, int):
        return _ZH_LEVELS.get(value, f"{value}级")
    return str(value)


def breach_text(breach: RuleBreach, node: str, lang: str) -> str:
    """One broken rule with its facts, e.g. "等保四级系统部署在三级平台 js-core（R1）"."""
    facts = breach.facts
    level = _level(facts.get("system_mlps_level"), lang)
    platform = _level(facts.get("platform_mlps_level"), lang)
    if breach.rule == "R1":
        if facts.get("platform_mlps_level") is None:
            return text("pl_r1_unrecorded", lang, node=node, level=level)
        return text("pl_r1", lang, node=node, level=level, platform=platform)
    if breach.rule == "R2":
        return text("pl_r2", lang, node=node)
    if breach.rule == "R3":
        key = "pl_r3_classified" if facts.get("classified") else "pl_r3_level5"
        return text(key, lang, node=node)
    if breach.rule == "R4":
        return text("pl_r4", lang, node=node)
    if breach.rule == "R5":
        return text("pl_r5", lang, node=node, platform=platform)
    if breach.rule == "R6":
        return text("pl_r6", lang, level=level)
    # A rule added to migrate/rules.py before it has wording here: its own reason.
    return f"{breach.rule}: {breach.reason}"


def finding_text(violation: PlacementViolation, lang: str) -> str:
    """Every rule the system breaks on its node in one line; a classified system's by rule
    id only (its facts would describe it)."""
    if violation.redacted:
        return text("pl_redacted", lang, rules=", ".join(violation.rules))
    separator = "；" if lang == "zh" else "; "
    return separator.join(breach_text(b, violation.node_id, lang) for b in violation.breaches)


def finding_reasons(violation: PlacementViolation) -> str:
    """The rules' own English reasons, for JSON and CSV (which stay English)."""
    if violation.redacted:
        return ", ".join(violation.rules)
    return "; ".join(f"{b.rule}: {b.reason}" for b in violation.breaches)
