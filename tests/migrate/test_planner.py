"""The pure wave planner: move groups, ordering, phases, pilot wave, size, capacity, review."""

from __future__ import annotations

import itertools
import random

import pytest

from migrate.graph import longest_chain, strongly_connected, topological_order
from migrate.planner import (
    Candidate,
    Edge,
    Parameters,
    Target,
    lower_bound,
    plan_waves,
    review,
    system_risk,
)
from migrate.sizing import Sizing

T = Target("core")


def c(code: str, **fields: object) -> Candidate:
    return Candidate(code=code, target="core", **fields)  # type: ignore[arg-type]


def plan(candidates, edges=(), targets=(T,), **parameters):  # type: ignore[no-untyped-def]
    return plan_waves(candidates, edges, targets, Parameters(**parameters))


# ---------------------------------------------------------------- graph


def test_components_of_a_cycle_a_two_way_edge_and_a_chain() -> None:
    edges = {"A": ["B"], "B": ["C"], "C": ["A"], "D": ["E"], "E": ["D"], "F": ["G"]}

    components = strongly_connected("ABCDEFG", edges)

    assert sorted(components) == [["A", "B", "C"], ["D", "E"], ["F"], ["G"]]


def test_components_do_not_depend_on_insertion_order() -> None:
    nodes = [f"S{i:03}" for i in range(200)]
    rng = random.Random(7)
    edges: dict[str, list[str]] = {}
    for _ in range(400):
        a, b = rng.sample(nodes, 2)
        edges.setdefault(a, []).append(b)
    shuffled = {k: list(reversed(v)) for k, v in reversed(list(edges.items()))}

    assert strongly_connected(nodes, edges) == strongly_connected(list(reversed(nodes)), shuffled)


def test_components_survive_deep_chains_without_recursion() -> None:
    nodes = [f"S{i:05}" for i in range(20_000)]
    edges = {a: [b] for a, b in itertools.pairwise(nodes)}
    edges[nodes[-1]] = [nodes[0]]

    assert strongly_connected(nodes, edges) == [sorted(nodes)]


def test_topological_order_and_longest_chain() -> None:
    preds = {"B": ["A"], "C": ["B"], "D": ["A"]}

    assert topological_order("ABCD", preds) == ["A", "B", "C", "D"]
    assert longest_chain("ABCD", preds) == 3
    with pytest.raises(ValueError, match="cycle"):
        topological_order("AB", {"A": ["B"], "B": ["A"]})


# ---------------------------------------------------------------- move groups


def test_cycles_two_way_and_hard_dependencies_move_together() -> None:
    systems = [c(x) for x in "ABCDEFG"]
    edges = [
        Edge("A", "B"), Edge("B", "C"), Edge("C", "A"),  # cycle
        Edge("D", "E"), Edge("E", "D"),  # two-way
        Edge("F", "G", "calls", "hard"),  # hard: must move together
    ]  # fmt: skip

    result = plan(systems, edges)

    groups = {tuple(g.members) for g in result.groups.values()}
    assert groups == {("A", "B", "C"), ("D", "E"), ("F", "G")}
    assert result.groups["A"].reasons == ("cycle of dependencies",)
    assert result.groups["F"].reasons == ("hard dependency",)
    assert len({result.wave_of[x] for x in "ABC"}) == 1


def test_a_hard_edge_that_closes_a_cycle_between_groups_merges_them() -> None:
    # A→B, B→C soft, C—A hard: as groups {A,C} and {B} they would need each other first.
    edges = [Edge("A", "B"), Edge("B", "C"), Edge("C", "A", "data", "hard")]

    result = plan([c("A"), c("B"), c("C")], edges)

    assert {tuple(g.members) for g in result.groups.values()} == {("A", "B", "C")}


# ---------------------------------------------------------------- ordering and phases


def test_dependency_targets_are_never_later_and_strict_order_makes_them_earlier() -> None:
    systems = [c("APP"), c("DB"), c("AUTH")]
    edges = [Edge("APP", "DB"), Edge("APP", "AUTH"), Edge("AUTH", "DB")]

    same = plan(systems, edges, max_systems_per_wave=10)
    strict = plan(systems, edges, max_systems_per_wave=10, strict_order=True)

    assert same.wave_of == {"APP": 1, "AUTH": 1, "DB": 1}
    assert strict.wave_of == {"DB": 1, "AUTH": 2, "APP": 3}
    assert lower_bound(strict, edges, Parameters(10, strict_order=True)).chain == 3


