"""Assessment rules as pure functions: placement rules R1–R6, scope rules X1–X3, strategy T1–T9."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# Readiness of a system for the unified cloud, most to least decisive.
OUT_OF_SCOPE = "out_of_scope"
EXEMPT = "exempt"
BLOCKED = "blocked"
NEEDS_WORK = "needs_work"
READY = "ready"
READINESS = (READY, NEEDS_WORK, BLOCKED, EXEMPT, OUT_OF_SCOPE)
# When several rules fire, the most decisive outcome is the verdict.
_PRECEDENCE = (OUT_OF_SCOPE, EXEMPT, BLOCKED, NEEDS_WORK, READY)
# Only these may be placed in a wave.
PLACEABLE = frozenset({READY, NEEDS_WORK})

PASS = "pass"
NOT_APPLICABLE = "n/a"

STRATEGIES = ("rehost", "replatform", "refactor", "repurchase", "retire", "retain", "relocate")
# Strategies that put the system on the target node, so it needs a wave and capacity.
MOVING_STRATEGIES = frozenset({"rehost", "replatform", "refactor", "repurchase", "relocate"})

CONTAINER_KINDS = frozenset({"deployment", "statefulset", "daemonset", "cronjob"})
VM_KINDS = frozenset({"vm", "volume"})
DATABASE_KINDS = frozenset({"db_instance"})


@dataclass(frozen=True)
class SystemProfile:
    """What the rules know about one system: register fields plus what the inventory sees."""

    code: str
    mlps_level: int
    classified: bool = False
    data_level: str = "general"
    lifecycle: str = "active"
    exemption_valid_until: date | None = None
    crypto_assessed_on: date | None = None
    # The KPI status under evidence-v1 (inventory.adoption.classify), never self-declaration.
    evidence_status: str = "no_evidence"
    # Kinds of the system's live resources that are not yet on the unified cloud.
    kinds_to_move: frozenset[str] = frozenset()
    # Level of the node the register says it runs on (server_room, department_cloud, ...).
    declared_node_level: str | None = None


@dataclass(frozen=True)
class TargetProfile:
    """What the placement rules need to know about a unified-cloud node."""

    id: str
    mlps_level: int | None
    dedicated_level4_pool: bool = False


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome and the facts it was decided on."""

    id: str
    outcome: str  # pass / n/a / a readiness / a strategy
    reason: str
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "outcome": self.outcome, "reason": self.reason, "facts": self.facts}


@dataclass(frozen=True)
class Verdict:
    """Readiness and recommended strategy of one system against one target, with every rule."""

    code: str
    target: str | None
    readiness: str
    strategy: str | None
    rules: tuple[RuleResult, ...]

    @property
    def fired(self) -> tuple[RuleResult, ...]:
        """The rules that decided something (not pass, not n/a)."""
        return tuple(r for r in self.rules if r.outcome not in (PASS, NOT_APPLICABLE))

    def summary(self) -> str:
        """The fired rules in one line, e.g. "R2 blocked: level 4 needs a dedicated pool"."""
        return "; ".join(f"{r.id} {r.outcome}: {r.reason}" for r in self.fired)


# ---------------------------------------------------------------- placement rules (DESIGN.md)


def r1_platform_level(system: SystemProfile, target: TargetProfile) -> RuleResult:
    """R1: the target platform's MLPS level must be at least the system's."""
    facts = {"system_mlps_level": system.mlps_level, "platform_mlps_level": target.mlps_level}
    if target.mlps_level is None:
        return RuleResult(
            "R1", BLOCKED, f"platform MLPS level of {target.id} is not recorded", facts
        )
    if target.mlps_level < system.mlps_level:
        return RuleResult(
            "R1",
            BLOCKED,
            f"platform {target.id} is MLPS level {target.mlps_level}, "
            f"below the system's level {system.mlps_level}",
            facts,
        )
    return RuleResult("R1", PASS, "platform level covers the system's", facts)


