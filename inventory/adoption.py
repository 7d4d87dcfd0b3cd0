"""The KPI 非涉密系统上云率 under the evidence policies: pure functions over systems, evidence."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

# The KPI policies (DESIGN.md). They classify alike; they differ in which live rows count as
# evidence: every one (v1), or only those whose scope listed completely within the maximum
# evidence age (v2, inventory.evidence.expired_scopes). A policy is never changed in place:
# a new rule is a new version, and the old one stays computable.
EVIDENCE_V1 = "evidence-v1"
EVIDENCE_V2 = "evidence-v2"
POLICIES = (EVIDENCE_V1, EVIDENCE_V2)
DEFAULT_POLICY = EVIDENCE_V2

ON_CLOUD = "on_cloud"
EXEMPT = "exempt"
PARTIAL = "partial"
OFF_CLOUD = "off_cloud"
NO_EVIDENCE = "no_evidence"
CLASSIFIED_EXCLUDED = "classified_excluded"
RETIRED_EXCLUDED = "retired_excluded"
STATUSES = (
    ON_CLOUD,
    EXEMPT,
    PARTIAL,
    OFF_CLOUD,
    NO_EVIDENCE,
    CLASSIFIED_EXCLUDED,
    RETIRED_EXCLUDED,
)
GROUPINGS = ("province", "city", "department", "node")
# Group key for systems that no node can be named for under `--by node`.
NO_NODE = "(none)"


@dataclass(frozen=True)
class PolicySwitches:
    """The documented switches of the evidence policies; defaults are the policies' own."""

    exempt_in_denominator: bool = True
    trust_declared: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {
            "exempt_in_denominator": self.exempt_in_denominator,
            "trust_declared": self.trust_declared,
        }


@dataclass(frozen=True)
class SystemFacts:
    """What the KPI needs to know about one registered system."""

    code: str
    city: str
    department_code: str
    classified: bool = False
    lifecycle: str = "active"
    exemption_valid_until: date | None = None
    declared_node: str | None = None
    # Nodes where the inventory sees live evidence of the system (DESIGN.md, Evidence).
    evidence_nodes: frozenset[str] = frozenset()


def classify(
    system: SystemFacts,
    *,
    one_cloud_nodes: frozenset[str],
    today: date,
    switches: PolicySwitches = PolicySwitches(),
) -> str:
    """Exactly one status per system, decided in the order DESIGN.md fixes."""
    if system.classified:
        return CLASSIFIED_EXCLUDED
    if system.lifecycle == "retired":
        return RETIRED_EXCLUDED
    on = {n for n in system.evidence_nodes if n in one_cloud_nodes}
    off = system.evidence_nodes - on
    if on and not off:
        return ON_CLOUD
    if system.exemption_valid_until is not None and system.exemption_valid_until >= today:
        return EXEMPT
    if on and off:
        return PARTIAL
    if off:
        return OFF_CLOUD
    # Self-declaration is never evidence unless the operator turns trust_declared on.
    if switches.trust_declared and system.declared_node in one_cloud_nodes:
        return ON_CLOUD
    return NO_EVIDENCE


def denominator_statuses(switches: PolicySwitches) -> tuple[str, ...]:
    if switches.exempt_in_denominator:
        return (ON_CLOUD, EXEMPT, PARTIAL, OFF_CLOUD, NO_EVIDENCE)
    return (ON_CLOUD, PARTIAL, OFF_CLOUD, NO_EVIDENCE)


@dataclass
class Tally:
    """Numerator, denominator and per-status counts of one set of systems."""

    key: str
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, status: str) -> None:
        self.counts[status] += 1

    def numerator(self) -> int:
        return self.counts[ON_CLOUD]

    def denominator(self, switches: PolicySwitches) -> int:
        return sum(self.counts[s] for s in denominator_statuses(switches))

    def as_dict(self, switches: PolicySwitches) -> dict[str, object]:
        denominator = self.denominator(switches)
        return {
            "key": self.key,
            "numerator": self.numerator(),
            "denominator": denominator,
            "rate": rate(self.numerator(), denominator),
            "counts": {s: self.counts[s] for s in STATUSES},
        }


def rate(numerator: int, denominator: int) -> float | None:
    """The ratio rounded to 4 places; None when nothing is in the denominator."""
    return round(numerator / denominator, 4) if denominator else None


@dataclass
class AdoptionResult:
    """The KPI for the province, optional groups, and each system's status."""

    switches: PolicySwitches
    total: Tally
    groups: list[Tally]
    statuses: dict[str, str]
    policy: str = DEFAULT_POLICY

    @property
    def numerator(self) -> int:
        return self.total.numerator()

    @property
    def denominator(self) -> int:
        return self.total.denominator(self.switches)

    @property
    def rate(self) -> float | None:
        return rate(self.numerator, self.denominator)


def group_keys(system: SystemFacts, by: str, province: str) -> list[str]:
    """The groups a system counts in. Under `node` a system counts on every node that holds
    evidence of it (a partial system counts on both sides); without evidence, on its declared
    node if any, else under NO_NODE."""
    if by == "province":
        return [province]
    if by == "city":
        return [system.city]
    if by == "department":
        return [system.department_code]
    if by == "node":
        if system.evidence_nodes:
            return sorted(system.evidence_nodes)
        return [system.declared_node or NO_NODE]
    raise ValueError(f"unknown grouping {by!r}; expected one of {', '.join(GROUPINGS)}")


def compute_adoption(
    systems: Iterable[SystemFacts],
    *,
    one_cloud_nodes: frozenset[str],
    today: date,
    switches: PolicySwitches = PolicySwitches(),
    by: str | None = None,
    province: str = "江苏省",
    policy: str = DEFAULT_POLICY,
) -> AdoptionResult:
    """Classify every system and tally the KPI, overall and per group. `policy` only names the
    policy the facts were gathered under: the policies differ in the evidence, not here."""
    total = Tally(key=province)
    groups: dict[str, Tally] = defaultdict(lambda: Tally(key=""))
    statuses: dict[str, str] = {}
    for system in systems:
        status = classify(system, one_cloud_nodes=one_cloud_nodes, today=today, switches=switches)
        statuses[system.code] = status
        total.add(status)
        if by is not None:
            for key in group_keys(system, by, province):
                groups[key].key = key
                groups[key].add(status)
    ordered = [groups[k] for k in sorted(groups)]
    return AdoptionResult(
        switches=switches, total=total, groups=ordered, statuses=statuses, policy=policy
    )
