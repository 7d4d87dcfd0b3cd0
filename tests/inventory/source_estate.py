"""A small estate for node-identity tests: simulated AWS-compatible nodes (moto's server), a
register, node files, the real CLI, and what the ledger holds afterwards."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from botocore.retries.standard import ExponentialBackoff
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli import app
from inventory.models import Resource, ResourceEvent
from inventory.settings import set_settings

# Settings that would let the developer's own AWS setup leak into a test.
AWS_ENV_LEAKS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_CA_BUNDLE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "MOTO_ACCOUNT_ID",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "YIYUN_CONFIG",
)

REGISTER = (
    "system_code,name,department_code,department,city,classified,mlps_level\n"
    "JS-A,省级核心业务系统,JS-GOV,江苏省政府办公厅,省级,否,3\n"
    "JS-B,教育综合管理系统,JS-EDU,江苏省教育厅,省级,否,2\n"
)
SYSTEM_TAG = "yiyun.io/system"


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials through the standard chain only, and botocore's backoff made tiny."""
    for name in AWS_ENV_LEAKS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    scales = ExponentialBackoff._DEFAULT_BACKOFF_CONFIG
    monkeypatch.setitem(scales, "throttling_base_scale", 0.001)
    monkeypatch.setitem(scales, "non_throttling_base_scale", 0.001)


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
