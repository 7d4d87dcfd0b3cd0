"""`yiyun infra import-spec` on both databases: the file `pulumi import --file` reads, complete."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from infra.import_spec import IMPORT_MAPPINGS
from inventory.models import Node, Resource, System
from inventory.settings import Settings

runner = CliRunner()
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
# A Pulumi type token is package:module:Type (pulumi/sdk tokens.Type).
TYPE_TOKEN = r"^[a-z][a-z0-9-]*:[A-Za-z0-9._/-]+:[A-Z][A-Za-z0-9]*$"

# The import file as `pulumi import --file` decodes it (pkg/cmd/pulumi/operations/import.go,
# importFile and importSpec; documented under "pulumi import"): unknown fields are refused
# here so the spec stays within the documented format.
IMPORT_FILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["resources"],
    "additionalProperties": False,
    "properties": {
        "nameTable": {"type": "object", "additionalProperties": {"type": "string"}},
        "providerInputs": {"type": "object"},
        "resources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "name", "id"],
                "additionalProperties": False,
                "properties": {
                    "type": {"type": "string", "pattern": TYPE_TOKEN},
                    "name": {"type": "string", "minLength": 1},
                    "id": {"type": "string", "minLength": 1},
                    "parent": {"type": "string"},
                    "provider": {"type": "string"},
                    "version": {"type": "string"},
                    "pluginDownloadUrl": {"type": "string"},
                    "properties": {"type": "array", "items": {"type": "string"}},
                    "component": {"type": "boolean"},
                    "remote": {"type": "boolean"},
                    "logicalName": {"type": "string"},
                },
            },
        },
    },
}

MANAGED = {"yiyun.io/managed-by": "pulumi"}
K8S_MANAGED = {"app.kubernetes.io/managed-by": "pulumi"}

# (kind, native_id, name, namespace, system, state, tags, deleted) on node edu-dc.
Row = tuple[str, str, str | None, str | None, str | None, str | None, dict[str, str], bool]
ESTATE: list[Row] = [
    ("vm", "i-0a1", "教务系统前端", None, "EDU-01", "running", {}, False),
    ("vm", "i-0a2", "web", None, "EDU-01", "stopped", {}, False),
    ("vm", "i-0a3", "web", None, "EDU-01", "running", {}, False),  # same name: needs a suffix
    ("vm", "i-0m1", "managed", None, "EDU-01", "running", MANAGED, False),
    ("vm", "i-0gone", "gone", None, "EDU-01", "running", {}, True),  # tombstoned
    ("vm", "i-0end", "ending", None, None, "shutting-down", {}, False),
    ("volume", "vol-01", None, None, "EDU-02", "in-use", {}, False),
    ("bucket", "edu-archive", "edu-archive", None, "EDU-02", None, {}, False),
    ("db_instance", "arn:aws:rds:edu-1:000000000000:db:edu-pg", "edu-pg", None, "EDU-02",
     "available", {}, False),
    ("namespace", "uid-ns-1", "edu-portal", None, "EDU-01", "active", {}, False),
    ("namespace", "uid-ns-2", "kube-system", None, None, "active", {}, False),
    ("namespace", "uid-ns-3", "pulumi-made", None, None, "active", K8S_MANAGED, False),
    ("deployment", "uid-d-1", "portal", "edu-portal", "EDU-01", "active", {}, False),
    ("deployment", "uid-d-2", "coredns", "kube-system", None, "active", {}, False),
    ("deployment", "uid-d-3", "made", "pulumi-made", None, "active", K8S_MANAGED, False),
    ("statefulset", "uid-s-1", "db", "edu-portal", "EDU-01", "active", {}, False),
    ("daemonset", "uid-ds-1", "log-agent", "default", None, "active", {}, False),
    ("cronjob", "uid-c-1", "nightly", "edu-portal", "EDU-01", "suspended", {}, False),
    ("pvc", "uid-p-1", "data-db-0", "edu-portal", "EDU-01", "bound", {}, False),
    ("service", "uid-svc-1", "portal", "edu-portal", "EDU-01", "nodeport", {}, False),
    ("resource_quota", "uid-q-1", "quota", "edu-portal", "EDU-01", "active", {}, False),
    ("k8s_node", "uid-n-1", "worker-1", None, None, "ready", {}, False),
    ("load_balancer", "lb-1", "edge", None, None, "active", {}, False),
]  # fmt: skip

# Every live, unmanaged, adoptable row above: (type token, import id).
EXPECTED = {
    ("aws:ec2/instance:Instance", "i-0a1"),
    ("aws:ec2/instance:Instance", "i-0a2"),
    ("aws:ec2/instance:Instance", "i-0a3"),
    ("aws:ebs/volume:Volume", "vol-01"),
    ("aws:s3/bucket:Bucket", "edu-archive"),
    ("aws:rds/instance:Instance", "edu-pg"),
    ("kubernetes:core/v1:Namespace", "edu-portal"),
    ("kubernetes:apps/v1:Deployment", "edu-portal/portal"),
    ("kubernetes:apps/v1:StatefulSet", "edu-portal/db"),
    ("kubernetes:apps/v1:DaemonSet", "default/log-agent"),
    ("kubernetes:batch/v1:CronJob", "edu-portal/nightly"),
    ("kubernetes:core/v1:PersistentVolumeClaim", "edu-portal/data-db-0"),
    ("kubernetes:core/v1:Service", "edu-portal/portal"),
    ("kubernetes:core/v1:ResourceQuota", "edu-portal/quota"),
}


@pytest.fixture
def estate(settings: Settings, engine: sa.Engine) -> Settings:
    with Session(engine) as session:
        for node_id, one_cloud in (("edu-dc", False), ("js-core", True)):
            session.add(Node(id=node_id, name=node_id, level="province_core", one_cloud=one_cloud))
        session.add(
            System(
                code="EDU-01", name="教务系统", department_code="JS-EDU", city="省级", mlps_level=2
            )
        )
        session.add(
            System(
                code="EDU-02", name="档案系统", department_code="JS-EDU", city="省级", mlps_level=2
            )
        )
        rows = [("edu-dc", *row) for row in ESTATE]
        # Another node's resource never leaks into edu-dc's spec.
        rows.append(("js-core", "vm", "i-core", "core", None, "EDU-01", "running", {}, False))
        for node, kind, native_id, name, namespace, system, state, tags, deleted in rows:
            labels = {**tags, **({"yiyun.io/system": system} if system else {})}
            session.add(
                Resource(
                    node_id=node, source="aws" if kind in IAAS else "kubernetes", kind=kind,
                    native_id=native_id, name=name, namespace=namespace, state=state,
                    system_code=system, tags=labels, raw={}, content_hash="x",
                    first_seen_at=NOW, last_seen_at=NOW, deleted_at=NOW if deleted else None,
                )
            )  # fmt: skip
        session.commit()
    return settings


SERVICE = "kubernetes:core/v1:Service"
IAAS = {"vm", "volume", "bucket", "db_instance", "load_balancer"}


def import_spec(*args: str) -> tuple[dict[str, Any], str]:
    result = runner.invoke(app, ["infra", "import-spec", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_spec_matches_the_import_file_schema_and_lists_each_unmanaged_resource_once(
    estate: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "import.json"
    result = runner.invoke(app, ["infra", "import-spec", "--node", "edu-dc", "-o", str(out)])
    assert result.exit_code == 0, result.output
    spec = json.loads(out.read_text(encoding="utf-8"))

    jsonschema.validate(spec, IMPORT_FILE_SCHEMA)
    entries = [(r["type"], r["id"]) for r in spec["resources"]]
    assert Counter(entries) == Counter(EXPECTED)  # each exactly once, nothing else
    names = [r["name"] for r in spec["resources"]]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", n) for n in names), names
    assert {r["type"] for r in spec["resources"]} <= {
        m.type_token for m in IMPORT_MAPPINGS.values()
    }

    # Nothing left out silently: managed, cluster-owned and unmapped rows are all accounted for.
    assert "14 resources to adopt on edu-dc; 3 already managed by Pulumi" in result.stderr
    assert "1 k8s_node — cluster machines belong to" in result.stderr
    assert "1 load_balancer — no import mapping for this kind yet" in result.stderr
    assert "1 vm — being deleted at the source" in result.stderr
    assert "1 deployment, 1 namespace — owned by the cluster" in result.stderr

    # The same summary for a Chinese reader; the spec itself is the same file either way.
    zh = runner.invoke(app, ["--lang", "zh", "infra", "import-spec", "--node", "edu-dc"])
    assert zh.exit_code == 0, zh.output
    assert "edu-dc 上有 14 个资源待纳管；3 个已由 Pulumi 管理" in zh.stderr
    assert "未纳入导入文件：1 vm — being deleted at the source" in zh.stderr
    assert json.loads(zh.stdout) == spec


def test_names_come_from_department_and_system_and_are_stable(estate: Settings) -> None:
    first, _ = import_spec("--node", "edu-dc")
    second, _ = import_spec("--node", "edu-dc")
    assert first == second
    by_id = {r["id"]: r["name"] for r in first["resources"] if r["type"] != SERVICE}
    assert by_id["edu-portal/portal"] == "js-edu-edu-01-deployment-edu-portal-portal"
    assert by_id["edu-pg"] == "js-edu-edu-02-db-instance-edu-pg"
    assert by_id["default/log-agent"] == "unattributed-daemonset-default-log-agent"
    # A name with no ASCII falls back to the instance id; clashing names get an id hash.
    assert by_id["i-0a1"] == "js-edu-edu-01-vm-i-0a1"
    assert re.fullmatch(r"js-edu-edu-01-vm-web-[0-9a-f]{6}", by_id["i-0a2"])
    assert re.fullmatch(r"js-edu-edu-01-vm-web-[0-9a-f]{6}", by_id["i-0a3"])
    assert by_id["i-0a2"] != by_id["i-0a3"]


def test_kind_filter(estate: Settings) -> None:
    spec, _ = import_spec("--node", "edu-dc", "--kind", "deployment", "--kind", "db_instance")
    assert {(r["type"], r["id"]) for r in spec["resources"]} == {
        ("kubernetes:apps/v1:Deployment", "edu-portal/portal"),
        ("aws:rds/instance:Instance", "edu-pg"),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node", "edu-cd"], "unknown node 'edu-cd'; did you mean 'edu-dc'?"),
        (["--node", "edu-dc", "--kind", "deploymnet"], "did you mean deployment?"),
        (["--node", "edu-dc", "--kind", "k8s_node"], "kind k8s_node is not adopted into Pulumi"),
        (["--node", "edu-dc", "--kind", "load_balancer"], "it has no import mapping"),
    ],
)
def test_usage_errors_exit_2_with_a_hint(estate: Settings, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["infra", "import-spec", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert result.stdout.strip() == ""


def test_a_node_never_scanned_gets_an_empty_spec_and_a_hint(estate: Settings) -> None:
    with Session(sa.create_engine(estate.database_url)) as session:
        session.add(Node(id="nj", name="nj", level="city_backbone", one_cloud=True))
        session.commit()
    spec, stderr = import_spec("--node", "nj")
    assert spec == {"resources": []}
    assert "run `yiyun scan --node nj`" in stderr
