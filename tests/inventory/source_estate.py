"""A small estate for node-identity tests: simulated AWS-compatible nodes (moto's server), a
register, node files, the real CLI, and what the ledger holds afterwards."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli import app
from inventory.models import Resource, ResourceEvent
from inventory.settings import set_settings

REGISTER = (
    "system_code,name,department_code,department,city,classified,mlps_level\n"
    "JS-A,省级核心业务系统,JS-GOV,江苏省政府办公厅,省级,否,3\n"
    "JS-B,教育综合管理系统,JS-EDU,江苏省教育厅,省级,否,2\n"
)
SYSTEM_TAG = "yiyun.io/system"


def aws_source(endpoint_url: str, **extra: Any) -> dict[str, Any]:
    # EC2 only: the instances are the evidence, and a scan of one service is quick.
    return {
        "kind": "aws",
        "endpoint_url": endpoint_url,
        "regions": ["us-east-1"],
        "services": ["ec2"],
        "max_attempts": 2,
        **extra,
    }


def node(node_id: str, *sources: dict[str, Any], one_cloud: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": node_id,
        "name": f"节点 {node_id}",
        "level": "province_core" if one_cloud else "department_cloud",
        "one_cloud": one_cloud,
        "sources": list(sources),
    }
    if one_cloud:
        entry["city"] = "省级"
    else:
        entry["owner_department"] = "JS-EDU"
    return entry


def write_nodes(path: Path, *nodes: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump({"nodes": list(nodes)}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return path


class Yiyun:
    """`yiyun --db URL …` in this process; a traceback is never an acceptable outcome."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.runner = CliRunner()

    def __call__(self, *args: str) -> tuple[int, str, str]:
        result = self.runner.invoke(app, ["--db", self.db_url, *args])
        set_settings(None)  # the global options install settings for the process
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"`yiyun {' '.join(args)}` crashed") from result.exception
        return result.exit_code, result.stdout, result.stderr

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, f"yiyun {' '.join(args)} → {code}\n{out}\n{err}"
        return out + err

    def kpi(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.ok("report", "adoption", "--format", "json"))
        return report

    def import_register(self, tmp_path: Path) -> None:
        path = tmp_path / "register.csv"
        path.write_text(REGISTER, encoding="utf-8")
        self.ok("registry", "import", str(path))


Row = tuple[str, str, str, str]  # (node, source, kind, native_id)


def live_rows(engine: sa.Engine) -> dict[Row, int]:
    """Every live resource row by its natural key, with its row id."""
    with Session(engine) as session:
        rows = session.exec(
            select(
                Resource.node_id, Resource.source, Resource.kind, Resource.native_id, Resource.id
            ).where(col(Resource.deleted_at).is_(None))
        ).all()
    return {(node, source, kind, native_id): rid for node, source, kind, native_id, rid in rows}


def all_rows(engine: sa.Engine) -> dict[Row, int]:
    """Every resource row, live or tombstoned, by its natural key, with its row id."""
    with Session(engine) as session:
        rows = session.exec(
            select(
                Resource.node_id, Resource.source, Resource.kind, Resource.native_id, Resource.id
            )
        ).all()
    return {(node, source, kind, native_id): rid for node, source, kind, native_id, rid in rows}


def copies(engine: sa.Engine) -> Counter[tuple[str, str]]:
    """How many live rows each (kind, native id) has across the ledger: 1 each, or a thing is
    counted twice."""
    return Counter((kind, native_id) for _, _, kind, native_id in live_rows(engine))


def event_types(engine: sa.Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(session.exec(select(ResourceEvent.type)).all())
