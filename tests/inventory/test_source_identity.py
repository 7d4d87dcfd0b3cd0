"""Stable source ids: a source's rows never change hands when sources are added, removed or
reordered; an explicit id carries its rows over; migration 0005 moves old ledgers to the
derived ids; and two nodes on one endpoint are refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from sqlmodel import Session, col, select

from inventory.db import alembic_config, make_engine, upgrade
from inventory.models import Node, Resource, ScanRun, ScopeResult
from inventory.nodes import NodeFileError, load_node_file, node_columns, parse_node_file
from inventory.sim.aws import reset_moto, seed_instances, start_moto_server
from inventory.sim.k8s import write_kubeconfig
from tests.inventory.collectors.conftest import isolate_aws
from tests.inventory.source_estate import (
    SYSTEM_TAG,
    Yiyun,
    aws_source,
    copies,
    event_types,
    live_rows,
    node,
    write_nodes,
)

REGION = "us-east-1"
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def moto_servers() -> Iterator[list[str]]:
    """Two simulated AWS-compatible endpoints, each with an estate of its own."""
    started = [start_moto_server() for _ in range(2)]
    yield [url for _, url in started]
    for server, _ in started:
        server.stop()


@pytest.fixture
def clouds(moto_servers: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    isolate_aws(monkeypatch, tmp_path)
    reset_moto(moto_servers[0])  # moto's reset empties every endpoint
    return moto_servers


def parse(*nodes: dict[str, Any]) -> list[Any]:
    return parse_node_file(yaml.safe_dump({"nodes": list(nodes)}, allow_unicode=True))


def derived_id(url: str) -> str:
    (spec,) = parse(node("x", aws_source(url)))
    return str(spec.sources[0].id)


def kpi_figures(report: dict[str, Any]) -> tuple[Any, ...]:
    return report["counts"], report["numerator"], report["denominator"], report["rate"]


# --- through the real scan, against moto's server --------------------------------------------


def test_adding_a_second_aws_source_keeps_the_first_ones_rows(
    clouds: list[str], db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    first, second = clouds
    yiyun = Yiyun(db_url)
    yiyun.import_register(tmp_path)
    seed_instances(first, REGION, count=2, tags={SYSTEM_TAG: "JS-A"})
    (extra,) = seed_instances(second, REGION, count=1, tags={SYSTEM_TAG: "JS-A"})
    alone = write_nodes(tmp_path / "alone.yaml", node("js-core", aws_source(first)))
    yiyun.ok("nodes", "apply", str(alone))
    yiyun.ok("scan")
    before, kpi_before = live_rows(engine), yiyun.kpi()

    # The new source goes first: by position, the old one would have become `aws-2`.
    both = write_nodes(
        tmp_path / "both.yaml", node("js-core", aws_source(second), aws_source(first))
    )
    yiyun.ok("nodes", "apply", str(both))
    yiyun.ok("scan")
    after = live_rows(engine)

    assert {source for _, source, _, _ in before} == {derived_id(first)}
    # The first source's rows are the same rows (same ids), under the same source id.
    assert before.items() <= after.items()
    assert set(after) - set(before) == {("js-core", derived_id(second), "vm", extra)}
    assert set(copies(engine).values()) == {1}
    assert event_types(engine)["deleted"] == 0
    assert kpi_figures(yiyun.kpi()) == kpi_figures(kpi_before)
    assert kpi_before["counts"]["on_cloud"] == 1 and kpi_before["counts"]["partial"] == 0


def test_reordering_or_removing_sources_changes_no_other_rows(
    clouds: list[str], db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    first, second = clouds
    yiyun = Yiyun(db_url)
    seed_instances(first, REGION, count=2, tags={SYSTEM_TAG: "JS-A"})
    seed_instances(second, REGION, count=2, tags={SYSTEM_TAG: "JS-B"})
    path = tmp_path / "nodes.yaml"
    yiyun.ok("nodes", "apply", str(write_nodes(path, node("js-core", *map(aws_source, clouds)))))
    yiyun.ok("scan")
    before, events_before = live_rows(engine), event_types(engine)

    reordered = node("js-core", aws_source(second), aws_source(first))
    yiyun.ok("nodes", "apply", str(write_nodes(path, reordered)))
    yiyun.ok("scan")

    assert live_rows(engine) == before
    assert event_types(engine) == events_before

    yiyun.ok("nodes", "apply", str(write_nodes(path, node("js-core", aws_source(first)))))
    yiyun.ok("scan")

    # The removed source's scopes are retired; the remaining one's rows are untouched.
    kept = {key: rid for key, rid in before.items() if key[1] == derived_id(first)}
    assert live_rows(engine) == kept


def test_a_source_given_an_id_keeps_its_rows(
    clouds: list[str], db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    first = clouds[0]
    yiyun = Yiyun(db_url)
    seed_instances(first, REGION, count=3, tags={SYSTEM_TAG: "JS-A"})
    path = tmp_path / "nodes.yaml"
    yiyun.ok("nodes", "apply", str(write_nodes(path, node("js-core", aws_source(first)))))
    yiyun.ok("scan")
    before, events_before = live_rows(engine), event_types(engine)

    named = node("js-core", aws_source(first, id="core-ec2"))
    out = yiyun.ok("nodes", "apply", str(write_nodes(path, named)))
    yiyun.ok("scan")

    assert f"source {derived_id(first)} is now core-ec2; its ledger rows moved with it" in out
    assert live_rows(engine) == {
        (node_id, "core-ec2", kind, native_id): rid
        for (node_id, _, kind, native_id), rid in before.items()
    }
    assert event_types(engine) == events_before  # nothing created, nothing tombstoned
    with Session(engine) as session:
        sources = set(session.exec(select(ScopeResult.source)).all())
    assert sources == {"core-ec2"}


def test_an_id_that_already_has_rows_of_its_own_is_refused(
    db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    yiyun = Yiyun(db_url)
    path = tmp_path / "nodes.yaml"
    endpoint = "http://10.1.2.3:9000"
    yiyun.ok("nodes", "apply", str(write_nodes(path, node("js-core", aws_source(endpoint)))))
    with Session(engine) as session:
        for source in ("core-ec2", derived_id(endpoint)):
            session.add(
                Resource(
                    node_id="js-core",
                    source=source,
                    kind="vm",
                    native_id="i-1",
                    content_hash="h",
                    first_seen_at=NOW,
                    last_seen_at=NOW,
                )
            )
        session.commit()
    before = live_rows(engine)

    named = node("js-core", aws_source(endpoint, id="core-ec2"))
    code, _, err = yiyun("nodes", "apply", str(write_nodes(path, named)))

    assert code == 1
    assert "already keeps other rows under 'core-ec2'" in err
    assert live_rows(engine) == before
    with Session(engine) as session:
        stored = session.get(Node, "js-core")
    assert stored is not None and stored.sources
    assert stored.sources[0]["name"] == derived_id(endpoint)


# --- migration 0005 ---------------------------------------------------------------------------


def old_style(path: Path, names: dict[str, list[str]]) -> list[Node]:
    """The nodes of a node file as yiyun stored them before 0005: positional source names."""
    rows = []
    for spec in load_node_file(path):
        sources = [
            {**source.stored(), "name": name}
            for source, name in zip(spec.sources, names[spec.id], strict=True)
        ]
        rows.append(Node(id=spec.id, **{**node_columns(spec), "sources": sources}))
    return rows


def fake_rows(node_id: str, source: str, count: int) -> list[Any]:
    rows: list[Any] = [
        Resource(
            node_id=node_id,
            source=source,
            kind="vm",
            native_id=f"{node_id}-{source}-i-{n}",
            content_hash="h",
            first_seen_at=NOW,
            last_seen_at=NOW,
        )
        for n in range(count)
    ]
    rows.append(
        ScopeResult(
            run_id=1,
            node_id=node_id,
            source=source,
            kind="vm",
            scope="r1",
            status="ok",
            started_at=NOW,
            finished_at=NOW,
        )
    )
    return rows


def sources_of(engine: sa.Engine) -> dict[str, list[str]]:
    with Session(engine) as session:
        return {
            row.id: [source["name"] for source in row.sources or []]
            for row in session.exec(select(Node)).all()
        }


def row_keys(engine: sa.Engine, table: Any) -> dict[tuple[str, str], int]:
    with Session(engine) as session:
        rows = session.exec(select(table.node_id, table.source)).all()
    counted: dict[tuple[str, str], int] = {}
    for node_id, source in rows:
        counted[node_id, source] = counted.get((node_id, source), 0) + 1
    return counted


def test_migration_0005_moves_defaulted_names_to_derived_ids(
    clouds: list[str], db_url: str, tmp_path: Path
) -> None:
    first = clouds[0]
    seed_instances(first, REGION, count=3, tags={SYSTEM_TAG: "JS-A"})
    file = write_nodes(
        tmp_path / "nodes.yaml",
        node("js-core", aws_source(first)),
        node(
            "edu-dc",
            aws_source("http://10.1.2.3:9000"),
            aws_source("https://oss.edu.example"),
            {"kind": "kubernetes", "context": "edu-k8s", "kubeconfig": "/etc/yiyun/kube"},
            one_cloud=False,
        ),
        # Explicit names are kept; two sources that would derive one id keep theirs too.
        node("hrss", aws_source("http://10.9.9.9:9000", id="hrss-minio"), one_cloud=False),
        node(
            "twin",
            aws_source("http://10.7.7.7", regions=["a"], id="aws-1"),
            aws_source("http://10.7.7.7", regions=["b"], id="aws-2"),
            one_cloud=False,
        ),
    )
    engine = make_engine(db_url)
    upgrade(engine, "0004")
    with Session(engine) as session:
        for row in old_style(
            file,
            {
                "js-core": ["aws"],
                "edu-dc": ["aws-1", "aws-2", "kubernetes"],
                "hrss": ["hrss-minio"],
                "twin": ["aws-1", "aws-2"],
            },
        ):
            session.add(row)
        for source, count in (("aws-1", 2), ("aws-2", 3), ("kubernetes", 1)):
            session.add_all(fake_rows("edu-dc", source, count))
        session.add_all(fake_rows("hrss", "hrss-minio", 1))
        session.add_all(fake_rows("twin", "aws-1", 1) + fake_rows("twin", "aws-2", 1))
        session.commit()
    # What yiyun before 0005 did: a real scan, its rows under the defaulted name `aws`.
    from inventory.scan import Scanner

    with Session(engine, expire_on_commit=False) as session:
        core = session.get(Node, "js-core")
    assert core is not None
    assert Scanner(engine).run([core]).ok
    resources_before = row_keys(engine, Resource)
    results_before = row_keys(engine, ScopeResult)
    ids_before = live_rows(engine)
    assert resources_before[("js-core", "aws")] == 3

    upgrade(engine)

    core_id = derived_id(first)
    renamed = {
        ("js-core", "aws"): ("js-core", core_id),
        ("edu-dc", "aws-1"): ("edu-dc", "aws-10-1-2-3-9000"),
        ("edu-dc", "aws-2"): ("edu-dc", "aws-oss-edu-example"),
        ("edu-dc", "kubernetes"): ("edu-dc", "kubernetes-edu-k8s"),
    }
    assert sources_of(engine) == {
        "js-core": [core_id],
        "edu-dc": ["aws-10-1-2-3-9000", "aws-oss-edu-example", "kubernetes-edu-k8s"],
        "hrss": ["hrss-minio"],
        "twin": ["aws-1", "aws-2"],
    }
    assert row_keys(engine, Resource) == {
        renamed.get(key, key): count for key, count in resources_before.items()
    }
    assert row_keys(engine, ScopeResult) == {
        renamed.get(key, key): count for key, count in results_before.items()
    }
    # The same rows (same ids), only re-keyed: nothing copied, nothing tombstoned.
    assert sorted(live_rows(engine).values()) == sorted(ids_before.values())

    # The same node file and a real scan afterwards: nothing duplicated, nothing new.
    yiyun = Yiyun(db_url)
    out = yiyun.ok("nodes", "apply", str(file))
    events_before = event_types(engine)
    yiyun.ok("scan", "--node", "js-core")

    assert "0 created, 0 updated, 4 unchanged" in out
    assert set(copies(engine).values()) == {1}
    assert event_types(engine) == events_before
    assert {key for key in live_rows(engine) if key[0] == "js-core"} == {
        ("js-core", core_id, kind, native_id)
        for (node_id, _, kind, native_id) in ids_before
        if node_id == "js-core"
    }
    with Session(engine) as session:
        latest = session.exec(select(ScanRun.id).order_by(col(ScanRun.id).desc())).first()
        sources = set(
            session.exec(select(ScopeResult.source).where(ScopeResult.run_id == latest)).all()
        )
    assert sources == {core_id}

    # And back: 0004's positional names again, rows with them.
    command.downgrade(alembic_config(engine), "0004")
    assert sources_of(engine)["edu-dc"] == ["aws-1", "aws-2", "kubernetes"]
    assert row_keys(engine, Resource)[("edu-dc", "aws-2")] == 3
    engine.dispose()


# --- duplicates: two nodes on one endpoint ------------------------------------------------------


def duplicate_problems(*nodes: dict[str, Any]) -> list[str]:
    with pytest.raises(NodeFileError) as caught:
        parse(*nodes)
    return [str(problem) for problem in caught.value.problems]


def loads(*nodes: dict[str, Any]) -> bool:
    return len(parse(*nodes)) == len(nodes)


@pytest.mark.parametrize(
    ("url", "other"),
    [
        ("http://10.1.2.3:9000", "http://10.1.2.3:9000/"),
        ("https://ecs.core.example", "https://ECS.core.example:443"),
    ],
)
def test_two_nodes_on_one_aws_endpoint_and_region_are_refused(url: str, other: str) -> None:
    (problem,) = duplicate_problems(
        node("edu-dc", aws_source(url, regions=["r1", "r2"]), one_cloud=False),
        node("js-edu", aws_source(other, regions=["r2"])),
    )

    assert "node #1 (edu-dc): sources[0]: duplicate node" in problem
    assert "same cloud as node 'js-edu'" in problem and "region r2" in problem


@pytest.mark.parametrize(
    "other",
    [
        aws_source("http://10.1.2.3:9000", regions=["r3"]),  # another region
        aws_source("http://10.1.2.3:9001", regions=["r1"]),  # another port
        aws_source("http://10.1.2.3:9000/tenant-b", regions=["r1"]),  # another path
    ],
)
def test_nodes_on_different_endpoints_or_regions_are_not_duplicates(other: dict[str, Any]) -> None:
    assert loads(
        node("edu-dc", aws_source("http://10.1.2.3:9000", regions=["r1"]), one_cloud=False),
        node("js-edu", other),
    )


def kubernetes_source(kubeconfig: Path | str, context: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": context, **extra}


def test_two_nodes_on_one_cluster_are_refused_whatever_their_context(tmp_path: Path) -> None:
    # Two kubeconfigs, two context names, one API server: one cluster.
    old = write_kubeconfig(tmp_path / "old", server="https://10.0.0.1:6443", context="edu")
    new = write_kubeconfig(tmp_path / "new", server="https://10.0.0.1:6443/", context="js-edu")

    (problem,) = duplicate_problems(
        node("edu-dc", kubernetes_source(old, "edu"), one_cloud=False),
        node("js-edu", kubernetes_source(new, "js-edu")),
    )

    assert "same cloud as node 'js-edu'" in problem
    assert "cluster https://10.0.0.1:6443" in problem


def test_one_cluster_split_by_namespaces_is_not_a_duplicate(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kube", server="https://10.0.0.1:6443")

    assert loads(
        node("a", kubernetes_source(kubeconfig, "yiyun-sim", namespaces=["dept-a"])),
        node("b", kubernetes_source(kubeconfig, "yiyun-sim", namespaces=["dept-b"])),
    )
    problems = duplicate_problems(
        node("a", kubernetes_source(kubeconfig, "yiyun-sim", namespaces=["dept-a"])),
        node("b", kubernetes_source(kubeconfig, "yiyun-sim")),  # every namespace
    )
    assert len(problems) == 1 and "namespace dept-a" in problems[0]


def test_unreadable_kubeconfig_compares_by_path_and_context(tmp_path: Path) -> None:
    missing = tmp_path / "not-there"

    (problem,) = duplicate_problems(
        node("a", kubernetes_source(missing, "edu")),
        node("b", kubernetes_source(missing, "edu")),
    )
    assert "context 'edu' of kubeconfig" in problem
    assert loads(
        node("a", kubernetes_source(missing, "edu")),
        node("b", kubernetes_source(missing, "hrss")),
    )


def test_a_node_that_repeats_a_live_ledger_node_is_refused_and_nothing_applied(
    db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    yiyun = Yiyun(db_url)
    endpoint = aws_source("http://10.1.2.3:9000")
    yiyun.ok("nodes", "apply", str(write_nodes(tmp_path / "old.yaml", node("edu-dc", endpoint))))
    renamed = write_nodes(tmp_path / "new.yaml", node("js-edu", endpoint))

    code, out, err = yiyun("nodes", "apply", str(renamed))

    assert code == 1, out + err
    assert "1 problem, nothing applied" in err
    assert "node js-edu: duplicate node: lists the same cloud as node 'edu-dc'" in err
    assert "yiyun nodes retire edu-dc --by WHO --reason TEXT" in err
    assert sources_of(engine).keys() == {"edu-dc"}
    code, _, err = yiyun("nodes", "apply", "--dry-run", str(renamed))
    assert code == 1 and "duplicate node" in err
