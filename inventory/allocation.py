"""The allocated-capacity rule: which live rows make up what a node has handed out."""

from __future__ import annotations

from collections.abc import Mapping

# README.md, "Allocated capacity". IaaS rows are what the node's pool handed out. Kubernetes
# requests count only on a node that shows no IaaS rows for that dimension: elsewhere the
# cluster's machines are VMs and volumes counted already. k8s_node rows never count — a
# cluster node's capacity is part of the node, not a tenant's share — nor do quotas (a
# ceiling), cronjobs (pods come and go) or statefulsets' storage (its claims are pvc rows).
IAAS_COMPUTE_KINDS = ("vm", "db_instance")
K8S_COMPUTE_KINDS = ("deployment", "statefulset", "daemonset")
IAAS_BLOCK_STORAGE_KINDS = ("volume", "db_instance")
OBJECT_STORAGE_KINDS = ("bucket",)
K8S_STORAGE_KINDS = ("pvc",)
COMPUTE_KINDS = (*IAAS_COMPUTE_KINDS, *K8S_COMPUTE_KINDS)
STORAGE_KINDS = (*IAAS_BLOCK_STORAGE_KINDS, *OBJECT_STORAGE_KINDS, *K8S_STORAGE_KINDS)
ALLOCATION_KINDS = tuple(sorted({*COMPUTE_KINDS, *STORAGE_KINDS}))

# kind → summed (vCPU, memory GiB, storage GiB) of one node's live rows of that kind
KindSums = Mapping[str, tuple[float, float, float]]


def node_allocation(by_kind: KindSums) -> tuple[float, float, float]:
    """(vCPU, memory GiB, storage GiB) allocated on one node, from its per-kind sums (only
    kinds that have live rows appear in `by_kind`)."""
    compute = (
        IAAS_COMPUTE_KINDS if any(k in by_kind for k in IAAS_COMPUTE_KINDS) else K8S_COMPUTE_KINDS
    )
    block = (
        IAAS_BLOCK_STORAGE_KINDS
        if any(k in by_kind for k in IAAS_BLOCK_STORAGE_KINDS)
        else K8S_STORAGE_KINDS
    )

    def total(kinds: tuple[str, ...], column: int) -> float:
        return sum(by_kind[k][column] for k in kinds if k in by_kind)

    return total(compute, 0), total(compute, 1), total((*block, *OBJECT_STORAGE_KINDS), 2)


# Rows that measure what a node *has*, as its own API reports it: a vCenter's hosts (cores,
# memory) and datastores (storage), OpenStack's hypervisors (all three). Clusters are their
# hosts' sum and are left out so nothing counts twice; none of these is ever allocated.
CAPACITY_DIMENSIONS: dict[str, tuple[bool, bool, bool]] = {
    "vsphere_host": (True, True, False),
    "datastore": (False, False, True),
    "hypervisor": (True, True, True),
}


def listed_capacity(by_kind: KindSums) -> tuple[float | None, float | None, float | None]:
    """(vCPU, memory GiB, storage GiB) a node's listed hosts, datastores and hypervisors add up
    to; None for a dimension no listed kind measures."""
    totals: list[float | None] = [None, None, None]
    for kind, measures in CAPACITY_DIMENSIONS.items():
        if kind not in by_kind:
            continue
        for column, measured in enumerate(measures):
            if measured:
                totals[column] = (totals[column] or 0.0) + by_kind[kind][column]
    return totals[0], totals[1], totals[2]
