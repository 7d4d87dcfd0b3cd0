"""What systems need and what nodes have left: vCPU, memory and storage from live inventory rows."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from inventory.allocation import COMPUTE_KINDS, STORAGE_KINDS, node_allocation
from inventory.models import Node, Resource

# Core table access keeps these aggregate queries plainly typed.
_RESOURCES: sa.Table = Resource.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Sizing:
    """vCPU, memory (GiB) and storage (GiB)."""

    vcpu: float = 0.0
    memory_gib: float = 0.0
    storage_gib: float = 0.0

    def __add__(self, other: Sizing) -> Sizing:
        return Sizing(
            self.vcpu + other.vcpu,
            self.memory_gib + other.memory_gib,
            self.storage_gib + other.storage_gib,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "vcpu": round(self.vcpu, 3),
            "memory_gib": round(self.memory_gib, 3),
            "storage_gib": round(self.storage_gib, 3),
        }


def _sums(
    *, session: Session, by_node: bool, where: list[sa.ColumnElement[bool]]
) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(system code or node id, kind) → summed vcpu, memory, storage of counted live rows."""
    group = _RESOURCES.c.node_id if by_node else _RESOURCES.c.system_code
    query = (
        sa.select(
            group,
            _RESOURCES.c.kind,
            sa.func.coalesce(sa.func.sum(_RESOURCES.c.vcpu), 0.0),
            sa.func.coalesce(sa.func.sum(_RESOURCES.c.memory_gib), 0.0),
            sa.func.coalesce(sa.func.sum(_RESOURCES.c.storage_gib), 0.0),
        )
        .where(
            _RESOURCES.c.deleted_at.is_(None),
            _RESOURCES.c.kind.in_(sorted({*COMPUTE_KINDS, *STORAGE_KINDS})),
            *where,
        )
        .group_by(group, _RESOURCES.c.kind)
    )
    return {
        (key, kind): (float(vcpu), float(memory), float(storage))
        for key, kind, vcpu, memory, storage in session.execute(query)
    }


def system_sizing(
    *,
    session: Session,
    node_ids: Collection[str] | None = None,
    exclude_node_ids: Collection[str] = (),
) -> dict[str, Sizing]:
    """system code → what its live resources use, on the given nodes (default: everywhere)."""
    where: list[sa.ColumnElement[bool]] = [_RESOURCES.c.system_code.is_not(None)]
    if node_ids is not None:
        where.append(_RESOURCES.c.node_id.in_(sorted(node_ids)))
    if exclude_node_ids:
        where.append(_RESOURCES.c.node_id.not_in(sorted(exclude_node_ids)))
    sizing: dict[str, Sizing] = {}
    for (code, kind), (vcpu, memory, storage) in _sums(
        session=session, by_node=False, where=where
    ).items():
        # A system's own containers and machines are both its consumption.
        part = Sizing(
            vcpu if kind in COMPUTE_KINDS else 0.0,
            memory if kind in COMPUTE_KINDS else 0.0,
            storage if kind in STORAGE_KINDS else 0.0,
        )
        sizing[code] = sizing.get(code, Sizing()) + part
    return sizing


def allocated(*, session: Session, node_ids: Collection[str]) -> dict[str, Sizing]:
    """node id → what the inventory says is allocated on it (zero for a node without rows)."""
    sums = _sums(
        session=session,
        by_node=True,
        where=[_RESOURCES.c.node_id.in_(sorted(node_ids))],
    )
    result: dict[str, Sizing] = {}
    for node_id in sorted(node_ids):
        by_kind = {kind: values for (key, kind), values in sums.items() if key == node_id}
        result[node_id] = Sizing(*node_allocation(by_kind))
    return result


@dataclass(frozen=True)
class Capacity:
    """A node's declared capacity, what is allocated on it, and what is free (None: unknown)."""

    node_id: str
    total: tuple[float | None, float | None, float | None]
    allocated: Sizing

    @property
    def free(self) -> tuple[float | None, float | None, float | None]:
        used = (self.allocated.vcpu, self.allocated.memory_gib, self.allocated.storage_gib)
        return tuple(  # type: ignore[return-value]
            None if total is None else max(total - taken, 0.0)
            for total, taken in zip(self.total, used, strict=True)
        )


def node_capacity(*, session: Session, node: Node) -> Capacity:
    """The node's capacity from the node file minus its live allocation from the inventory."""
    taken = allocated(session=session, node_ids=[node.id])[node.id]
    return Capacity(
        node_id=node.id,
        total=(node.capacity_vcpu, node.capacity_memory_gib, node.capacity_storage_gib),
        allocated=taken,
    )
