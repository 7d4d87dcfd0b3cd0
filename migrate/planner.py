"""The wave planner: move groups, dependency order, phases and capacity, as pure functions."""

# Nothing here touches the database: migrate.plans gathers plain dataclasses, calls
# `plan_waves` and `review`, and stores what they return, so the tests, the property tests and
# bench/waves.py all drive exactly the code `yiyun migrate plan create` runs.

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from migrate.graph import longest_chain, strongly_connected
from migrate.rules import MOVING_STRATEGIES, PLACEABLE, READY
from migrate.sizing import Sizing
from migrate.wording import Joined, Label, Phrase

NONPROD = "dev/test"
PROD = "production"
_NONPROD_ENVIRONMENTS = frozenset({"dev", "test"})
# A move group with at least this many systems counts as complex: not for the pilot wave.
COMPLEX_GROUP_SIZE = 3
_EPSILON = 1e-9


@dataclass(frozen=True)
class Candidate:
    """One system the plan may move, with what the rules decided about it."""

    code: str
    target: str
    department_code: str = ""
    city: str = ""
    environment: str | None = None  # dev / test / production; unknown counts as production
    criticality: str | None = None  # high / medium / low
    mlps_level: int = 2
    readiness: str = READY
    strategy: str | None = "rehost"
    sizing: Sizing = field(default_factory=Sizing)
    # The fired rules in one line, for explanations ("R6 needs_work: ...").
    rules: str = ""

    @property
    def placeable(self) -> bool:
        return self.readiness in PLACEABLE and self.strategy in MOVING_STRATEGIES

    @property
    def phase(self) -> str:
        return NONPROD if self.environment in _NONPROD_ENVIRONMENTS else PROD


@dataclass(frozen=True)
class Edge:
    """`from_system` depends on `to_system` (so `to_system` must not move later)."""

    from_system: str
    to_system: str
    type: str = "calls"  # calls / data / shared_infra
    strength: str = "soft"  # hard: must move together


@dataclass(frozen=True)
class Target:
    """A target node's free capacity per dimension (None: not recorded, so not limited)."""

    id: str
    free_vcpu: float | None = None
    free_memory_gib: float | None = None
    free_storage_gib: float | None = None

    @property
    def free(self) -> tuple[float | None, float | None, float | None]:
        return (self.free_vcpu, self.free_memory_gib, self.free_storage_gib)


@dataclass(frozen=True)
class Parameters:
    max_systems_per_wave: int = 20
    # True: a dependency target moves in an earlier wave than its dependents, never the same.
    strict_order: bool = False

    @property
    def gap(self) -> int:
        return 1 if self.strict_order else 0


@dataclass(frozen=True)
class MoveGroup:
    """Systems that must move together, named after its first system code."""

    id: str
    members: tuple[str, ...]
    reasons: tuple[str, ...]  # why they are together: cycle / hard dependency / shared ...
    phase: str
    target: str
    sizing: Sizing
    pilot_excluded: tuple[str, ...]  # why it may not be in wave 1 (empty: it may)


@dataclass(frozen=True)
class Constraint:
    """A constraint the plan could not meet, or a dependency that crosses a boundary."""

    kind: str
    systems: tuple[str, ...]
    detail: str

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "kind": self.kind,
            "systems": list(self.systems),
            "detail": str(self.detail),
        }
        as_dict = getattr(self.detail, "as_dict", None)
        if callable(as_dict):
            # The detail's catalog key and fields, to word it in the reader's language.
            found["wording"] = as_dict()
        return found


@dataclass
class PlanResult:
    """Where every candidate went: a wave, or a reason it was not placed."""

    groups: dict[str, MoveGroup]
    group_of: dict[str, str]
    wave_of: dict[str, int]
    unplaced: dict[str, str]
    notes: dict[str, list[str]]
    constraints: list[Constraint]
    waves: int
    # Per target: what the plan puts on it.
    used: dict[str, Sizing] = field(default_factory=dict)


# ---------------------------------------------------------------- move groups