def r2_level4_pool(system: SystemProfile, target: TargetProfile) -> RuleResult:
    """R2: a level-4 system needs a resource pool dedicated to level 4, else it is blocked."""
    facts = {
        "system_mlps_level": system.mlps_level,
        "dedicated_level4_pool": target.dedicated_level4_pool,
    }
    if system.mlps_level != 4:
        return RuleResult("R2", NOT_APPLICABLE, "applies to level-4 systems only", facts)
    if not target.dedicated_level4_pool:
        return RuleResult(
            "R2", BLOCKED, f"level 4 needs a dedicated level-4 pool; {target.id} has none", facts
        )
    return RuleResult("R2", PASS, f"{target.id} has a dedicated level-4 pool", facts)


def r3_never_on_cloud(system: SystemProfile, target: TargetProfile) -> RuleResult:
    """R3: level-5 and classified (涉密) systems never go to the unified cloud."""
    facts = {"classified": system.classified, "system_mlps_level": system.mlps_level}
    if system.classified:
        # Classified systems live on the isolated intranet: outside the KPI and every plan.
        return RuleResult("R3", OUT_OF_SCOPE, "classified systems never go to the cloud", facts)
    if system.mlps_level >= 5:
        return RuleResult("R3", BLOCKED, "level-5 systems never go to the unified cloud", facts)
    return RuleResult("R3", PASS, "neither classified nor level 5", facts)


def r4_core_data(system: SystemProfile, target: TargetProfile) -> RuleResult:
    """R4: a system holding core (核心) data is blocked."""
    facts = {"data_level": system.data_level}
    if system.data_level == "core":
        return RuleResult("R4", BLOCKED, "holds core data", facts)
    return RuleResult("R4", PASS, "no core data", facts)


def r5_important_data(system: SystemProfile, target: TargetProfile) -> RuleResult:
    """R5: a system holding important (重要) data needs a platform at MLPS level 3 or above."""
    facts = {"data_level": system.data_level, "platform_mlps_level": target.mlps_level}
    if system.data_level != "important":
        return RuleResult("R5", NOT_APPLICABLE, "applies to important data only", facts)
    if target.mlps_level is None or target.mlps_level < 3:
        return RuleResult(
            "R5",
            BLOCKED,
            f"important data needs a level-3 platform; {target.id} is "
            f"{'unrecorded' if target.mlps_level is None else f'level {target.mlps_level}'}",
            facts,
        )
    return RuleResult("R5", PASS, "platform is level 3 or above", facts)


def r6_crypto_assessment(system: SystemProfile, target: TargetProfile) -> RuleResult:
    """R6: a level-3+ system needs a 密评 record before acceptance: needs_work until it has one."""
    facts = {
        "system_mlps_level": system.mlps_level,
        "crypto_assessed_on": system.crypto_assessed_on.isoformat()
        if system.crypto_assessed_on
        else None,
    }
    if system.mlps_level < 3:
        return RuleResult("R6", NOT_APPLICABLE, "applies to level 3 and above", facts)
    if system.crypto_assessed_on is None:
        return RuleResult(
            "R6", NEEDS_WORK, "level 3+ needs a 密评 record before it can be accepted", facts
        )
    return RuleResult("R6", PASS, "has a 密评 record", facts)


PlacementRule = Callable[[SystemProfile, TargetProfile], RuleResult]
PLACEMENT_RULES: dict[str, PlacementRule] = {
    "R1": r1_platform_level,
    "R2": r2_level4_pool,
    "R3": r3_never_on_cloud,
    "R4": r4_core_data,
    "R5": r5_important_data,
    "R6": r6_crypto_assessment,
}


# ---------------------------------------------------------------- scope rules


def scope_rules(system: SystemProfile, *, today: date) -> list[RuleResult]:
    """X1–X3: systems that are not migration candidates at all, whatever the target."""
    retired = system.lifecycle == "retired"
    on_cloud = system.evidence_status == "on_cloud"
    valid_until = system.exemption_valid_until
    exempt = valid_until is not None and valid_until >= today
    return [
        RuleResult(
            "X1",
            OUT_OF_SCOPE if retired else PASS,
            "retired: nothing to move" if retired else "not retired",
            {"lifecycle": system.lifecycle},
        ),
        RuleResult(
            "X2",
            OUT_OF_SCOPE if on_cloud else PASS,
            "already on the unified cloud by evidence" if on_cloud else "not yet on the cloud",
            {"evidence_status": system.evidence_status},
        ),
        RuleResult(
            "X3",
            EXEMPT if exempt else PASS,
            f"exemption valid until {valid_until}" if exempt else "no valid exemption",
            {"exemption_valid_until": valid_until.isoformat() if valid_until else None},
        ),
    ]


