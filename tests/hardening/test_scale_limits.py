"""Node files at scale, through the real command: 20,000 nodes load (a node file was once
refused from ~4,100 nodes on, its plain values counted as if aliases had expanded them), and
aliases that would expand a file beyond the limit (an alias bomb) are still refused at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from inventory.models import Node
from inventory.nodes import MAX_ALIAS_EXPANSION, parse_node_file
from inventory.settings import Settings
from tests.hardening.conftest import Cli

NODES = 20_000
CITIES = ["南京市", "无锡市", "徐州市", "常州市", "苏州市", "南通市", "连云港市"]


def province_of_nodes(count: int) -> str:
    """A node file of `count` department clouds, each at its own endpoint, all sharing one
    capacity block by alias (as a file written by hand would)."""
    lines = ["nodes:"]
    for i in range(count):
        capacity = (
            "&standard {vcpu: 64, memory_gib: 256, storage_gib: 4096}" if i == 0 else ("*standard")
        )
        address = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        lines += [
            f"  - id: dept-{i:05d}",
            f"    name: 部门云 {i}",
            "    level: department_cloud",
            "    one_cloud: false",
            f"    city: {CITIES[i % len(CITIES)]}",
            f"    owner_department: JS-D{i % 1000:04d}",
            "    frozen_since: 2022-04-04",
            f"    capacity: {capacity}",
            f"    sources: [{{kind: aws, endpoint_url: 'https://{address}:9000', "
            "regions: [r1], profile: dept}]",
        ]
    return "\n".join(lines) + "\n"


def shared_zones(aliases: int, zones: int = 1000) -> str:
    """Nodes that all name one list of `zones` zones, the first by value, the rest by alias:
    each alias expands to zones + 1 values."""
    listed = ", ".join(f"z{i}" for i in range(zones))
    lines = ["nodes:"]
    for i in range(aliases + 1):
        zone_list = f"&zones [{listed}]" if i == 0 else "*zones"
        lines.append(
            f"  - {{id: n{i}, name: n, level: server_room, one_cloud: false, zones: {zone_list}}}"
        )
    return "\n".join(lines) + "\n"


def node_count(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Node)).one()


def node_rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return sorted(
            tuple(map(repr, row))
            for row in connection.execute(sa.select(Node.__table__).order_by(col(Node.id)))
        )


@pytest.fixture
def ledger(engine: sa.Engine, settings: Settings, db_url: str) -> str:
    return db_url


def test_a_node_file_of_20000_nodes_loads(
    ledger: str, engine: sa.Engine, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text(province_of_nodes(NODES), encoding="utf-8")

    code, out, err = cli("--db", ledger, "nodes", "apply", str(path))
    again = cli("--db", ledger, "nodes", "apply", str(path), "--dry-run")

    assert code == 0, err
    assert f"{NODES} created, 0 updated, 0 unchanged" in out
    assert node_count(engine) == NODES
    with Session(engine) as session:
        last = session.get(Node, f"dept-{NODES - 1:05d}")
    assert last is not None and last.capacity_vcpu == 64
    assert last.city == CITIES[(NODES - 1) % len(CITIES)]
    assert again[0] == 0, again[2]
    assert f"would create 0, update 0, leave {NODES} unchanged" in again[1]


def test_aliases_expanding_beyond_the_limit_are_refused_at_once(
    ledger: str, engine: sa.Engine, cli: Cli, tmp_path: Path
) -> None:
    """One alias more than the limit allows: refused before anything is expanded, naming the
    line; nothing changes."""
    aliases = MAX_ALIAS_EXPANSION // 1001 + 1
    path = tmp_path / "nodes.yaml"
    path.write_text(shared_zones(aliases), encoding="utf-8")
    before = node_rows(engine)

    code, _, err = cli("--db", ledger, "nodes", "apply", str(path))

    assert code == 1
    assert f"line {aliases + 2}: not a node file: aliases (*name) expand the file to more " in err
    assert f"than {MAX_ALIAS_EXPANSION:,} values" in err
    assert node_rows(engine) == before


def test_aliases_just_within_the_limit_load() -> None:
    """The other side of the line: what aliases add is counted, not the values written."""
    aliases = MAX_ALIAS_EXPANSION // 1001

    specs = parse_node_file(shared_zones(aliases))

    assert len(specs) == aliases + 1
    assert all(len(spec.zones) == 1000 for spec in specs)


def test_a_billion_laughs_is_refused(
    ledger: str, engine: sa.Engine, cli: Cli, tmp_path: Path
) -> None:
    """Nine aliases of nine aliases, nine levels deep: 387 million values once expanded."""
    bomb = "".join(
        [f"a0: &a0 [{', '.join(['lol'] * 9)}]\n"]
        + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)]
        + ["nodes: [*a8]\n"]
    )
    path = tmp_path / "nodes.yaml"
    path.write_text(bomb, encoding="utf-8")
    before = node_rows(engine)

    code, _, err = cli("--db", ledger, "nodes", "apply", str(path))

    assert code == 1
    assert "expand the file to more than" in err and "alias bomb" in err
    assert node_rows(engine) == before