def move_groups(
    candidates: Mapping[str, Candidate], edges: Iterable[Edge]
) -> tuple[dict[str, MoveGroup], dict[str, str]]:
    """Strongly connected components of the dependency graph with hard edges made two-way.

    A cycle (including a two-way dependency) cannot be ordered, and a hard dependency or a
    shared resource means the systems cannot run apart: either way they move as one group.
    Making hard edges two-way before taking components also merges what a hard edge would
    otherwise turn into a cycle between groups.
    """
    successors: dict[str, set[str]] = defaultdict(set)
    inner: list[Edge] = []
    for edge in edges:
        if edge.from_system not in candidates or edge.to_system not in candidates:
            continue
        if edge.from_system == edge.to_system:
            continue
        inner.append(edge)
        successors[edge.from_system].add(edge.to_system)
        if edge.strength == "hard":
            successors[edge.to_system].add(edge.from_system)
    components = strongly_connected(candidates, successors)
    group_of: dict[str, str] = {}
    for component in components:
        for code in component:
            group_of[code] = component[0]
    reasons: dict[str, set[str]] = defaultdict(set)
    for edge in inner:
        group = group_of[edge.from_system]
        if group != group_of[edge.to_system]:
            continue
        if edge.type == "shared_infra":
            reasons[group].add(Phrase("mig_why_shared"))
        elif edge.strength == "hard":
            reasons[group].add(Phrase("mig_why_hard"))
        else:
            reasons[group].add(Phrase("mig_why_cycle"))
    groups: dict[str, MoveGroup] = {}
    for component in components:
        members = [candidates[c] for c in component]
        gid = component[0]
        sizing = Sizing()
        for member in members:
            sizing = sizing + member.sizing
        excluded: list[str] = [
            Phrase("mig_pilot_high", code=m.code) for m in members if m.criticality == "high"
        ]
        if len(members) >= COMPLEX_GROUP_SIZE:
            excluded.append(Phrase("mig_pilot_complex", count=len(members)))
        groups[gid] = MoveGroup(
            id=gid,
            members=tuple(component),
            reasons=tuple(sorted(reasons[gid])) if len(component) > 1 else (),
            phase=PROD if any(m.phase == PROD for m in members) else NONPROD,
            # Must-move-together systems land on one node: the first member's.
            target=members[0].target,
            sizing=sizing,
            pilot_excluded=tuple(excluded),
        )
    return groups, group_of