def test_dev_and_test_go_first_and_waves_never_mix() -> None:
    systems = [c("P1", environment="production"), c("D1", environment="dev"),
               c("T1", environment="test"), c("U1")]  # fmt: skip

    result = plan(systems, max_systems_per_wave=10)

    assert result.wave_of == {"D1": 1, "T1": 1, "P1": 2, "U1": 2}
    assert "(dev/test wave)" in result.notes["D1"][0]
    assert "dev/test waves go first" in "; ".join(result.notes["P1"])


def test_dev_system_that_needs_production_waits_and_is_reported() -> None:
    systems = [c("P1", environment="production"), c("D1", environment="dev")]

    result = plan(systems, [Edge("D1", "P1")], max_systems_per_wave=10)
    checked = review(systems, [Edge("D1", "P1")], [T], Parameters(10), result.group_of,
                     result.wave_of)  # fmt: skip

    assert result.wave_of == {"P1": 1, "D1": 2}
    assert [x.kind for x in checked.constraints] == ["dev_test_after_production"]
    assert checked.errors == []


def test_high_criticality_and_complex_groups_stay_out_of_the_pilot_wave() -> None:
    systems = [c("H", criticality="high"), c("L", criticality="low"),
               c("X1"), c("X2"), c("X3")]  # fmt: skip
    edges = [Edge("X1", "X2"), Edge("X2", "X3"), Edge("X3", "X1")]

    result = plan(systems, edges, max_systems_per_wave=10)

    assert result.wave_of["L"] == 1
    assert result.wave_of["H"] == 2 and result.wave_of["X1"] == 2
    assert "kept out of pilot wave 1: H is high criticality" in "; ".join(result.notes["H"])


def test_pilot_wave_is_relaxed_only_when_nothing_else_can_open() -> None:
    systems = [c("H1", criticality="high"), c("H2", criticality="high")]

    result = plan(systems, max_systems_per_wave=10)
    checked = review(systems, [], [T], Parameters(10), result.group_of, result.wave_of)

    assert result.wave_of == {"H1": 1, "H2": 1}
    assert "no low-risk group was available" in "; ".join(result.notes["H1"])
    assert {x.kind for x in checked.constraints} == {"pilot_wave"}


# ---------------------------------------------------------------- size, capacity, blocked


def test_waves_respect_their_size_and_groups_are_never_split() -> None:
    systems = [c(f"S{i}") for i in range(7)] + [c("G1"), c("G2")]

    result = plan(systems, [Edge("G1", "G2", "calls", "hard")], max_systems_per_wave=3)

    per_wave: dict[int, list[str]] = {}
    for code, wave in result.wave_of.items():
        per_wave.setdefault(wave, []).append(code)
    assert all(len(v) <= 3 for v in per_wave.values())
    assert result.wave_of["G1"] == result.wave_of["G2"]
    assert result.waves == 3


def test_a_group_bigger_than_a_wave_is_not_placed_and_says_why() -> None:
    systems = [c("A"), c("B"), c("C"), c("D")]
    edges = [Edge("A", "B"), Edge("B", "A"), Edge("B", "C", "calls", "hard"), Edge("D", "A")]

    result = plan(systems, edges, max_systems_per_wave=2)

    assert result.wave_of == {}
    assert "exceeds the wave size 2" in result.unplaced["A"]
    assert result.unplaced["D"] == "not placed: waits for A, which is not placed"


def test_capacity_is_never_exceeded_and_dependents_wait() -> None:
    systems = [
        c("A", sizing=Sizing(60, 0, 0)),
        c("B", sizing=Sizing(60, 0, 0)),
        c("C", sizing=Sizing(30, 0, 0)),
        c("D", sizing=Sizing(1, 0, 0)),
        c("E", sizing=Sizing(1, 0, 0)),
    ]
    # A goes first (D needs it); then B no longer fits, and E, which needs B, waits for it.
    edges = [Edge("D", "A"), Edge("E", "B")]

    result = plan(systems, edges, targets=[Target("core", 100, None, None)])

    assert result.wave_of == {"A": 1, "C": 1, "D": 1}
    assert "target core has only 40 vCPU" in result.unplaced["B"]
    assert result.unplaced["E"] == "not placed: waits for B, which is not placed"
    assert result.used["core"].vcpu == 91


