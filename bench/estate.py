"""Deterministic province-scale estate for benchmarks: register, nodes and resource rows.

Sizes are flags; the same seed always gives the same estate. Rows are generated lazily so a
million of them never sit in memory at once.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from inventory.collectors.base import ResourceRow
from inventory.sim.estate import CITIES

KINDS = ("vm", "volume", "deployment", "statefulset", "namespace", "service", "pvc", "cronjob")
WEIGHTS = (25, 15, 25, 5, 10, 10, 5, 5)
SYSTEM_TAG = "yiyun.io/system"


@dataclass(frozen=True)
class EstateSize:
    systems: int = 10_000
    departments: int = 1_000
    nodes: int = 14
    resources: int = 100_000
    seed: int = 7

    def node_ids(self) -> list[str]:
        cities = ["core", *[p.lower() for p in CITIES]]
        ids = [f"js-{c}" for c in cities][: max(1, self.nodes - 3)]
        return ids + [f"dc-{n}" for n in range(self.nodes - len(ids))]


def system_code(n: int) -> str:
    return f"SYS-{n:05d}"


def department_code(n: int) -> str:
    return f"D{n:04d}"


def departments(size: EstateSize) -> list[dict[str, object]]:
    cities = ["省级", *CITIES.values()]
    return [
        {
            "code": department_code(d),
            "name": f"部门{d}",
            "level": "city" if d % 14 else "province",
            "city": cities[d % len(cities)],
        }
        for d in range(size.departments)
    ]


def systems(size: EstateSize) -> list[dict[str, object]]:
    rng = random.Random(size.seed)
    rows = []
    for n in range(size.systems):
        d = n % size.departments
        rows.append(
            {
                "code": system_code(n),
                "name": f"系统{n}",
                "department_code": department_code(d),
                "city": departments_city(size, d),
                "classified": rng.random() < 0.02,
                "mlps_level": rng.choice([2, 2, 3]),
                "data_level": "general",
                "network_zone": rng.choice(["extranet", "extranet", "private_network"]),
                "lifecycle": "retired" if rng.random() < 0.02 else "active",
            }
        )
    return rows


def departments_city(size: EstateSize, d: int) -> str:
    cities = ["省级", *CITIES.values()]
    return cities[d % len(cities)]


def scopes(size: EstateSize) -> list[tuple[str, str, str]]:
    """(node, kind, scope) units the rows are spread over: a region or namespace each."""
    return [(node, kind, "r1") for node in size.node_ids() for kind in KINDS]


def resource_rows(
    size: EstateSize,
    *,
    node: str,
    kind: str,
    share: int,
    changed_every: int = 0,
    generation: int = 0,
) -> Iterator[ResourceRow]:
    """The rows of one scope. `changed_every=100` changes 1 % of them (a new state) in
    generation > 0, so a rescan has something to write."""
    rng = random.Random(f"{size.seed}:{node}:{kind}")
    created = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(share):
        system = system_code(rng.randrange(size.systems)) if rng.random() < 0.9 else None
        state = "running"
        if generation and changed_every and i % changed_every == 0:
            state = f"changed-{generation}"
        yield ResourceRow(
            kind=kind,
            native_id=f"{node}-{kind}-{i:07d}",
            scope="r1",
            name=f"{kind}-{i}",
            namespace=f"ns-{i % 500}" if kind not in ("vm", "volume") else None,
            region="r1",
            state=state,
            replicas=2 if kind in ("deployment", "statefulset") else None,
            vcpu=2.0,
            memory_gib=4.0,
            storage_gib=50.0 if kind in ("volume", "pvc") else None,
            tags={SYSTEM_TAG: system} if system else {},
            system_code=system,
            raw={"id": i, "kind": kind, "labels": {"app": f"app-{i % 97}"}},
            created_at_source=created,
        )


def shares(size: EstateSize) -> dict[tuple[str, str, str], int]:
    """How many rows each scope gets, adding up to size.resources exactly."""
    units = scopes(size)
    weights = [WEIGHTS[KINDS.index(kind)] for _, kind, _ in units]
    total = sum(weights)
    counts = [size.resources * w // total for w in weights]
    counts[0] += size.resources - sum(counts)
    return dict(zip(units, counts, strict=True))


def seed_register(engine: sa.Engine, size: EstateSize) -> None:
    """Departments, systems and nodes written straight into the ledger."""
    from inventory.models import Department, Node, System

    with engine.begin() as connection:
        connection.execute(sa.insert(Department.__table__), departments(size))  # type: ignore[attr-defined]
        connection.execute(sa.insert(System.__table__), systems(size))  # type: ignore[attr-defined]
        connection.execute(
            sa.insert(Node.__table__),
            [  # type: ignore[attr-defined]
                {
                    "id": node,
                    "name": node,
                    "level": "province_core" if node.startswith("js-") else "department_cloud",
                    "one_cloud": node.startswith("js-"),
                    "system_tag": SYSTEM_TAG,
                    "dedicated_level4_pool": False,
                    "sources": [{"name": "bench", "kind": "aws"}],
                }
                for node in size.node_ids()
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    size = EstateSize(systems=args.systems, resources=args.resources)
    args.out.mkdir(parents=True, exist_ok=True)
    counts = shares(size)
    print(
        f"{len(size.node_ids())} nodes, {len(counts)} scopes, {sum(counts.values())} rows, "
        f"{size.systems} systems, {size.departments} departments"
    )


if __name__ == "__main__":
    main()
