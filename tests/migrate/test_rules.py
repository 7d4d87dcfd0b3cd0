"""Placement rules R1–R6, scope rules X1–X3 and strategy rules T1–T9 as pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from migrate.rules import (
    BLOCKED,
    EXEMPT,
    NEEDS_WORK,
    OUT_OF_SCOPE,
    READY,
    SystemProfile,
    TargetProfile,
    assess,
    assess_best,
    override_refusal,
)

TODAY = date(2026, 11, 26)
PLAIN = SystemProfile(code="S", mlps_level=2, kinds_to_move=frozenset({"vm"}))
LEVEL3 = TargetProfile(id="core", mlps_level=3)
LEVEL4_POOL = TargetProfile(id="core4", mlps_level=4, dedicated_level4_pool=True)
LEVEL2 = TargetProfile(id="nj", mlps_level=2)
UNRECORDED = TargetProfile(id="new", mlps_level=None)


def fired(system: SystemProfile, target: TargetProfile) -> dict[str, str]:
    verdict = assess(system, target, today=TODAY)
    return {r.id: r.outcome for r in verdict.fired if not r.id.startswith("T")}


# system changes, target, expected readiness, expected fired placement/scope rules
CASES = [
    ("plain", {}, LEVEL3, READY, {}),
    ("R1 platform below system", {"mlps_level": 3, "crypto_assessed_on": TODAY}, LEVEL2, BLOCKED,
     {"R1": BLOCKED}),
    ("R1 platform level unrecorded", {}, UNRECORDED, BLOCKED, {"R1": BLOCKED}),
    ("R1 equal levels pass", {"mlps_level": 3, "crypto_assessed_on": TODAY}, LEVEL3, READY, {}),
    ("R2 level 4 without pool", {"mlps_level": 4, "crypto_assessed_on": TODAY},
     TargetProfile(id="x", mlps_level=4), BLOCKED, {"R2": BLOCKED}),
    ("R2 level 4 with pool", {"mlps_level": 4, "crypto_assessed_on": TODAY}, LEVEL4_POOL, READY,
     {}),
    ("R3 level 5", {"mlps_level": 5, "crypto_assessed_on": TODAY}, LEVEL4_POOL, BLOCKED,
     {"R1": BLOCKED, "R3": BLOCKED}),
    ("R3 classified", {"classified": True}, LEVEL3, OUT_OF_SCOPE, {"R3": OUT_OF_SCOPE}),
    ("R4 core data", {"data_level": "core"}, LEVEL4_POOL, BLOCKED, {"R4": BLOCKED}),
    ("R5 important data on level 2", {"data_level": "important"}, LEVEL2, BLOCKED,
     {"R5": BLOCKED}),
    ("R5 important data on level 3", {"data_level": "important"}, LEVEL3, READY, {}),
    ("R6 level 3 without 密评", {"mlps_level": 3}, LEVEL3, NEEDS_WORK, {"R6": NEEDS_WORK}),
    ("X1 retired", {"lifecycle": "retired"}, LEVEL3, OUT_OF_SCOPE, {"X1": OUT_OF_SCOPE}),
    ("X2 already on cloud", {"evidence_status": "on_cloud"}, LEVEL3, OUT_OF_SCOPE,
     {"X2": OUT_OF_SCOPE}),
    ("X3 valid exemption", {"exemption_valid_until": TODAY}, LEVEL3, EXEMPT, {"X3": EXEMPT}),
    ("X3 expired exemption ignored", {"exemption_valid_until": date(2026, 11, 25)}, LEVEL3,
     READY, {}),
    ("exempt outranks blocked", {"exemption_valid_until": TODAY, "data_level": "core"}, LEVEL3,
     EXEMPT, {"X3": EXEMPT, "R4": BLOCKED}),
    ("blocked outranks needs_work", {"mlps_level": 3, "data_level": "core"}, LEVEL3, BLOCKED,
     {"R4": BLOCKED, "R6": NEEDS_WORK}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "target", "readiness", "rules"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_placement_rules(
    changes: dict, target: TargetProfile, readiness: str, rules: dict[str, str]
) -> None:
    system = replace(PLAIN, **changes)

    verdict = assess(system, target, today=TODAY)

    assert verdict.readiness == readiness
    assert fired(system, target) == rules
    # Every rule is recorded, with the facts it was decided on.
    assert [r.id for r in verdict.rules][:9] == [
        "X1", "X2", "X3", "R1", "R2", "R3", "R4", "R5", "R6",
    ]  # fmt: skip
    assert all(r.facts for r in verdict.rules)


def test_verdict_names_rules_and_facts() -> None:
    system = replace(PLAIN, mlps_level=4, crypto_assessed_on=TODAY)

    verdict = assess(system, TargetProfile(id="core", mlps_level=3), today=TODAY)

    r1 = next(r for r in verdict.rules if r.id == "R1")
    r2 = next(r for r in verdict.rules if r.id == "R2")
    assert r1.facts == {"system_mlps_level": 4, "platform_mlps_level": 3}
    assert r2.facts == {"system_mlps_level": 4, "dedicated_level4_pool": False}
    assert verdict.summary().startswith("R1 blocked: platform core is MLPS level 3")


# system changes, readiness it leads to, expected strategy rule and strategy
STRATEGY_CASES = [
    ("T1 out of scope", {"lifecycle": "retired"}, "T1", None),
    ("T2 retiring", {"lifecycle": "retiring"}, "T2", "retire"),
    ("T3 exempt", {"exemption_valid_until": TODAY}, "T3", "retain"),
    ("T4 blocked", {"data_level": "core"}, "T4", "retain"),
    ("T5 unseen servers in a server room",
     {"kinds_to_move": frozenset(), "declared_node_level": "server_room"}, "T5", "relocate"),
    ("T6 containers and VMs", {"kinds_to_move": frozenset({"vm", "deployment"})}, "T6",
     "replatform"),
    ("T7 managed database", {"kinds_to_move": frozenset({"vm", "db_instance"})}, "T7",
     "replatform"),
    ("T8 containers only", {"kinds_to_move": frozenset({"deployment", "cronjob"})}, "T8",
     "rehost"),
    ("T9 VMs", {"kinds_to_move": frozenset({"vm", "volume"})}, "T9", "rehost"),
    ("T9 nothing seen", {"kinds_to_move": frozenset()}, "T9", "rehost"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "rule", "strategy"),
    [case[1:] for case in STRATEGY_CASES],
    ids=[case[0] for case in STRATEGY_CASES],
)
def test_strategy_rules(changes: dict, rule: str, strategy: str | None) -> None:
    verdict = assess(replace(PLAIN, **changes), LEVEL3, today=TODAY)

    assert verdict.rules[-1].id == rule
    assert verdict.strategy == strategy


def test_best_verdict_over_targets_prefers_ready_then_node_id() -> None:
    level4 = replace(PLAIN, mlps_level=4, crypto_assessed_on=TODAY)

    best = assess_best(level4, [LEVEL2, LEVEL3, LEVEL4_POOL], today=TODAY)
    tie = assess_best(PLAIN, [LEVEL4_POOL, LEVEL3], today=TODAY)
    nothing = assess_best(PLAIN, [], today=TODAY)

    assert (best.readiness, best.target) == (READY, "core4")
    assert tie.target == "core"
    assert (nothing.readiness, nothing.target) == (BLOCKED, None)


def test_r3_cannot_be_overridden_to_move() -> None:
    level5 = assess(replace(PLAIN, mlps_level=5), LEVEL3, today=TODAY)
    rules = [r.as_dict() for r in level5.rules]

    assert override_refusal(rules, READY, None) is not None
    assert override_refusal(rules, None, "rehost") is not None
    assert override_refusal(rules, BLOCKED, "retain") is None
    plain = [r.as_dict() for r in assess(PLAIN, LEVEL3, today=TODAY).rules]
    assert override_refusal(plain, BLOCKED, "refactor") is None
