"""Canary secrets go in (environment, credentials file, kubeconfig, database URL); after a full
run no output, log, report, export, metric or database row gives one back, and no classified
system is named anywhere."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from prometheus_client import generate_latest

from exporters.collector import ReadyFamilies
from exporters.server import Exporter, Refresh
from inventory.db import make_engine, upgrade
from inventory.settings import Settings
from inventory.sim import aws as sim_aws
from inventory.sim import k8s as sim_k8s
from inventory.sim.faults import FaultProxy, action_is, aws_error
from tests.hardening.conftest import YIYUN, Cli, isolated_env


def canary(what: str) -> str:
    return f"yiyunCanary{what}{uuid.uuid4().hex[:12]}"


ACCESS_KEY_ID = "ASIA" + uuid.uuid4().hex[:16].upper()
SECRET_ACCESS_KEY = canary("SecretKey")
SESSION_TOKEN = canary("SessionToken")
ENV_SECRET_ACCESS_KEY = canary("EnvSecretKey")
ENV_SESSION_TOKEN = canary("EnvSessionToken")
KUBE_TOKEN = canary("KubeToken")
DB_PASSWORD = canary("DbPassword")
SECRETS = [
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    ENV_SECRET_ACCESS_KEY,
    ENV_SESSION_TOKEN,
    KUBE_TOKEN,
    DB_PASSWORD,
]
# Classified (涉密) systems: counted everywhere, named nowhere.
CLASSIFIED = {"MIMI-CANARY-0001": "涉密金丝雀甲系统", "MIMI-CANARY-0002": "涉密金丝雀乙系统"}
CLASSIFIED_WORDS = [*CLASSIFIED, *CLASSIFIED.values(), "mimi-canary"]
FORMATS = ("table", "json", "csv", "md")
REGION = "us-east-1"
TAG = "yiyun.io/system"


@dataclass
class Harvest:
    """Everything the run gave back to anyone: outputs, logs and files, by where they came from."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, text: str) -> None:
        self.texts[where] = text

    def add_file(self, path: Path) -> None:
        payload = path.read_bytes()
        if zipfile.is_zipfile(io.BytesIO(payload)):  # XLSX: every part of the workbook
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                for name in archive.namelist():
                    self.add(f"{path.name}:{name}", archive.read(name).decode("utf-8", "replace"))
        else:
            self.add(path.name, payload.decode("utf-8", "replace"))

    def containing(self, words: list[str]) -> dict[str, list[str]]:
        found = {}
        for where, text in self.texts.items():
            hits = [word for word in words if word.lower() in text.lower()]
            if hits:
                found[where] = hits
        return found


REGISTER = [
    ["系统编码", "系统名称", "部门编码", "主管部门", "地市", "是否涉密", "等保级别", "联系人"],
    ["JS-EDU-0001", "教育管理系统", "JS-EDU", "江苏省教育厅", "省级", "否", "三级", "张三"],
    ["JS-EDU-0002", "招生考试系统", "JS-EDU", "江苏省教育厅", "省级", "否", "二级", "李四"],
    ["MIMI-CANARY-0001", CLASSIFIED["MIMI-CANARY-0001"], "JS-EDU", "江苏省教育厅", "省级", "是",
     "三级", "王五"],
    ["MIMI-CANARY-0002", CLASSIFIED["MIMI-CANARY-0002"], "JS-PS", "江苏省公安厅", "省级", "是",
     "三级", "赵六"],
    ["JS-PS-0001", "户籍管理系统", "JS-PS", "江苏省公安厅", "省级", "否", "三级", "钱七"],
]  # fmt: skip


