"""What the inventory's read routes answer: XPublic models, never a table row."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from inventory.queries import FoundSystem, NodeFound

Status = Literal[
    "on_cloud",
    "exempt",
    "partial",
    "off_cloud",
    "no_evidence",
    "classified_excluded",
    "retired_excluded",
]


class AdoptionGroupPublic(BaseModel):
    key: str = Field(description="The city name, department code or node id.")
    numerator: int
    denominator: int
    rate: float | None = Field(description="numerator ÷ denominator; null when it is 0.")
    counts: dict[str, int]


class AdoptionPublic(BaseModel):
    """`yiyun report adoption --format json`, field for field (DESIGN.md)."""

    policy: str
    as_of: str
    numerator: int
    denominator: int
    rate: float | None
    counts: dict[str, int]
    by: str | None = None
    groups: list[AdoptionGroupPublic] | None = None
    switches: dict[str, bool]
    stale_nodes: list[str]
    expired_scopes: list[str]

    @classmethod
    def of(cls, report: dict[str, Any]) -> AdoptionPublic:
        """The report's fields that it has (a report without --by has no groups)."""
        groups = report.get("groups")
        if groups is not None:
            report = {**report, "groups": _validated_groups(groups)}
        return cls.model_validate(report)


# The KPI's rows are computed once per ledger change and the same list is handed to every
# request (inventory.queries.KpiView.contract): a thousand department rows are validated once
# per list, not once per request. Kept by identity, with the list itself, so an id is never
# reused while kept; short lists (a reader's own departments) validate in microseconds.
_GROUPS_KEPT = 8
_LONG_GROUPS = 100
_kept_groups: OrderedDict[int, tuple[list[Any], list[AdoptionGroupPublic]]] = OrderedDict()
_kept_lock = threading.Lock()


def _validated_groups(groups: list[Any]) -> list[AdoptionGroupPublic]:
    with _kept_lock:
        kept = _kept_groups.get(id(groups))
        if kept is not None and kept[0] is groups:
            _kept_groups.move_to_end(id(groups))
            return kept[1]
    models = [AdoptionGroupPublic.model_validate(group) for group in groups]
    if len(groups) >= _LONG_GROUPS:
        with _kept_lock:
            _kept_groups[id(groups)] = (groups, models)
            while len(_kept_groups) > _GROUPS_KEPT:
                _kept_groups.popitem(last=False)
    return models


class SystemPublic(BaseModel):
    code: str
    name: str
    department_code: str
    department: str | None
    city: str
    mlps_level: int
    data_level: str
    network_zone: str | None
    lifecycle: str
    status: Status = Field(description="The KPI status under the policy in force.")
    nodes: list[str] = Field(description="Nodes holding live evidence of the system.")
    declared_node: str | None
    exempt: bool = Field(description="It has an exemption valid today.")
    exemption_valid_until: date | None

    @classmethod
    def of(cls, found: FoundSystem) -> SystemPublic:
        return cls.model_validate(found.as_row())


class EvidenceResourcePublic(BaseModel):
    source: str
    kind: str
    name: str | None
    native_id: str
    namespace: str | None
    state: str | None
    last_seen_at: datetime
    counted: bool = Field(
        description="False under evidence-v2 when its scope has not listed completely lately."
    )


class NodeEvidencePublic(BaseModel):
    node: str
    one_cloud: bool
    resources: list[EvidenceResourcePublic]


class SystemDetail(SystemPublic):
    environment: str | None
    criticality: str | None
    crypto_assessed_on: date | None
    contact: str | None
    exemption_reason: str | None
    exemption_doc: str | None
    evidence: list[NodeEvidencePublic] = Field(description="Its live evidence resources, per node.")
    evidence_truncated: bool = Field(description="More resources exist than are listed.")

    @classmethod
    def of(cls, found: FoundSystem) -> SystemDetail:
        return cls.model_validate(found.as_row(), from_attributes=True)


class SourcePublic(BaseModel):
    id: str | None
    kind: str | None


class NodePublic(BaseModel):
    id: str
    name: str
    level: str
    one_cloud: bool
    city: str | None
    owner_department: str | None
    mlps_level: int | None
    dedicated_level4_pool: bool
    zones: list[str]
    frozen_since: date | None
    capacity_vcpu: float | None
    capacity_memory_gib: float | None
    capacity_storage_gib: float | None
    allocated_vcpu: float
    allocated_memory_gib: float
    allocated_storage_gib: float
    sources: list[SourcePublic]
    last_complete_scan: datetime | None = Field(
        description="End of the last scan run in which every scope of the node listed."
    )
    stale: bool = Field(description="Its last complete scan is older than the freshness limit.")
    retired_at: datetime | None
    retired_reason: str | None

    @classmethod
    def of(cls, found: NodeFound) -> NodePublic:
        vcpu, memory, storage = found.allocated or (0.0, 0.0, 0.0)
        fields: dict[str, Any] = {
            **found.row,
            "allocated_vcpu": vcpu,
            "allocated_memory_gib": memory,
            "allocated_storage_gib": storage,
            "last_complete_scan": found.last_complete_scan,
            "stale": found.stale,
        }
        return cls.model_validate(fields)


class ScanRunPublic(BaseModel):
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    nodes: list[str] | None
    scopes_total: int
    scopes_failed: int
    error_message: str | None


class ScopeResultPublic(BaseModel):
    node_id: str
    source: str
    kind: str
    scope: str
    status: str = Field(description="ok, partial, denied, throttled, error, held, retired, not_run")
    items: int
    pages: int
    api_calls: int
    retries: int
    deleted: int
    held: int
    sweep: str | None = None
    duration_seconds: float | None = None
    error_code: str | None = None
    error_message: str | None = None


class ScanRunDetail(ScanRunPublic):
    scopes: list[ScopeResultPublic]


class ViolationPublic(BaseModel):
    """A row of `yiyun report violations --format json`."""

    rule: str = Field(description="freeze, placement or unattributed")
    node: str
    kind: str
    native_id: str | None = None
    name: str | None = None
    count: int
    created: datetime | None = None
    frozen_since: date | None = None
    basis: str | None = None


class SnapshotPublic(BaseModel):
    """A row of `yiyun report adoption --history --format json`."""

    id: int
    as_of: datetime
    policy: str
    policy_change: str | None
    numerator: int
    denominator: int
    rate: float | None
    exempt_in_denominator: bool | None
    trust_declared: bool | None