def test_blocked_systems_are_never_placed_and_hold_their_group() -> None:
    systems = [
        c("OK"),
        c("BL", readiness="blocked", rules="R4 blocked: holds core data"),
        c("PARTNER"),
        c("EX", readiness="exempt"),
        c("RET", strategy="retire"),
        c("NW", readiness="needs_work"),
        c("USER"),
    ]
    edges = [Edge("PARTNER", "BL", "shared_infra", "hard"), Edge("USER", "BL")]

    result = plan(systems, edges)
    checked = review(systems, edges, [T], Parameters(), result.group_of, result.wave_of)

    assert set(result.wave_of) == {"OK", "NW", "USER"}
    assert result.unplaced["BL"] == "not placed: readiness blocked (R4 blocked: holds core data)"
    assert "moves together with BL, which stays" in result.unplaced["PARTNER"]
    assert result.unplaced["RET"] == "not placed: strategy retire"
    assert {x.kind for x in checked.constraints} == {"dependency_stays"}


def test_same_inputs_give_the_same_plan_in_any_order() -> None:
    rng = random.Random(3)
    systems = [
        c(f"S{i:03}", environment=rng.choice(["dev", "test", "production", None]),
          criticality=rng.choice(["high", "low", None]), sizing=Sizing(rng.randint(1, 8), 2, 10))
        for i in range(300)
    ]  # fmt: skip
    edges = [Edge(*rng.sample([s.code for s in systems], 2)) for _ in range(500)]
    targets = [Target("core", 900, None, None)]

    first = plan_waves(systems, edges, targets, Parameters(12))
    rng.shuffle(systems)
    rng.shuffle(edges)
    second = plan_waves(systems, edges, targets, Parameters(12))

    assert first.wave_of == second.wave_of
    assert first.unplaced == second.unplaced
    assert first.notes == second.notes


# ---------------------------------------------------------------- review of hand edits


def test_review_finds_every_kind_of_hand_edit_error() -> None:
    systems = [c("A"), c("B"), c("G1"), c("G2"), c("BL", readiness="blocked"), c("LATE")]
    edges = [Edge("A", "B"), Edge("G1", "G2", "calls", "hard"), Edge("LATE", "A")]
    group_of = {"A": "A", "B": "B", "G1": "G1", "G2": "G1", "BL": "BL", "LATE": "LATE"}
    wave_of = {"A": 1, "B": 2, "G1": 1, "G2": 2, "BL": 1, "LATE": 1}

    checked = review(systems, edges, [T], Parameters(), group_of, wave_of)

    # A needs B later; G1 needs G2 later and their group is split; BL cannot move.
    assert sorted(e.kind for e in checked.errors) == [
        "dependency_order",
        "dependency_order",
        "group_split",
        "not_placeable",
    ]
    # Under strict order LATE may not share a wave with A, which it needs.
    strict = review(systems, edges, [T], Parameters(strict_order=True), group_of, wave_of)
    assert sorted(e.kind for e in strict.errors) == [
        "dependency_order",
        "dependency_order",
        "dependency_order",
        "group_split",
        "not_placeable",
    ]


def test_review_reports_soft_constraints_and_raises_risk() -> None:
    systems = [
        c("P", environment="production", sizing=Sizing(80, 0, 0)),
        c("D", environment="dev", sizing=Sizing(40, 0, 0)),
        c("H", criticality="high"),
    ]
    wave_of = {"P": 1, "D": 1, "H": 1}

    checked = review(systems, [], [Target("core", 100, None, None)], Parameters(2),
                     {s.code: s.code for s in systems}, wave_of)  # fmt: skip

    assert {x.kind for x in checked.constraints} == {
        "wave_size",
        "mixed_wave",
        "pilot_wave",
        "capacity_exceeded",
    }
    assert checked.risk["H"][0] == "high"
    assert any("over capacity" in f for f in checked.risk["P"][1])


def test_risk_levels() -> None:
    assert system_risk(c("A", environment="dev"))[0] == "low"
    assert system_risk(c("B", environment="production", mlps_level=3))[0] == "medium"
    assert system_risk(c("C", criticality="high", mlps_level=3, readiness="needs_work"))[0] == (
        "high"
    )
