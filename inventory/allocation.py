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
