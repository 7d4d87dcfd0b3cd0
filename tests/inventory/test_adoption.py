"""The KPI as pure functions: each rule, its order, and the switches. The policies (evidence-v1,
evidence-v2) classify alike; they differ in the evidence gathered (test_evidence_age.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from inventory.adoption import (
    CLASSIFIED_EXCLUDED,
    DEFAULT_POLICY,
    EVIDENCE_V1,
    EVIDENCE_V2,
    EXEMPT,
    NO_EVIDENCE,
    NO_NODE,
    OFF_CLOUD,
    ON_CLOUD,
    PARTIAL,
    RETIRED_EXCLUDED,
    PolicySwitches,
    SystemFacts,
    classify,
    compute_adoption,
    rate,
)

TODAY = date(2026, 11, 26)
ONE_CLOUD = frozenset({"core", "nj"})


def facts(**kwargs: object) -> SystemFacts:
    base: dict[str, object] = {"code": "S", "city": "南京市", "department_code": "D"}
    base.update(kwargs)
    return SystemFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (facts(evidence_nodes=frozenset({"core"})), ON_CLOUD),
        (facts(evidence_nodes=frozenset({"core", "nj"})), ON_CLOUD),
        (facts(evidence_nodes=frozenset({"core", "edu-dc"})), PARTIAL),
        (facts(evidence_nodes=frozenset({"edu-dc"})), OFF_CLOUD),
        (facts(), NO_EVIDENCE),
        # Classified beats everything, even evidence on the unified cloud.
        (facts(classified=True, evidence_nodes=frozenset({"core"})), CLASSIFIED_EXCLUDED),
        (facts(classified=True, lifecycle="retired"), CLASSIFIED_EXCLUDED),
        (facts(lifecycle="retired", evidence_nodes=frozenset({"core"})), RETIRED_EXCLUDED),
        # Retiring systems are still counted.
        (facts(lifecycle="retiring", evidence_nodes=frozenset({"edu-dc"})), OFF_CLOUD),
        # on_cloud is decided before an exemption is looked at.
        (facts(exemption_valid_until=TODAY, evidence_nodes=frozenset({"core"})), ON_CLOUD),
        (facts(exemption_valid_until=TODAY, evidence_nodes=frozenset({"core", "x"})), EXEMPT),
        (facts(exemption_valid_until=TODAY + timedelta(days=30)), EXEMPT),
        # An expired exemption is ignored.
        (
            facts(
                exemption_valid_until=TODAY - timedelta(days=1),
                evidence_nodes=frozenset({"edu-dc"}),
            ),
            OFF_CLOUD,
        ),
        # A declaration is not evidence by default.
        (facts(declared_node="core"), NO_EVIDENCE),
    ],
)
def test_classify_follows_the_policy_order(system: SystemFacts, expected: str) -> None:
    assert classify(system, one_cloud_nodes=ONE_CLOUD, today=TODAY) == expected


def test_trust_declared_only_fills_missing_evidence() -> None:
    trusting = PolicySwitches(trust_declared=True)
    declared_on = facts(declared_node="core")
    declared_off = facts(declared_node="edu-dc")
    evidence_off = facts(declared_node="core", evidence_nodes=frozenset({"edu-dc"}))

    assert (
        classify(declared_on, one_cloud_nodes=ONE_CLOUD, today=TODAY, switches=trusting) == ON_CLOUD
    )
    assert (
        classify(declared_off, one_cloud_nodes=ONE_CLOUD, today=TODAY, switches=trusting)
        == NO_EVIDENCE
    )
    # Evidence always wins over a declaration.
    assert (
        classify(evidence_off, one_cloud_nodes=ONE_CLOUD, today=TODAY, switches=trusting)
        == OFF_CLOUD
    )


def test_exempt_in_denominator_switch() -> None:
    systems = [
        facts(code="A", evidence_nodes=frozenset({"core"})),
        facts(code="B", exemption_valid_until=TODAY),
        facts(code="C"),
    ]
    with_exempt = compute_adoption(systems, one_cloud_nodes=ONE_CLOUD, today=TODAY)
    without = compute_adoption(
        systems,
        one_cloud_nodes=ONE_CLOUD,
        today=TODAY,
        switches=PolicySwitches(exempt_in_denominator=False),
    )

    assert (with_exempt.numerator, with_exempt.denominator, with_exempt.rate) == (1, 3, 0.3333)
    assert (without.numerator, without.denominator, without.rate) == (1, 2, 0.5)


def test_excluded_systems_leave_numerator_and_denominator() -> None:
    systems = [
        facts(code="A", classified=True, evidence_nodes=frozenset({"core"})),
        facts(code="B", lifecycle="retired", evidence_nodes=frozenset({"core"})),
    ]
    result = compute_adoption(systems, one_cloud_nodes=ONE_CLOUD, today=TODAY)

    assert (result.numerator, result.denominator, result.rate) == (0, 0, None)
    assert result.total.counts[CLASSIFIED_EXCLUDED] == 1
    assert result.total.counts[RETIRED_EXCLUDED] == 1


def test_node_grouping_counts_a_system_on_each_node_with_evidence() -> None:
    systems = [
        facts(code="A", evidence_nodes=frozenset({"core", "edu-dc"})),
        facts(code="B", declared_node="nj"),
        facts(code="C"),
    ]
    result = compute_adoption(systems, one_cloud_nodes=ONE_CLOUD, today=TODAY, by="node")

    keyed = {g.key: dict(g.counts) for g in result.groups}
    assert keyed == {
        "core": {PARTIAL: 1},
        "edu-dc": {PARTIAL: 1},
        "nj": {NO_EVIDENCE: 1},
        NO_NODE: {NO_EVIDENCE: 1},
    }


def test_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown grouping"):
        compute_adoption([facts()], one_cloud_nodes=ONE_CLOUD, today=TODAY, by="planet")


def test_rate_rounds_to_four_places_and_is_none_without_denominator() -> None:
    assert rate(41, 57) == 0.7193
    assert rate(0, 0) is None


def test_the_result_names_its_policy_and_the_default_is_evidence_v2() -> None:
    systems = [facts(code="A", evidence_nodes=frozenset({"core"}))]

    assert DEFAULT_POLICY == EVIDENCE_V2 == "evidence-v2"
    assert compute_adoption(systems, one_cloud_nodes=ONE_CLOUD, today=TODAY).policy == EVIDENCE_V2
    older = compute_adoption(systems, one_cloud_nodes=ONE_CLOUD, today=TODAY, policy=EVIDENCE_V1)
    assert (older.policy, older.numerator) == ("evidence-v1", 1)