def _group_edges(
    group_of: Mapping[str, str], edges: Iterable[Edge]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Predecessors (what a group depends on) and successors between distinct groups."""
    preds: dict[str, set[str]] = defaultdict(set)
    succs: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        a, b = group_of.get(edge.from_system), group_of.get(edge.to_system)
        if a is None or b is None or a == b:
            continue
        preds[a].add(b)
        succs[b].add(a)
    return preds, succs


def _fits(used: Sizing, add: Sizing, free: tuple[float | None, float | None, float | None]) -> bool:
    total = used + add
    wanted = (total.vcpu, total.memory_gib, total.storage_gib)
    return all(
        limit is None or need <= limit + _EPSILON for need, limit in zip(wanted, free, strict=True)
    )


def _size_text(sizing: Sizing) -> str:
    return Phrase(
        "mig_size", vcpu=sizing.vcpu, memory=sizing.memory_gib, storage=sizing.storage_gib
    )


# ---------------------------------------------------------------- planning


def plan_waves(
    candidates: Iterable[Candidate],
    edges: Iterable[Edge],
    targets: Iterable[Target],
    parameters: Parameters = Parameters(),
) -> PlanResult:
    """Place every placeable move group in a wave, deterministically.

    Per wave: dependency targets are in the same or an earlier wave (earlier only, with
    strict_order), a wave holds only dev/test or only production systems and dev/test waves
    come first as far as dependencies allow, high-criticality and complex groups stay out of
    wave 1, at most max_systems_per_wave systems, and the target's free capacity is never
    exceeded. Groups that cannot be placed say why; so do their dependents.
    """
    if parameters.max_systems_per_wave < 1:
        raise ValueError("max_systems_per_wave must be at least 1")
    by_code = {c.code: c for c in sorted(candidates, key=lambda c: c.code)}
    edge_list = sorted(set(edges), key=lambda e: (e.from_system, e.to_system, e.type, e.strength))
    target_free = {t.id: t.free for t in targets}
    groups, group_of = move_groups(by_code, edge_list)
    preds, succs = _group_edges(group_of, edge_list)
    notes: dict[str, list[str]] = {gid: [] for gid in groups}
    unplaced: dict[str, str] = {}  # group id → reason
    constraints: list[Constraint] = []

    # 1. Groups that stay: a member is not placeable, so the whole group cannot move.
    held: dict[str, str] = {}  # system code → why it is not placed

    def own_reason(candidate: Candidate, *, brief: bool = False) -> str:
        why = (
            Phrase("mig_why_readiness", readiness=Label("readiness", candidate.readiness))
            if candidate.readiness not in PLACEABLE
            else Phrase("mig_why_strategy", strategy=Label("strategy", candidate.strategy))
        )
        if brief or not candidate.rules:
            return why
        return Phrase("mig_why_rules", why=why, rules=candidate.rules)

    for gid, group in groups.items():
        staying = [by_code[c] for c in group.members if not by_code[c].placeable]
        if not staying:
            continue
        first = staying[0]
        unplaced[gid] = own_reason(first)
        for code in group.members:
            if not by_code[code].placeable:
                held[code] = Phrase("mig_not_placed", reason=own_reason(by_code[code]))
            else:
                held[code] = Phrase(
                    "mig_not_placed_with", code=first.code, why=own_reason(first, brief=True)
                )
        if len(group.members) > 1:
            constraints.append(
                Constraint(
                    "held_by_group",
                    group.members,
                    Phrase(
                        "mig_c_held_by_group", code=first.code, why=own_reason(first, brief=True)
                    ),
                )
            )
    stays = set(unplaced)

    # 2. Groups that could move but not in this plan, and everything that waits for them.
    deferred: dict[str, str] = {}

    def defer(gid: str, reason: str, kind: str) -> None:
        deferred[gid] = reason
        constraints.append(Constraint(kind, groups[gid].members, reason))
        queue = [gid]
        while queue:
            current = queue.pop()
            for dependent in sorted(succs.get(current, ())):
                if dependent in deferred or dependent in stays or dependent in wave_of_group:
                    continue
                why = Phrase("mig_waits_for", group=gid)
                deferred[dependent] = why
                constraints.append(
                    Constraint("waits_for_dependency", groups[dependent].members, why)
                )
                queue.append(dependent)

    wave_of_group: dict[str, int] = {}
    for gid, group in groups.items():
        if gid in stays or gid in deferred:
            continue
        if len(group.members) > parameters.max_systems_per_wave:
            defer(
                gid,
                Phrase(
                    "mig_c_group_too_big",
                    count=len(group.members),
                    limit=parameters.max_systems_per_wave,
                ),
                "group_too_big",
            )
    for target_id, free in target_free.items():
        if any(limit is None for limit in free):
            missing = [
                Phrase(f"mig_dim_{n}")
                for n, v in zip(("vcpu", "memory", "storage"), free, strict=True)
                if v is None
            ]
            constraints.append(
                Constraint(
                    "capacity_unknown",
                    (),
                    Phrase(
                        "mig_c_capacity_unknown", node=target_id, missing=Joined(missing, "item")
                    ),
                )
            )

    # 3. List scheduling, wave by wave.
    active = [g for g in groups if g not in stays and g not in deferred]
    active_set = set(active)
    # Longest chain of dependents below each group: scheduling it first shortens the plan.
    height: dict[str, int] = {}
    depth_memo: dict[str, int] = {}
    for gid in sorted(
        active, key=lambda g: (_depth(g, preds, active_set, depth_memo), g), reverse=True
    ):
        height[gid] = 1 + max((height[s] for s in succs.get(gid, ()) if s in height), default=0)
    crit_rank = {"low": 0, "medium": 1, None: 2, "high": 3}

    def priority(gid: str) -> tuple[int, int, str]:
        worst = max(crit_rank.get(by_code[c].criticality, 2) for c in groups[gid].members)
        return (-height[gid], worst, gid)

    waiting = {g: sum(1 for p in preds.get(g, ()) if p in active_set) for g in active}
    earliest: dict[str, int] = {}
    heaps: dict[str, list[tuple[tuple[int, int, str], str]]] = {NONPROD: [], PROD: []}
    next_wave: list[str] = []  # available from the next wave on (strict order)
    after_pilot: list[str] = []  # available, but not for wave 1
    used: dict[str, Sizing] = {t: Sizing() for t in target_free}
    wave_phases: list[str] = []

    # Dev/test groups that need a production group moved first (directly or through other
    # groups): only these may wait behind production waves; the rest go first.
    needs_production: dict[str, bool] = {}
    for gid in sorted(active, key=lambda g: (depth_memo.get(g, 0), g)):
        needs_production[gid] = any(
            groups[p].phase == PROD or needs_production.get(p, False)
            for p in preds.get(gid, ())
            if p in active_set
        )

    def make_available(gid: str, wave: int) -> None:
        earliest.setdefault(gid, wave)
        if wave == 1 and groups[gid].pilot_excluded:
            after_pilot.append(gid)
        else:
            heapq.heappush(heaps[groups[gid].phase], (priority(gid), gid))

    for gid in sorted(active):
        if waiting[gid] == 0:
            make_available(gid, 1)
    wave = 0
    # Each wave places or defers at least one group, so this ends after at most len(active).
    while heaps[NONPROD] or heaps[PROD] or next_wave or after_pilot:
        wave += 1
        if wave == 2:
            for gid in after_pilot:
                heapq.heappush(heaps[groups[gid].phase], (priority(gid), gid))
            after_pilot.clear()
        for gid in next_wave:
            make_available(gid, wave)
        next_wave.clear()
        if not heaps[NONPROD] and not heaps[PROD]:
            # Only wave 1 can get here: nothing low-risk can open the migration, and a
            # risky pilot is better than none.
            for gid in after_pilot:
                heapq.heappush(heaps[groups[gid].phase], (priority(gid), gid))
            after_pilot.clear()
        phase = NONPROD if heaps[NONPROD] else PROD
        late = all(needs_production[g] for _, g in heaps[NONPROD])
        if phase == NONPROD and late and PROD in wave_phases and heaps[PROD]:
            # Dev/test groups that need production systems (so they could only become ready
            # after production started) wait until they fill a wave, rather than splinter
            # the plan; a dev/test group that needs none never waits behind production.
            waiting_systems = sum(len(groups[g].members) for _, g in heaps[NONPROD])
            if waiting_systems < parameters.max_systems_per_wave:
                phase = PROD
        wave_phases.append(phase)
        heap = heaps[phase]
        slots = parameters.max_systems_per_wave
        skipped: list[tuple[tuple[int, int, str], str]] = []
        while heap and slots > 0:
            entry = heapq.heappop(heap)
            gid = entry[1]
            if gid in deferred:
                continue  # deferred while it waited in the heap
            group = groups[gid]
            if len(group.members) > slots:
                skipped.append(entry)
                continue
            if not _fits(used[group.target], group.sizing, target_free[group.target]):
                defer(
                    gid,
                    Phrase(
                        "mig_c_capacity",
                        need=_size_text(group.sizing),
                        node=group.target,
                        left=_free_text(used[group.target], target_free[group.target]),
                    ),
                    "capacity",
                )
                continue
            wave_of_group[gid] = wave
            used[group.target] = used[group.target] + group.sizing
            slots -= len(group.members)
            if wave == 1 and group.pilot_excluded:
                # Only the relaxation above lets such a group into wave 1.
                notes[gid].append(
                    Phrase("mig_note_pilot", why=Joined(group.pilot_excluded, "clause"))
                )
            for dependent in sorted(succs.get(gid, ())):
                if dependent not in waiting or dependent in deferred:
                    continue
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    if parameters.gap:
                        next_wave.append(dependent)
                    else:
                        make_available(dependent, wave)
        for entry in skipped:
            heapq.heappush(heap, entry)
        next_wave[:] = [g for g in next_wave if g not in deferred]
        after_pilot[:] = [g for g in after_pilot if g not in deferred]
        for name in (NONPROD, PROD):
            if any(e[1] in deferred for e in heaps[name]):
                heaps[name] = [e for e in heaps[name] if e[1] not in deferred]
                heapq.heapify(heaps[name])
        if slots == parameters.max_systems_per_wave:
            # Everything tried was deferred for capacity: the wave number is still free.
            wave -= 1
            wave_phases.pop()

    # 4. Explanations.
    for gid, wave in sorted(wave_of_group.items()):
        group = groups[gid]
        lines = notes[gid]
        lines.insert(0, Phrase("mig_note_wave", wave=wave, phase=Label("mig_phase", group.phase)))
        if len(group.members) > 1:
            lines.append(Phrase("mig_note_group", group=gid, reasons=Joined(group.reasons, "item")))
        placed_preds = sorted(
            (wave_of_group[p], p) for p in preds.get(gid, ()) if p in wave_of_group
        )
        if placed_preds:
            shown = Joined(
                (Phrase("mig_in_wave", code=p, wave=w) for w, p in placed_preds[:5]), "item"
            )
            if len(placed_preds) > 5:
                lines.append(Phrase("mig_note_after_more", deps=shown, more=len(placed_preds) - 5))
            else:
                lines.append(Phrase("mig_note_after", deps=shown))
        start = earliest.get(gid, wave)
        if wave > start:
            lines.append(_delay_text(start, wave, group, wave_phases))
        lines.append(Phrase("mig_note_fits", node=group.target, size=_size_text(group.sizing)))

    wave_of = {c: wave_of_group[g] for c, g in group_of.items() if g in wave_of_group}
    unplaced_codes: dict[str, str] = dict(held)
    for gid, reason in deferred.items():
        for code in groups[gid].members:
            unplaced_codes[code] = Phrase("mig_not_placed", reason=reason)
    member_notes: dict[str, list[str]] = {}
    for code, gid in group_of.items():
        if gid not in wave_of_group:
            continue
        others = [c for c in groups[gid].members if c != code]
        extra = [Phrase("mig_note_together", others=Joined(others, "item"))] if others else []
        member_notes[code] = [*notes[gid][:1], *extra, *notes[gid][1:]]
    return PlanResult(
        groups=groups,
        group_of=group_of,
        wave_of=wave_of,
        unplaced=unplaced_codes,
        notes=member_notes,
        constraints=constraints,
        waves=max(wave_of_group.values(), default=0),
        used=used,
    )


def _depth(gid: str, preds: Mapping[str, set[str]], active: set[str], memo: dict[str, int]) -> int:
    # Iterative longest-path depth from the sources, memoised.
    if gid in memo:
        return memo[gid]
    stack = [gid]
    while stack:
        node = stack[-1]
        pending = [p for p in preds.get(node, ()) if p in active and p not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        memo[node] = 1 + max((memo[p] for p in preds.get(node, ()) if p in active), default=0)
    return memo[gid]


def _free_text(used: Sizing, free: tuple[float | None, float | None, float | None]) -> str:
    parts = []
    for name, taken, limit in zip(
        ("vcpu", "memory", "storage"),
        (used.vcpu, used.memory_gib, used.storage_gib),
        free,
        strict=True,
    ):
        if limit is None:
            parts.append(Phrase(f"mig_free_{name}_unlimited"))
        else:
            parts.append(Phrase(f"mig_free_{name}", amount=max(limit - taken, 0)))
    return Joined(parts, "slash")


def _delay_text(start: int, wave: int, group: MoveGroup, phases: list[str]) -> str:
    other_phase = sum(1 for p in phases[start - 1 : wave - 1] if p != group.phase)
    pilot = 1 if start == 1 and group.pilot_excluded else 0
    full = (wave - start) - other_phase - (pilot if phases[0] == group.phase else 0)
    reasons = []
    if pilot:
        reasons.append(Phrase("mig_late_pilot", why=Joined(group.pilot_excluded, "clause")))
    if other_phase:
        key = "mig_late_dev_test_first" if group.phase == PROD else "mig_late_production"
        reasons.append(Phrase(key, count=other_phase))
    if full > 0:
        reasons.append(Phrase("mig_late_full", count=full))
    return Phrase("mig_note_later", start=start, reasons=Joined(reasons, "item"))


# ---------------------------------------------------------------- review of an assignment

# Constraint kinds that say why a placeable system is not in a wave.
NOT_PLACED_KINDS = frozenset(
    {"group_too_big", "capacity", "waits_for_dependency", "held_by_group", "placed_out_by_hand"}
)


@dataclass
class Review:
    """What an assignment of systems to waves breaks, risks and leaves crossing waves."""

    # Hard errors: an imported plan with any of these is refused.
    errors: list[Constraint]
    # Constraints not met, and dependencies crossing the plan's boundary.
    constraints: list[Constraint]
    cross_wave: list[dict[str, object]]
    risk: dict[str, tuple[str, list[str]]]


def review(
    candidates: Iterable[Candidate],
    edges: Iterable[Edge],
    targets: Iterable[Target],
    parameters: Parameters,
    group_of: Mapping[str, str],
    wave_of: Mapping[str, int],
) -> Review:
    """Check an assignment (the planner's or a person's) against every planning rule."""
    by_code = {c.code: c for c in sorted(candidates, key=lambda c: c.code)}
    edge_list = sorted(set(edges), key=lambda e: (e.from_system, e.to_system, e.type, e.strength))
    errors: list[Constraint] = []
    constraints: list[Constraint] = []

    for code, candidate in by_code.items():
        if code in wave_of and not candidate.placeable:
            why = (
                Phrase("mig_why_readiness", readiness=Label("readiness", candidate.readiness))
                if candidate.readiness not in PLACEABLE
                else Phrase("mig_why_strategy", strategy=Label("strategy", candidate.strategy))
            )
            wave, rules = wave_of[code], candidate.rules
            errors.append(
                Constraint(
                    "not_placeable",
                    (code,),
                    Phrase("mig_c_not_placeable_rules", code=code, wave=wave, why=why, rules=rules)
                    if rules
                    else Phrase("mig_c_not_placeable", code=code, wave=wave, why=why),
                )
            )
    members: dict[str, list[str]] = defaultdict(list)
    for code in by_code:
        members[group_of.get(code, code)].append(code)
    for gid, codes in sorted(members.items()):
        waves = {wave_of.get(c) for c in codes}
        if len(waves) > 1:
            where = Joined(
                (
                    Phrase("mig_group_member_unplaced", code=c)
                    if wave_of.get(c) is None
                    else Phrase("mig_group_member_in_wave", code=c, wave=wave_of[c])
                    for c in codes
                ),
                "item",
            )
            errors.append(
                Constraint(
                    "group_split",
                    tuple(codes),
                    Phrase("mig_c_group_split", group=gid, where=where),
                )
            )

    # A group moves only if all of it can; one that stays is a boundary, not an order error.
    group_moves = {gid: all(by_code[c].placeable for c in codes) for gid, codes in members.items()}
    cross_wave: list[dict[str, object]] = []
    crossing: dict[str, int] = defaultdict(int)
    staying_deps: dict[str, int] = defaultdict(int)
    for edge in edge_list:
        a, b = edge.from_system, edge.to_system
        if a == b or a not in wave_of:
            continue
        if b not in by_code:
            constraints.append(
                Constraint(
                    "dependency_outside_plan",
                    (a, b),
                    Phrase("mig_c_dependency_outside_plan", system=a, other=b),
                )
            )
            staying_deps[a] += 1
            continue
        if b not in wave_of:
            if group_moves[group_of.get(b, b)]:
                errors.append(
                    Constraint(
                        "dependency_order",
                        (a, b),
                        Phrase("mig_c_dependency_unplaced", system=a, other=b, wave=wave_of[a]),
                    )
                )
            else:
                constraints.append(
                    Constraint(
                        "dependency_stays",
                        (a, b),
                        Phrase(
                            "mig_c_dependency_stays",
                            system=a,
                            other=b,
                            why=Phrase(
                                "mig_stays_as",
                                readiness=Label("readiness", by_code[b].readiness),
                                strategy=Label("strategy", by_code[b].strategy),
                            )
                            if by_code[b].strategy and not by_code[b].placeable
                            else Phrase(
                                "mig_stays_no_strategy",
                                readiness=Label("readiness", by_code[b].readiness),
                            )
                            if not by_code[b].placeable
                            else Phrase("mig_stays_with_group"),
                        ),
                    )
                )
                staying_deps[a] += 1
            continue
        wa, wb = wave_of[a], wave_of[b]
        together = group_of.get(a, a) == group_of.get(b, b)
        if wb > wa or (parameters.strict_order and wb == wa and not together):
            key = (
                "mig_c_dependency_order_strict"
                if parameters.strict_order
                else "mig_c_dependency_order"
            )
            errors.append(
                Constraint(
                    "dependency_order",
                    (a, b),
                    Phrase(key, system=a, wave=wa, other=b, other_wave=wb),
                )
            )
        if wa != wb:
            cross_wave.append(
                {
                    "from": a,
                    "to": b,
                    "from_wave": wa,
                    "to_wave": wb,
                    "type": edge.type,
                    "strength": edge.strength,
                }
            )
            crossing[a] += 1
            crossing[b] += 1

    # Per wave: size, phase mixing, pilot.
    by_wave: dict[int, list[Candidate]] = defaultdict(list)
    for code, wave in wave_of.items():
        if code in by_code:
            by_wave[wave].append(by_code[code])
    flags: dict[str, list[str]] = defaultdict(list)
    # A move group's phase is its strictest member's, as the planner schedules it: a group
    # holding dev/test and production systems cannot be split, so it never mixes a wave.
    group_phase = {
        gid: PROD if any(by_code[c].phase == PROD for c in codes) else NONPROD
        for gid, codes in members.items()
    }

    def phase_of(candidate: Candidate) -> str:
        return group_phase[group_of.get(candidate.code, candidate.code)]

    first_prod = min(
        (w for w, cs in by_wave.items() if any(phase_of(c) == PROD for c in cs)), default=None
    )
    for wave, systems in sorted(by_wave.items()):
        in_wave = tuple(sorted(c.code for c in systems))
        if len(systems) > parameters.max_systems_per_wave:
            constraints.append(
                Constraint(
                    "wave_size",
                    in_wave,
                    Phrase(
                        "mig_c_wave_size",
                        wave=wave,
                        count=len(systems),
                        limit=parameters.max_systems_per_wave,
                    ),
                )
            )
            for code in in_wave:
                flags[code].append(f"wave {wave} is over its size")
        phases = {phase_of(c) for c in systems}
        if len(phases) > 1:
            constraints.append(
                Constraint("mixed_wave", in_wave, Phrase("mig_c_mixed_wave", wave=wave))
            )
            for code in in_wave:
                flags[code].append(f"wave {wave} mixes dev/test and production")
        if wave == 1:
            sizes: dict[str, int] = defaultdict(int)
            for c in systems:
                sizes[group_of.get(c.code, c.code)] += 1
            for c in systems:
                risky: list[str] = []
                if c.criticality == "high":
                    risky.append(Phrase("mig_risky_high"))
                if sizes[group_of.get(c.code, c.code)] >= COMPLEX_GROUP_SIZE:
                    risky.append(Phrase("mig_risky_complex"))
                if risky:
                    constraints.append(
                        Constraint(
                            "pilot_wave",
                            (c.code,),
                            Phrase("mig_c_pilot_wave", code=c.code, why=Joined(risky, "item")),
                        )
                    )
                    flags[c.code].append("in the pilot wave: " + ", ".join(risky))
        if first_prod is not None and wave > first_prod:
            late = tuple(sorted(c.code for c in systems if phase_of(c) == NONPROD))
            if late:
                constraints.append(
                    Constraint(
                        "dev_test_after_production",
                        late,
                        Phrase("mig_c_dev_test_late", wave=wave, first=first_prod),
                    )
                )

    # Capacity, cumulative over the waves of each target.
    free = {t.id: t.free for t in targets}
    used: dict[str, Sizing] = defaultdict(Sizing)
    placed_on: dict[str, list[str]] = defaultdict(list)
    for code in sorted(wave_of, key=lambda c: (wave_of[c], c)):
        if code in by_code:
            used[by_code[code].target] = used[by_code[code].target] + by_code[code].sizing
            placed_on[by_code[code].target].append(code)
    for target_id, total in sorted(used.items()):
        limit = free.get(target_id, (None, None, None))
        if not _fits(Sizing(), total, limit):
            constraints.append(
                Constraint(
                    "capacity_exceeded",
                    tuple(placed_on[target_id]),
                    Phrase(
                        "mig_c_capacity_exceeded",
                        need=_size_text(total),
                        node=target_id,
                        free=_free_text(Sizing(), limit),
                    ),
                )
            )
            for code in placed_on[target_id]:
                flags[code].append(f"target {target_id} over capacity")

    group_sizes: dict[str, int] = defaultdict(int)
    for code in by_code:
        group_sizes[group_of.get(code, code)] += 1
    risk = {
        code: system_risk(
            candidate,
            group_size=group_sizes[group_of.get(code, code)],
            cross_wave=crossing.get(code, 0),
            staying_dependencies=staying_deps.get(code, 0),
            flags=flags.get(code, []),
        )
        for code, candidate in by_code.items()
    }
    return Review(errors=errors, constraints=constraints, cross_wave=cross_wave, risk=risk)


def system_risk(
    candidate: Candidate,
    *,
    group_size: int = 1,
    cross_wave: int = 0,
    staying_dependencies: int = 0,
    flags: Iterable[str] = (),
) -> tuple[str, list[str]]:
    """low / medium / high from weighted factors, with the factors that made it."""
    score = 0
    factors: list[str] = []

    def add(points: int, factor: str) -> None:
        nonlocal score
        score += points
        factors.append(factor)

    if candidate.criticality == "high":
        add(2, "high criticality")
    elif candidate.criticality == "medium":
        add(1, "medium criticality")
    if candidate.phase == PROD:
        add(1, "production")
    if candidate.mlps_level >= 3:
        add(1, f"MLPS level {candidate.mlps_level}: re-test after the move")
    if candidate.readiness == "needs_work":
        add(1, "needs work: " + (candidate.rules or "see assessment"))
    if candidate.strategy in ("replatform", "refactor"):
        add(1, f"strategy {candidate.strategy}")
    if group_size > 1:
        add(1, f"moves with {group_size - 1} other system(s)")
    if cross_wave:
        add(1, f"{cross_wave} dependencies cross waves")
    if staying_dependencies:
        add(1, f"{staying_dependencies} dependencies stay behind")
    for flag in flags:
        add(2, flag)
    level = "low" if score <= 1 else "medium" if score <= 3 else "high"
    return level, factors


# ---------------------------------------------------------------- bounds


@dataclass(frozen=True)
class LowerBound:
    """Simple lower bounds on the number of waves of a result."""

    chain: int  # longest chain of placed move groups (a bound under strict order)
    size: int  # ceil(placed systems / max systems per wave)


def lower_bound(result: PlanResult, edges: Iterable[Edge], parameters: Parameters) -> LowerBound:
    placed_groups = {result.group_of[c] for c in result.wave_of}
    preds, _ = _group_edges(result.group_of, edges)
    chain = longest_chain(placed_groups, preds)
    size = math.ceil(len(result.wave_of) / parameters.max_systems_per_wave)
    return LowerBound(chain=chain, size=size)