# ---------------------------------------------------------------- strategy rules


def recommend_strategy(system: SystemProfile, readiness: str) -> RuleResult:
    """The first strategy rule that matches, T1 to T9 (documented in migrate/README.md).

    refactor and repurchase are never recommended by a rule: they need a human's judgement
    about the code or the market, so they come only from an override.
    """
    kinds = system.kinds_to_move
    facts: dict[str, Any] = {
        "readiness": readiness,
        "lifecycle": system.lifecycle,
        "kinds_to_move": sorted(kinds),
        "declared_node_level": system.declared_node_level,
    }
    containers = bool(kinds & CONTAINER_KINDS)
    machines = bool(kinds & VM_KINDS)
    databases = bool(kinds & DATABASE_KINDS)
    if readiness == OUT_OF_SCOPE:
        return RuleResult("T1", "none", "out of scope: nothing to migrate", facts)
    if system.lifecycle == "retiring":
        return RuleResult("T2", "retire", "marked retiring (拟下线): retire, do not move", facts)
    if readiness == EXEMPT:
        return RuleResult("T3", "retain", "exempted: stays where it is while valid", facts)
    if readiness == BLOCKED:
        return RuleResult("T4", "retain", "blocked by a placement rule: stays for now", facts)
    if not kinds and system.declared_node_level == "server_room":
        return RuleResult(
            "T5", "relocate", "physical servers in a server room that no collector sees", facts
        )
    if containers and (machines or databases):
        return RuleResult(
            "T6", "replatform", "mixes containers with VMs or databases: re-platform", facts
        )
    if databases:
        return RuleResult(
            "T7", "replatform", "managed database: move onto the target's database service", facts
        )
    if containers:
        return RuleResult(
            "T8", "rehost", "containers only: redeploy the same workloads on the target", facts
        )
    return RuleResult(
        "T9", "rehost", "VMs, volumes or buckets (or nothing seen): lift and shift", facts
    )


# ---------------------------------------------------------------- verdicts


def assess(system: SystemProfile, target: TargetProfile, *, today: date) -> Verdict:
    """Readiness against one target from every rule, and the strategy that follows."""
    results = scope_rules(system, today=today)
    results += [rule(system, target) for rule in PLACEMENT_RULES.values()]
    outcomes = {r.outcome for r in results}
    readiness = next(level for level in _PRECEDENCE if level in outcomes or level == READY)
    strategy_rule = recommend_strategy(system, readiness)
    strategy = None if strategy_rule.outcome == "none" else strategy_rule.outcome
    return Verdict(
        code=system.code,
        target=target.id,
        readiness=readiness,
        strategy=strategy,
        rules=(*results, strategy_rule),
    )


def _rank(readiness: str) -> int:
    return (READY, NEEDS_WORK, BLOCKED, EXEMPT, OUT_OF_SCOPE).index(readiness)


def assess_best(system: SystemProfile, targets: list[TargetProfile], *, today: date) -> Verdict:
    """The most favourable verdict over the candidate targets (ties: the lowest node id)."""
    if not targets:
        none = TargetProfile(id="(no unified-cloud node)", mlps_level=None)
        verdict = assess(system, none, today=today)
        return Verdict(system.code, None, verdict.readiness, verdict.strategy, verdict.rules)
    verdicts = [assess(system, t, today=today) for t in sorted(targets, key=lambda t: t.id)]
    return min(verdicts, key=lambda v: _rank(v.readiness))


def override_refusal(
    rules: list[dict[str, Any]], readiness: str | None, strategy: str | None
) -> str | None:
    """Why a person's override may not stand (None: it may), given the stored rule results."""
    r3 = next((r for r in rules if r["id"] == "R3"), None)
    moving = readiness in PLACEABLE or strategy in MOVING_STRATEGIES
    if r3 is not None and r3["outcome"] not in (PASS, NOT_APPLICABLE) and moving:
        # The law, not a judgement call: no rationale puts these on the unified cloud.
        return f"R3 cannot be overridden: {r3['reason']}"
    return None
