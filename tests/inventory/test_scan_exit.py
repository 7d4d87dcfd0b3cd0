"""`yiyun scan`'s exit status against real sources: 0 only when every scope listed; 1 when
some scopes failed (partial) and when all of them did, which it says in so many words."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from inventory.models import ScopeResult
from tests.inventory.conftest import registered_estate
from tests.inventory.source_estate import Yiyun, aws_source, node, write_nodes

NOTHING_LISTED = "Not one scope of this scan listed completely: it gathered no new evidence"
SOME_FAILED = "scope(s) failed; their rows were kept as they were"


@pytest.fixture
def yiyun(
    moto_server: str,
    db_url: str,
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Yiyun:
    return registered_estate(moto_server, db_url, monkeypatch, tmp_path)


def statuses(engine: sa.Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(ScopeResult.node_id, ScopeResult.status)).all()
    return sorted((node_id, status) for node_id, status in rows)


def test_every_scope_listed_exits_0(
    yiyun: Yiyun, moto_server: str, engine: sa.Engine, tmp_path: Path
) -> None:
    nodes = write_nodes(tmp_path / "nodes.yaml", node("js-core", aws_source(moto_server)))
    yiyun.ok("nodes", "apply", str(nodes))

    code, _, err = yiyun("scan")

    assert code == 0, err
    assert statuses(engine) == [("js-core", "ok")]


def test_a_partial_failure_exits_1_and_keeps_what_listed(
    yiyun: Yiyun, moto_server: str, dead_endpoint: str, engine: sa.Engine, tmp_path: Path
) -> None:
    nodes = write_nodes(
        tmp_path / "nodes.yaml",
        node("js-core", aws_source(moto_server)),
        node("edu-dc", aws_source(dead_endpoint), one_cloud=False),
    )
    yiyun.ok("nodes", "apply", str(nodes))

    code, _, err = yiyun("scan")

    assert code == 1, err
    assert f"1 {SOME_FAILED}" in " ".join(err.split())
    assert NOTHING_LISTED not in " ".join(err.split())
    assert statuses(engine) == [("edu-dc", "error"), ("js-core", "ok")]
    assert yiyun.kpi()["numerator"] == 1  # the scope that listed counts as evidence


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_scope_failed_exits_1_and_says_nothing_was_proved(
    yiyun: Yiyun, dead_endpoint: str, engine: sa.Engine, tmp_path: Path, lang: str
) -> None:
    nodes = write_nodes(
        tmp_path / "nodes.yaml", node("edu-dc", aws_source(dead_endpoint), one_cloud=False)
    )
    yiyun.ok("nodes", "apply", str(nodes))

    code, _, err = yiyun("--lang", lang, "scan")

    assert code == 1, err
    said = "".join(err.split())
    if lang == "en":
        assert "".join(NOTHING_LISTED.split()) in said
        assert "".join(f"1 {SOME_FAILED}".split()) in said
    else:
        assert "本次扫描没有一个范围列出完整，未取得任何新的清查证据" in said
        assert "1个范围扫描失败" in said
    assert statuses(engine) == [("edu-dc", "error")]