@pytest.fixture
def estate(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path]]:
    """A frozen department cloud (moto) and a core cluster (the simulator, demanding the canary
    token), each behind a proxy that echoes credentials in one error, as broken gateways do."""
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        f"[edu]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = "
        f"{SECRET_ACCESS_KEY}\naws_session_token = {SESSION_TOKEN}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", ENV_SESSION_TOKEN)
    sim_aws.seed_instances(moto, REGION, count=2, tags={TAG: "JS-EDU-0001"})
    sim_aws.seed_instances(moto, REGION, count=1, tags={TAG: "MIMI-CANARY-0001"})
    sim_aws.seed_instances(moto, REGION, count=1)  # unattributed: listed with --details
    sim_aws.seed_buckets(
        moto, REGION, [f"mimi-{uuid.uuid4().hex[:8]}"], tags={TAG: "MIMI-CANARY-0001"}
    )
    echoed = (
        "The request signature we calculated does not match the signature you provided. The "
        f"canonical request was 'POST / host x-amz-security-token:{SESSION_TOKEN} "
        f"Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20261126/{REGION}/ec2/"
        "aws4_request, Signature=0123abcd'"
    )
    with (
        FaultProxy(moto) as aws_proxy,
        sim_k8s.KubernetesSimulator(token=KUBE_TOKEN, require_token=True) as sim,
        FaultProxy(sim.url) as k8s_proxy,
    ):
        aws_proxy.respond(
            action_is("DescribeVolumes"), 403, aws_error("ec2", "SignatureDoesNotMatch", echoed)
        )
        k8s_proxy.respond(
            lambda request: "/cronjobs" in request.path,
            403,
            json.dumps({"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
                        "message": f"gateway refused Authorization: Bearer {KUBE_TOKEN}"}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        for code in ("JS-EDU-0002", "MIMI-CANARY-0002"):
            namespace = code.lower()
            sim.add("namespace", sim_k8s.make_namespace(namespace, system=code))
            sim.add("deployment", sim_k8s.make_deployment(namespace, "app", replicas=2))
        kubeconfig = sim_k8s.write_kubeconfig(
            tmp_path / "kubeconfig", server=k8s_proxy.url, token=KUBE_TOKEN, context="core"
        )
        nodes = [
            {"id": "js-core", "name": "省级核心节点", "level": "province_core", "one_cloud": True,
             "city": "省级", "mlps_level": 3, "capacity": {"vcpu": 1000, "memory_gib": 4000},
             "sources": [{"kind": "kubernetes", "kubeconfig": str(kubeconfig),
                          "context": "core"}]},
            {"id": "edu-dc", "name": "省教育厅部门云", "level": "department_cloud",
             "one_cloud": False, "owner_department": "JS-EDU", "frozen_since": "2022-04-04",
             "sources": [{"kind": "aws", "endpoint_url": aws_proxy.url, "regions": [REGION],
                          "profile": "edu", "max_attempts": 2}]},
        ]  # fmt: skip
        node_file = tmp_path / "nodes.yaml"
        node_file.write_text(yaml.safe_dump({"nodes": nodes}, allow_unicode=True), "utf-8")
        register = tmp_path / "register.csv"
        with register.open("w", encoding="utf-8-sig", newline="") as handle:
            csv.writer(handle).writerows(REGISTER)
        yield register, node_file


@pytest.fixture
def secret_url(db_url: str) -> str:
    """The test database's URL with a canary password (PostgreSQL trusts loopback and ignores
    it); SQLite URLs carry no password."""
    if db_url.startswith("postgresql"):
        return db_url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    return db_url


def test_a_full_run_leaks_no_secret_and_names_no_classified_system(
    estate: tuple[Path, Path],
    secret_url: str,
    db_url: str,
    cli: Cli,
    tmp_path: Path,
) -> None:
    register, node_file = estate
    harvest = Harvest()

    def run(*args: str, ok: tuple[int, ...] = (0,)) -> str:
        code, out, err = cli("--db", secret_url, *args)
        assert code in ok, f"yiyun {' '.join(args)}: {out}{err}"
        harvest.add(" ".join(args), out + err)
        return out + err

    run("-v", "db", "upgrade")
    run("-v", "registry", "import", str(register))
    applied = run("nodes", "apply", str(node_file))
    if DB_PASSWORD in secret_url:
        assert "postgres:***@" in applied  # the URL is shown, its password never
    for verbosity in ("-v", "-vv", "-vvv"):
        run(verbosity, "--config", str(node_file), "scan", ok=(1,))  # the echoing scopes fail
    for fmt in FORMATS:
        for by in ((), ("--by", "city"), ("--by", "department"), ("--by", "node")):
            run("report", "adoption", "--format", fmt, *by)
        run("report", "violations", "--format", fmt, "--details", ok=(0, 1))
        run("report", "scans", "--format", fmt)
        run("registry", "list", "--format", fmt)
        run("nodes", "list", "--format", fmt)
        run("migrate", "assess", "--format", fmt)
    run("report", "adoption", "--snapshot")
    run("report", "adoption", "--history")
    for report, suffix in (("html", "html"), ("xlsx", "xlsx")):
        output = tmp_path / f"report.{suffix}"
        run("report", report, "--output", str(output))
        harvest.add_file(output)
    for department in ("JS-EDU", "JS-PS"):
        for fmt in ("md", "html", "json"):
            run("report", "scorecard", "--department", department, "--format", fmt)
    run("migrate", "deps", "infer")
    run("migrate", "plan", "create", "--source", "edu-dc", "--target", "js-core", "--name", "p1")
    run("migrate", "plan", "show", "p1", "--format", "json")
    run("migrate", "plan", "export", "p1")
    run("migrate", "status", "--format", "json")
    harvest.add("metrics", exposition(db_url))
    harvest.add("database", database_text(db_url))

    # The harvest is not empty-handed: logs at every level, systems named, classified counted.
    scans = [text for where, text in harvest.texts.items() if where.endswith(" scan")]
    assert all(" INFO " in text for text in scans)
    assert "JS-EDU-0001" in harvest.texts["registry list --format csv"]
    counts = json.loads(harvest.texts["report adoption --format json"])["counts"]
    assert counts["classified_excluded"] == len(CLASSIFIED)

    assert harvest.containing(SECRETS) == {}
    outputs = {k: v for k, v in harvest.texts.items() if k != "database"}
    assert Harvest(outputs).containing(CLASSIFIED_WORDS) == {}
    # The failures that echoed credentials are still reported, just without them.
    failures = harvest.texts["report scans --format json"]
    assert "SignatureDoesNotMatch" in failures and "HTTP403" in failures


@pytest.mark.parametrize(
    "line",
    [
        f"gateway refused Authorization: Bearer {KUBE_TOKEN}",
        f"{{'X-Amz-Security-Token': b'{SESSION_TOKEN}', 'Authorization': b'AWS4-HMAC-SHA256 "
        f"Credential={ACCESS_KEY_ID}/20261126/{REGION}/ec2/aws4_request'}}",
        f"canonical request: x-amz-security-token:{SESSION_TOKEN}",
        f"aws_secret_access_key = {SECRET_ACCESS_KEY}",
        f"cannot open postgresql://postgres:{DB_PASSWORD}@db.example/yiyun",
        f"Authorization: Basic {KUBE_TOKEN}",
    ],
    ids=["bearer-header", "botocore-headers", "canonical-request", "ini-line", "url", "basic"],
)
def test_log_redaction_masks_credentials_as_libraries_print_them(line: str) -> None:
    """What a library's debug line or a gateway's error carries, through the log formatter."""
    from inventory.logs import redact

    assert not [secret for secret in SECRETS if secret in redact(line)]


def exposition(db_url: str) -> str:
    """The exporter's /metrics text, refreshed from the ledger as `exporter serve` does."""
    engine = make_engine(db_url)
    try:
        exporter = Exporter(engine=engine, settings=Settings(database_url=db_url))
        assert exporter.refresh() is Refresh.OK
        text, _, health = exporter.collector.rendered()
        return text.decode() + generate_latest(ReadyFamilies(list(health))).decode()
    finally:
        engine.dispose()


def database_text(db_url: str) -> str:
    """Every value of every table, as text (JSON columns as their JSON)."""
    engine = make_engine(db_url)
    lines = []
    try:
        with engine.connect() as connection:
            for table in sa.inspect(connection).get_table_names():
                for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                    lines.append(f"{table}: " + json.dumps([str(v) for v in row], default=str))
    finally:
        engine.dispose()
    assert any(line.startswith("resource:") for line in lines)
    return "\n".join(lines)


def test_the_exporter_listens_on_loopback_unless_told_otherwise(
    secret_url: str, db_url: str, tmp_path: Path
) -> None:
    """`yiyun exporter serve` as an operator starts it: only 127.0.0.1, and its banner masks the
    database password."""
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    process = subprocess.Popen(
        [*YIYUN, "--db", secret_url, "exporter", "serve", "--port", "0"],
        env=isolated_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"serving http://([^/]+):(\d+)/metrics", banner)
        assert match, banner
        assert match.group(1) == "127.0.0.1"
        assert listening_addresses(int(match.group(2))) == {"127.0.0.1"}
        assert DB_PASSWORD not in banner
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert DB_PASSWORD not in output


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on `port`, from the kernel's own tables."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(".".join(str(b) for b in reversed(raw)))
                else:
                    found.add(raw.hex())
    return found
