"""Property tests: for random graphs and capacities the planner never breaks its rules."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from migrate.planner import (
    NONPROD,
    PROD,
    Candidate,
    Edge,
    Parameters,
    PlanResult,
    Target,
    plan_waves,
    review,
)
from migrate.sizing import Sizing

PROPERTY_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def planning_inputs(draw: st.DrawFn) -> tuple[list[Candidate], list[Edge], Target, Parameters]:
    count = draw(st.integers(min_value=1, max_value=30))
    codes = [f"S{i:02}" for i in range(count)]
    candidates = [
        Candidate(
            code=code,
            target="core",
            environment=draw(st.sampled_from(["dev", "test", "production", None])),
            criticality=draw(st.sampled_from(["high", "medium", "low", None])),
            readiness=draw(st.sampled_from(["ready"] * 6 + ["needs_work", "blocked", "exempt"])),
            strategy=draw(st.sampled_from(["rehost"] * 6 + ["replatform", "retire", "retain"])),
            sizing=Sizing(
                draw(st.integers(0, 16)), draw(st.integers(0, 64)), draw(st.integers(0, 500))
            ),
        )
        for code in codes
    ]
    pairs = st.tuples(st.sampled_from(codes), st.sampled_from(codes)).filter(lambda p: p[0] != p[1])
    edges = [
        Edge(a, b, draw(st.sampled_from(["calls", "data", "shared_infra"])),
             draw(st.sampled_from(["soft", "soft", "soft", "hard"])))
        for a, b in draw(st.lists(pairs, max_size=count * 2))
    ]  # fmt: skip
    limit = st.one_of(st.none(), st.integers(0, 300).map(float))
    target = Target("core", draw(limit), draw(limit), draw(limit) if draw(st.booleans()) else None)
    parameters = Parameters(
        max_systems_per_wave=draw(st.integers(1, 8)), strict_order=draw(st.booleans())
    )
    return candidates, edges, target, parameters


def _members_by_wave(result: PlanResult) -> dict[int, list[str]]:
    waves: dict[int, list[str]] = defaultdict(list)
    for code, wave in result.wave_of.items():
        waves[wave].append(code)
    return waves


@PROPERTY_SETTINGS
@given(planning_inputs())
def test_planner_never_breaks_order_groups_or_readiness(inputs) -> None:  # type: ignore[no-untyped-def]
    candidates, edges, target, parameters = inputs

    result = plan_waves(candidates, edges, [target], parameters)
    checked = review(candidates, edges, [target], parameters, result.group_of, result.wave_of)

    # Dependency order (same or earlier wave; earlier under strict order), whole move groups,
    # and only ready / needs_work systems with a moving strategy in a wave.
    assert checked.errors == []
    by_code = {c.code: c for c in candidates}
    assert all(by_code[code].placeable for code in result.wave_of)


@PROPERTY_SETTINGS
@given(planning_inputs())
def test_planner_respects_wave_size_capacity_and_phases(inputs) -> None:  # type: ignore[no-untyped-def]
    candidates, edges, target, parameters = inputs
    by_code = {c.code: c for c in candidates}

    result = plan_waves(candidates, edges, [target], parameters)

    waves = _members_by_wave(result)
    assert sorted(waves) == list(range(1, result.waves + 1))  # no empty waves
    for members in waves.values():
        assert len(members) <= parameters.max_systems_per_wave
        # Never mixed, except inside one move group that holds both (it cannot be split).
        assert len({result.groups[result.group_of[c]].phase for c in members}) == 1
    total = Sizing()
    for code in result.wave_of:
        total = total + by_code[code].sizing
    for used, limit in zip(
        (total.vcpu, total.memory_gib, total.storage_gib), target.free, strict=True
    ):
        assert limit is None or used <= limit + 1e-9


@PROPERTY_SETTINGS
@given(planning_inputs())
def test_pilot_wave_and_dev_test_first(inputs) -> None:  # type: ignore[no-untyped-def]
    candidates, edges, target, parameters = inputs

    result = plan_waves(candidates, edges, [target], parameters)

    for code, wave in result.wave_of.items():
        group = result.groups[result.group_of[code]]
        if wave == 1 and group.pilot_excluded:
            assert "no low-risk group was available" in "; ".join(result.notes[code])
    prod_waves = [
        w
        for w, ms in _members_by_wave(result).items()
        if result.groups[result.group_of[ms[0]]].phase == PROD
    ]
    if not prod_waves:
        return
    first_prod = min(prod_waves)
    # A dev/test group after a production wave must need production (or pilot-held) systems.
    preds: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        a, b = result.group_of[edge.from_system], result.group_of[edge.to_system]
        if a != b:
            preds[a].add(b)

    def needs_production(gid: str) -> bool:
        seen, stack = set(), [gid]
        while stack:
            current = stack.pop()
            for pred in preds[current]:
                group = result.groups[pred]
                if group.phase == PROD or (first_prod == 1 and group.pilot_excluded):
                    return True
                if pred not in seen:
                    seen.add(pred)
                    stack.append(pred)
        return False

    for gid, group in result.groups.items():
        wave = result.wave_of.get(group.members[0])
        if wave is None or group.phase != NONPROD or wave < first_prod:
            continue
        assert needs_production(gid) or (first_prod == 1 and group.pilot_excluded)


@PROPERTY_SETTINGS
@given(planning_inputs())
def test_every_placeable_system_is_placed_or_truly_cannot_be(inputs) -> None:  # type: ignore[no-untyped-def]
    candidates, edges, target, parameters = inputs
    by_code = {c.code: c for c in candidates}

    result = plan_waves(candidates, edges, [target], parameters)

    used = Sizing()
    for code in result.wave_of:
        used = used + by_code[code].sizing
    assert set(result.wave_of) | set(result.unplaced) == set(by_code)
    for code, reason in result.unplaced.items():
        group = result.groups[result.group_of[code]]
        if not all(by_code[m].placeable for m in group.members):
            continue  # stays: blocked, exempt, out of scope, retire or retain in the group
        if "exceeds the wave size" in reason:
            assert len(group.members) > parameters.max_systems_per_wave
        elif "waits for" in reason:
            waited = reason.split("waits for ")[1].split(",")[0]
            assert waited not in result.wave_of
        else:
            # Not enough capacity left even now, at the end of the plan.
            assert "left" in reason
            grown = used + group.sizing
            assert any(
                limit is not None and need > limit + 1e-9
                for need, limit in zip(
                    (grown.vcpu, grown.memory_gib, grown.storage_gib), target.free, strict=True
                )
            )


@PROPERTY_SETTINGS
@given(planning_inputs(), st.randoms(use_true_random=False))
def test_plans_are_deterministic(inputs, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    candidates, edges, target, parameters = inputs

    first = plan_waves(candidates, edges, [target], parameters)
    rng.shuffle(candidates)
    rng.shuffle(edges)
    second = plan_waves(candidates, edges, [target], parameters)

    assert (first.wave_of, first.unplaced, first.notes) == (
        second.wave_of,
        second.unplaced,
        second.notes,
    )


def _needs_production(result: PlanResult, edges: list[Edge]) -> dict[str, bool]:
    """Move group → whether a production group is among its dependencies (transitively)."""
    preds: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        a, b = result.group_of[edge.from_system], result.group_of[edge.to_system]
        if a != b:
            preds[a].add(b)
    found: dict[str, bool] = {}
    for gid in result.groups:
        seen, stack, needs = {gid}, [gid], False
        while stack and not needs:
            for pred in preds[stack.pop()]:
                if result.groups[pred].phase == PROD:
                    needs = True
                elif pred not in seen:
                    seen.add(pred)
                    stack.append(pred)
        found[gid] = needs
    return found


# Issue #16: a ready high-criticality dev system with no dependencies (kept out of the pilot
# wave, which production then opened) landed after every production wave.
ISSUE_16 = (
    [Candidate("JS-FIN-007", "core", environment="dev", criticality="high")]
    + [Candidate(f"P{i}", "core", environment="production", criticality="low") for i in range(7)],
    [],
    Target("core"),
    Parameters(max_systems_per_wave=3),
)


@PROPERTY_SETTINGS
@given(planning_inputs())
@example(ISSUE_16)
@example(
    (
        [
            Candidate("D", "core", environment="dev"),
            Candidate("P", "core", environment="production"),
        ],
        [Edge("D", "P", "calls", "hard")],
        Target("core"),
        Parameters(),
    )
)
def test_dev_test_needing_no_production_never_waits_behind_production(inputs) -> None:  # type: ignore[no-untyped-def]
    """A placed dev/test group with no production system among its dependencies comes before
    every production wave, except a production pilot wave 1 (taken when no dev/test group
    could open the plan); and the planner's own plan reports no mixed wave."""
    candidates, edges, target, parameters = inputs

    result = plan_waves(candidates, edges, [target], parameters)

    needs = _needs_production(result, edges)
    prod_waves = sorted(
        {w for c, w in result.wave_of.items() if result.groups[result.group_of[c]].phase == PROD}
    )
    later_prod = [w for w in prod_waves if w > 1]
    for gid, group in result.groups.items():
        wave = result.wave_of.get(group.members[0])
        if wave is None or group.phase != NONPROD or needs[gid] or not later_prod:
            continue
        assert wave < later_prod[0], (gid, wave, prod_waves)
    checked = review(candidates, edges, [target], parameters, result.group_of, result.wave_of)
    assert not [c for c in checked.constraints if c.kind == "mixed_wave"]
