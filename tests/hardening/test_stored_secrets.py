"""Secrets a cluster or a cloud hands over with what it lists — a pod template's env, envFrom
and command line, an annotation, a secret-shaped label, a tag named db_password — reach no
byte of the ledger: after the real `yiyun scan`, a dump of the whole database (pg_dump,
sqlite3 .dump) holds none of them and every system is attributed as before. A ledger written
before this rule is scrubbed by `yiyun db upgrade`, and the next scan finds nothing changed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from inventory.collectors import aws as aws_collector
from inventory.collectors import kubernetes as k8s_collector
from inventory.db import alembic_config
from inventory.models import AdoptionSnapshot, Resource, ResourceEvent, ScanRun
from inventory.secret_shape import REDACTED
from inventory.sim import aws as sim_aws
from inventory.sim.k8s import make_deployment
from tests.conftest import require_binary
from tests.hardening.conftest import Cli
from tests.hardening.rig import NAMESPACES, REGIONS, SYSTEM_TAG, Rig, running_rig


def canary(what: str) -> str:
    return f"yiyunCanary{what}{uuid.uuid4().hex[:12]}"


ENV_SECRET = canary("EnvPassword")
ENV_FROM_SECRET = canary("EnvFromSecret")
COMMAND_SECRET = canary("CommandPassword")
ANNOTATION_SECRET = canary("ApiToken")
TAG_SECRET = canary("TagPassword")
# Secret by their shape alone, under keys that name nothing: fixed, so that the shape check
# cannot miss one by chance (it catches ~97 % of random 32-character tokens, not all).
LABEL_TOKEN = "q8Vn3XkL9pRt2WzY7bHc5JmD4sFg6NaE"
LABEL_TOKEN_LATER = "Wd7Kq2Lx9Zp4Rv8Tn3Hy6Bc5Mf1Gs0Ja"
NAME_TOKEN = "Xr4Tq9Wm2Kz7Pv3Ld8Ny5Hb6Jc1Fg0Sa"
SECRETS = [
    ENV_SECRET,
    ENV_FROM_SECRET,
    COMMAND_SECRET,
    ANNOTATION_SECRET,
    TAG_SECRET,
    LABEL_TOKEN,
    LABEL_TOKEN_LATER,
    NAME_TOKEN,
]

EDU_A = NAMESPACES[0]
K8S_SYSTEM, AWS_SYSTEM = "JS-SEC-0001", "JS-SEC-0002"
WORKLOAD = "vault-client"
# Ordinary labels beside the secret one: they must come through as they are.
ORDINARY_LABELS = {"version": "1.2.3", "pod-template-hash": "5d59d67564", "app": WORKLOAD}
REGISTER = (
    "system_code,name,department_code,department,city,classified,mlps_level\n"
    "JS-A,省级核心业务系统,JS-GOV,江苏省政府办公厅,省级,否,3\n"
    "JS-EDU-1,教育综合管理系统,JS-EDU,江苏省教育厅,省级,否,2\n"
    f"{K8S_SYSTEM},教育密钥客户端,JS-EDU,江苏省教育厅,省级,否,2\n"
    f"{AWS_SYSTEM},省级数据库服务,JS-GOV,江苏省政府办公厅,省级,否,3\n"
)
# Each secret-bearing resource is its system's only evidence: a redaction that touched the
# system tag would move these statuses.
EXPECTED_KPI = {
    "JS-A": "on_cloud",
    "JS-EDU-1": "off_cloud",
    K8S_SYSTEM: "off_cloud",
    AWS_SYSTEM: "on_cloud",
}


@pytest.fixture
def rig(
    moto: str, db_url: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    with running_rig(moto, db_url, cli, tmp_path, monkeypatch) as rig:
        register = tmp_path / "register.csv"
        register.write_text(REGISTER, encoding="utf-8")
        assert cli("--db", db_url, "registry", "import", str(register))[0] == 0
        add_secrets(rig)
        yield rig


def add_secrets(rig: Rig) -> None:
    """A deployment as a careless chart writes it, and a VM tagged by a careless operator."""
    deployment = make_deployment(
        EDU_A, WORKLOAD, replicas=2, system=K8S_SYSTEM,
        labels={**ORDINARY_LABELS, "build-key": LABEL_TOKEN},
    )  # fmt: skip
    deployment["metadata"]["annotations"] = {"example.com/api-token": ANNOTATION_SECRET}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "DB_PASSWORD", "value": ENV_SECRET}]
    container["envFrom"] = [{"secretRef": {"name": ENV_FROM_SECRET}}]
    container["command"] = ["/vault-client", f"--password={COMMAND_SECRET}"]
    rig.sim.add("deployment", deployment)
    tags = {SYSTEM_TAG: AWS_SYSTEM, "db_password": TAG_SECRET, "Name": f"db-{NAME_TOKEN}"}
    sim_aws.seed_instances(rig.moto_url, REGIONS[0], tags=tags)


# --- what the ledger gives back -------------------------------------------------------------


def dump(db_url: str) -> str:
    """The whole database as SQL, by the database's own dump tool: pg_dump of the test's
    schema, or sqlite3's .dump (Python's iterdump when the sqlite3 shell is not installed)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        shell = shutil.which("sqlite3")
        if shell is not None:
            return subprocess.run(
                [shell, url.database, ".dump"], capture_output=True, text=True, check=True
            ).stdout
        with contextlib.closing(sqlite3.connect(url.database)) as connection:
            return "\n".join(connection.iterdump())
    pg_dump = require_binary("pg_dump")
    options = str(url.query["options"])
    schema = options.partition("search_path=")[2]
    assert schema, options
    return subprocess.run(
        [pg_dump, "-h", str(url.host), "-p", str(url.port or 5432), "-U", str(url.username),
         "-d", str(url.database), "-n", schema, "--no-owner", "--no-privileges"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def found(texts: dict[str, str], secrets: list[str]) -> dict[str, list[str]]:
    """Where each secret turns up: {where: [secrets]}, empty when nowhere."""
    hits = {where: [s for s in secrets if s in text] for where, text in texts.items()}
    return {where: secrets for where, secrets in hits.items() if secrets}


def kpi(rig: Rig) -> dict[str, str]:
    """system code → KPI status, as `yiyun report adoption --snapshot` records it."""
    code, _, err = rig.cli("--db", rig.db_url, "report", "adoption", "--snapshot")
    assert code == 0, err
    with Session(rig.engine()) as session:
        snapshot = session.exec(
            select(AdoptionSnapshot).order_by(col(AdoptionSnapshot.id).desc())
        ).first()
        assert snapshot is not None
        return {
            system: status
            for status, systems in (snapshot.system_codes or {}).items()
            for system in systems
        }


def secret_rows(rig: Rig) -> dict[str, Resource]:
    """The deployment and the VM the secrets came with, by kind."""
    with Session(rig.engine()) as session:
        rows = session.exec(
            select(Resource).where(col(Resource.system_code).in_([K8S_SYSTEM, AWS_SYSTEM]))
        ).all()
    return {row.kind: row for row in rows}


def last_run_events(rig: Rig) -> list[tuple[str, str | None, Any]]:
    with Session(rig.engine()) as session:
        run = session.exec(select(ScanRun).order_by(col(ScanRun.id).desc())).first()
        assert run is not None
        rows = session.exec(
            select(ResourceEvent.type, Resource.name, ResourceEvent.diff)
            .join(Resource, col(Resource.id) == col(ResourceEvent.resource_id))
            .where(ResourceEvent.run_id == run.id)
        )
        return [(type_, name, diff) for type_, name, diff in rows]


@contextlib.contextmanager
def collectors_before_the_allowlist() -> Iterator[None]:
    """The collectors as they were before this rule: the whole object as raw, every label and
    tag value as listed (what a ledger written by an older yiyun holds)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(k8s_collector, "allowed_raw", lambda kind, raw, system_tag: raw)
        patch.setattr(k8s_collector, "redact_labels", lambda labels, keep: dict(labels))
        patch.setattr(aws_collector, "_stored", lambda kind, raw, ctx: aws_collector.json_safe(raw))
        patch.setattr(aws_collector, "redact_labels", lambda tags, keep: dict(tags))
        yield


# --- the tests ------------------------------------------------------------------------------


def test_a_scan_stores_no_secret_and_attributes_every_system_as_before(rig: Rig) -> None:
    code, out, err = rig.scan()
    assert code == 0, err
    outputs = {"scan": out + err}
    for args in (
        ("report", "adoption", "--format", "json"),
        ("report", "violations", "--details", "--format", "json"),
        ("report", "scans", "--format", "json"),
    ):
        code, out, err = rig.cli("--db", rig.db_url, *args)
        assert code in (0, 1), err
        outputs[" ".join(args)] = out + err

    dumped = dump(rig.db_url)

    # The dump is the ledger: it holds the rows the secrets came with.
    assert WORKLOAD in dumped and AWS_SYSTEM in dumped
    assert found({"dump": dumped, **outputs}, SECRETS) == {}
    assert kpi(rig) == EXPECTED_KPI
    rows = secret_rows(rig)
    deployment, vm = rows["deployment"], rows["vm"]
    assert deployment.tags == {**ORDINARY_LABELS, SYSTEM_TAG: K8S_SYSTEM, "build-key": REDACTED}
    assert deployment.raw is not None
    assert deployment.raw["spec"]["template"]["spec"]["containers"] == [
        {"name": WORKLOAD, "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
    ]
    assert (deployment.replicas, deployment.vcpu, deployment.system_code) == (2, 1.0, K8S_SYSTEM)
    assert vm.tags == {SYSTEM_TAG: AWS_SYSTEM, "db_password": REDACTED, "Name": REDACTED}
    assert (vm.name, vm.system_code, vm.state) == (REDACTED, AWS_SYSTEM, "running")


def test_a_ledger_written_before_is_scrubbed_by_db_upgrade_and_the_next_scan_changes_nothing(
    rig: Rig,
) -> None:
    with collectors_before_the_allowlist():
        assert rig.scan()[0] == 0
        # A label changes between two scans: the `updated` event keeps both values.
        labels = {**ORDINARY_LABELS, SYSTEM_TAG: K8S_SYSTEM, "build-key": LABEL_TOKEN_LATER}
        rig.sim.update("deployment", EDU_A, WORKLOAD, metadata={"labels": labels})
        assert rig.scan()[0] == 0
    before = kpi(rig)
    engine = rig.engine()
    command.downgrade(alembic_config(engine), "0005")
    old = dump(rig.db_url)
    # What an older yiyun left: every secret, in raw, tags and the history.
    assert found({"dump": old}, SECRETS) == {"dump": SECRETS}
    assert any(
        type_ == "updated" and LABEL_TOKEN in json.dumps(diff)
        for type_, _, diff in last_run_events(rig)
    )

    code, out, err = rig.cli("--db", rig.db_url, "db", "upgrade")

    assert code == 0, out + err
    assert found({"dump": dump(rig.db_url), "upgrade": out + err}, SECRETS) == {}
    assert secret_rows(rig)["deployment"].tags == {
        **ORDINARY_LABELS, SYSTEM_TAG: K8S_SYSTEM, "build-key": REDACTED,
    }  # fmt: skip
    # The next scan finds every scrubbed row as it would write it: no event at all, nothing
    # in the KPI moved, and still no secret anywhere.
    code, out, err = rig.scan()
    assert code == 0, err
    assert last_run_events(rig) == []
    assert kpi(rig) == before == EXPECTED_KPI
    assert found({"dump": dump(rig.db_url), "scan": out + err}, SECRETS) == {}


def test_db_upgrade_on_a_scrubbed_ledger_changes_nothing(rig: Rig) -> None:
    """Running the scrub again (a re-run `db upgrade` from 0005) rewrites no row."""
    assert rig.scan()[0] == 0
    engine = rig.engine()
    with Session(engine) as session:
        before = {
            r.id: (r.raw, r.tags, r.name, r.content_hash) for r in session.exec(select(Resource))
        }
    command.downgrade(alembic_config(engine), "0005")

    assert rig.cli("--db", rig.db_url, "db", "upgrade")[0] == 0

    with Session(engine) as session:
        after = {
            r.id: (r.raw, r.tags, r.name, r.content_hash) for r in session.exec(select(Resource))
        }
    assert after == before
