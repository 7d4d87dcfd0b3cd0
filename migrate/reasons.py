"""A stored rule outcome worded in the reader's language from its rule id, outcome and facts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from migrate.wording import Joined, Label, Phrase

# 等保 levels as Chinese writes them (等保三级), and in English as the number.
_ZH_LEVELS = {1: "一级", 2: "二级", 3: "三级", 4: "四级", 5: "五级"}


class _Level(str):
    """An MLPS level: 三级 in Chinese, 3 in English."""

    def render(self, lang: str) -> str:
        if lang == "zh" and self.isdigit():
            return _ZH_LEVELS.get(int(self), f"{self}级")
        return str(self)


def _level(value: Any) -> _Level:
    if value is None:
        raise KeyError("level not recorded")
    return _Level(str(value))


def rule_phrase(rule: Mapping[str, Any], node: str | None) -> Phrase:
    """The catalog message of one stored rule result; KeyError when its facts do not say
    enough (a row written before the facts were kept)."""
    rule_id, outcome = str(rule["id"]), str(rule["outcome"])
    facts: Mapping[str, Any] = rule.get("facts") or {}
    passed = outcome in ("pass", "n/a")
    where = node or "—"
    if rule_id == "R1":
        if passed:
            return Phrase("mig_r1_pass")
        if facts["platform_mlps_level"] is None:
            return Phrase("mig_r1_unrecorded", node=where)
        return Phrase(
            "mig_r1_below",
            node=where,
            platform=_level(facts["platform_mlps_level"]),
            level=_level(facts["system_mlps_level"]),
        )
    if rule_id == "R2":
        if outcome == "n/a":
            return Phrase("mig_r2_na")
        return Phrase("mig_r2_pass" if passed else "mig_r2_blocked", node=where)
    if rule_id == "R3":
        if passed:
            return Phrase("mig_r3_pass")
        return Phrase("mig_r3_classified" if facts["classified"] else "mig_r3_level5")
    if rule_id == "R4":
        return Phrase("mig_r4_pass" if passed else "mig_r4_blocked")
    if rule_id == "R5":
        if outcome == "n/a":
            return Phrase("mig_r5_na")
        if passed:
            return Phrase("mig_r5_pass")
        if facts["platform_mlps_level"] is None:
            return Phrase("mig_r5_unrecorded", node=where)
        return Phrase("mig_r5_blocked", node=where, platform=_level(facts["platform_mlps_level"]))
    if rule_id == "R6":
        if outcome == "n/a":
            return Phrase("mig_r6_na")
        return Phrase("mig_r6_pass" if passed else "mig_r6_needs_work")
    if rule_id in ("X1", "X2"):
        return Phrase(f"mig_{rule_id.lower()}_{'pass' if passed else 'fired'}")
    if rule_id == "X3":
        if passed:
            return Phrase("mig_x3_pass")
        return Phrase("mig_x3_fired", until=str(facts["exemption_valid_until"]))
    if rule_id in {f"T{n}" for n in range(1, 10)}:
        return Phrase(f"mig_{rule_id.lower()}")
    raise KeyError(rule_id)


def rule_reason(rule: Mapping[str, Any], lang: str, node: str | None = None) -> str:
    """Why the rule decided what it did, in `lang`; the stored (English) reason of a row whose
    facts do not say enough."""
    try:
        return rule_phrase(rule, node).render(lang)
    except (KeyError, TypeError, ValueError):
        return str(rule.get("reason", ""))


def outcome_label(outcome: str, lang: str) -> str:
    """pass / n/a / a readiness / a strategy, named for the reader."""
    if lang == "en":
        return outcome
    if outcome in ("pass", "n/a"):
        return Phrase(f"mig_outcome_{'pass' if outcome == 'pass' else 'na'}").render(lang)
    for kind in ("readiness", "strategy"):
        named = Label(kind, outcome).render(lang)
        if named != outcome:
            return named
    return outcome


class FiredRule(str):
    """One fired rule as the planner quotes it ("R6 needs_work: ..."), worded for a reader."""

    rule: dict[str, Any]
    node: str | None

    def __new__(cls, rule: Mapping[str, Any], node: str | None) -> FiredRule:
        english = f"{rule['id']} {rule['outcome']}: {rule_reason(rule, 'en', node)}"
        fired = super().__new__(cls, english)
        fired.rule, fired.node = dict(rule), node
        return fired

    def render(self, lang: str) -> str:
        if lang == "en":
            return str(self)
        reason = rule_reason(self.rule, lang, self.node)
        return f"{self.rule['id']} {outcome_label(str(self.rule['outcome']), lang)}：{reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"fired": self.rule, "node": self.node}


def fired_rules(rules: Sequence[Mapping[str, Any]], node: str | None) -> Joined:
    """The rules that decided something, as the planner's explanations quote them."""
    return Joined(
        (FiredRule(r, node) for r in rules if r.get("outcome") not in ("pass", "n/a")), "clause"
    )


class Blocker(str):
    """A rule standing between a system and the cloud, as reports list it ("R6: ..."); as a
    str it is the English the JSON keeps, render(lang) words it for a reader."""

    rule: dict[str, Any]
    node: str | None

    def __new__(cls, rule: Mapping[str, Any], node: str | None) -> Blocker:
        blocker = super().__new__(cls, f"{rule['id']}: {rule.get('reason', '')}")
        blocker.rule, blocker.node = dict(rule), node
        return blocker

    def render(self, lang: str) -> str:
        if lang == "en":
            return str(self)
        return f"{self.rule['id']}：{rule_reason(self.rule, lang, self.node)}"
