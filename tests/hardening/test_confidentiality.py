"""No command names a classified (涉密) system unless asked: every command of the CLI, found by
walking the Typer app itself, in every format it prints and every file it writes, over an
estate whose classified system has resources on an AWS-compatible node (moto) and a
Kubernetes node (the simulator), a freeze-rule violation and a migration record."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
import yaml
from sqlmodel import Session, col, select

from inventory.confidentiality import REDACTED, ClassifiedLedger, Disclosure
from inventory.db import make_engine
from inventory.models import Resource, ScopeResult, System
from inventory.sim import aws as sim_aws
from inventory.sim import k8s as sim_k8s
from inventory.sim.faults import FaultProxy
from tests.hardening.conftest import Cli
from tests.hardening.test_secrets import exposition

TAG = "yiyun.io/system"
REGION = "us-east-1"
SERIAL = uuid.uuid4().hex[:8]
# The classified system, and every name its resources carry: none may leave without the flag.
CODE = f"MIMI-{SERIAL.upper()}"
NAME = f"涉密机要通信系统{SERIAL}"
NAMESPACE = f"mimi-ns-{SERIAL}"
DEPLOYMENT = f"mimi-app-{SERIAL}"
# A non-classified system's workload inside the classified namespace: the namespace names it.
LODGER = f"lodger-{SERIAL}"
INSTANCE_NAME = f"mimi-vm-{SERIAL}"
BUCKET = f"mimi-bkt-{SERIAL}"
# A code registered nowhere: a classified code must be answered exactly as this one is.
UNKNOWN = f"NONE-{SERIAL.upper()}"
FORMATS = ("table", "json", "csv", "md")
FLAG = "--include-classified"
WITHHELD_NOTE = "withheld as classified"


def register(classified: str) -> list[list[str]]:
    return [
        ["系统编码", "系统名称", "部门编码", "主管部门", "地市", "是否涉密", "等保级别"],
        ["JS-EDU-0001", "教育管理系统", "JS-EDU", "江苏省教育厅", "省级", "否", "二级"],
        ["JS-EDU-0002", "招生考试系统", "JS-EDU", "江苏省教育厅", "省级", "否", "二级"],
        [CODE, NAME, "JS-EDU", "江苏省教育厅", "省级", classified, "二级"],
    ]


# --- which command runs how ------------------------------------------------------------------

# Every command that reads systems or resources out of the ledger, and how the test runs it
# (the arguments after the command's path; {out} is a folder for the files it writes). Each
# runs without the flag (nothing classified may show) and with it (something must).
COVERED: dict[tuple[str, ...], list[tuple[str, ...]]] = {
    ("registry", "list"): [("--format", f) for f in FORMATS],
    ("report", "adoption"): [
        ("--format", f, *by) for f in FORMATS for by in ((), ("--by", "node"))
    ],
    ("report", "violations"): [
        ("--format", f, *details) for f in FORMATS for details in ((), ("--details",))
    ],
    ("report", "scans"): [("--format", f) for f in FORMATS],
    ("report", "html"): [("--output", "{out}/report.html")],
    ("report", "xlsx"): [("--output", "{out}/report.xlsx")],
    ("report", "scorecard"): [
        ("--department", "JS-EDU", "--format", "md"),
        ("--department", "JS-EDU", "--format", "json"),
        ("--department", "JS-EDU", "--format", "html", "--output", "{out}/card.html"),
    ],
    ("migrate", "deps", "list"): [("--format", f) for f in FORMATS],
    ("migrate", "assess"): [("--format", f) for f in FORMATS],
    ("migrate", "assess", "list"): [("--format", f) for f in FORMATS],
    ("migrate", "assess", "show"): [(CODE, "--format", f) for f in ("table", "json")],
    ("migrate", "plan", "show"): [("p1", "--format", f) for f in FORMATS],
    ("migrate", "plan", "export"): [
        ("p1", "--format", "json"),
        ("p1", "--format", "csv", "--output", "{out}/p1.csv"),
        ("p1", "--format", "json", "--output", "{out}/p1.json"),
    ],
    ("migrate", "status"): [
        ("--format", f, *by) for f in FORMATS for by in ((), ("--by", "department"))
    ],
    ("migrate", "history"): [
        *((system, "--format", f) for system in (CODE, "JS-EDU-0001") for f in FORMATS)
    ],
    ("infra", "import-spec"): [
        ("--node", "edu-dc"),
        ("--node", "js-core", "--output", "{out}/spec.json"),
    ],
    # The log keeps the advance made before the register classified the system, notes and all.
    ("access", "audit"): [
        *(("--format", f) for f in FORMATS),
        ("--target", CODE, "--format", "json"),
    ],
    # Last, so that every report above reads the same scans. A line per scope, on stderr.
    ("scan",): [("--node", "js-core")],
}

# Covered commands whose output, with the flag, counts the classified system but still has no
# row that could name it: there the flag must change the output, not show a name.
COUNTED_NOT_NAMED: dict[tuple[str, ...], str] = {
    ("migrate", "status"): "a classified system's KPI status is classified_excluded, so it is "
    "never a discrepancy; the flag counts it in its plan's progress",
}

# Commands that cannot name a classified system, and why; the test still greps what the ones
# it runs print.
NAMES_NOTHING: dict[tuple[str, ...], str] = {
    ("db", "upgrade"): "prints the schema revision",
    ("registry", "import"): "prints counts and the problems of the file it was given",
    ("nodes", "apply"): "prints nodes and sources from the node file; no system or resource",
    ("nodes", "retire"): "prints the node id and how many rows it tombstoned",
    ("nodes", "list"): "lists nodes and their sources' ids and kinds; no system or resource",
    ("demo",): "builds its own sample estate in a fresh ledger; prints counts and the KPI",
    ("exporter", "serve"): "labels never carry a system or resource (DESIGN.md); checked here",
    ("serve",): "prints where it listens; the API never serves a classified system "
    "(tests/service/test_scope_property.py, test_access_matrix.py)",
    ("migrate", "deps", "import"): "prints counts and the problems of the file it was given",
    ("migrate", "deps", "infer"): "prints how many dependencies it added and removed",
    ("migrate", "deps", "add"): "echoes the codes it was given; a classified one is refused "
    "exactly as an unknown one",
    ("migrate", "deps", "delete"): "echoes the id it was given and the ends of an edge the "
    "caller may see; one with a classified end reads as unknown",
    ("migrate", "assess", "override"): "echoes the code it was given; a classified one is "
    "refused exactly as an unknown one (checked here)",
    ("migrate", "plan", "create"): "prints counts; classified systems never enter a plan (R3)",
    ("migrate", "plan", "list"): "plans, nodes and counts; no system",
    ("migrate", "plan", "archive"): "echoes the plan name it was given, or the started systems "
    "that keep it in force (never a classified one: those never enter a plan, R3)",
    ("migrate", "plan", "import"): "prints codes from the file it was given, refusing any "
    "classified one as unknown",
    ("migrate", "advance"): "echoes the code it was given; a classified one is refused exactly "
    "as an unknown one (checked here)",
    ("migrate", "transitions"): "the fixed table of migration states",
    ("infra", "check"): "reads only the stack file and plan exports it is given, never the ledger",
    ("access", "grant"): "echoes the principal and the grant it was given; no system",
    ("access", "revoke"): "echoes the principal and the grant it was given; no system",
    ("access", "list"): "principals, roles and scopes (a department's code at most); no system",
    ("tokens", "create"): "prints the token, its principal, role and scope; no system",
    ("tokens", "list"): "tokens with their principals, roles and scopes; no system",
    ("tokens", "revoke"): "echoes the token id it was given; no system",
}


def command_paths(app: typer.Typer, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command the app mounts, as the words a user types; a group that runs on its own
    (`migrate assess`) is one too."""
    found = set()
    for command in app.registered_commands:
        assert command.name, f"an unnamed command under {prefix}: name it in cli.py"
        found.add((*prefix, command.name))
    for group in app.registered_groups:
        assert group.name and group.typer_instance is not None
        path = (*prefix, group.name)
        instance = group.typer_instance
        if instance.registered_callback is not None and instance.info.invoke_without_command:
            found.add(path)
        found |= command_paths(instance, path)
    return found


def test_every_command_is_covered_or_said_to_name_nothing() -> None:
    """A command added later without a row in either table fails here."""
    from cli import app

    paths = command_paths(app)
    assert not set(COVERED) & set(NAMES_NOTHING)
    assert paths - set(COVERED) - set(NAMES_NOTHING) == set(), "commands nobody checked"
    assert (set(COVERED) | set(NAMES_NOTHING)) - paths == set(), "rows for no command"


def test_every_covered_command_takes_the_flag() -> None:
    from typer.main import get_command

    from cli import app

    root = get_command(app)
    for path in COVERED:
        command = root
        for word in path:
            command = command.commands[word]  # type: ignore[attr-defined]
        flags = {opt for param in command.params for opt in getattr(param, "opts", ())}
        assert FLAG in flags, " ".join(path)


# --- the estate ------------------------------------------------------------------------------


@dataclass
class Harvest:
    """What one pass over the commands gave back, by where it came from."""

    texts: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)

    def add_file(self, where: str, path: Path) -> None:
        payload = path.read_bytes()
        if zipfile.is_zipfile(io.BytesIO(payload)):  # XLSX: every part of the workbook
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                for name in archive.namelist():
                    part = archive.read(name).decode("utf-8", "replace")
                    self.texts[f"{where} {path.name}:{name}"] = part
        else:
            self.texts[f"{where} {path.name}"] = payload.decode("utf-8-sig", "replace")


def spellings(word: str) -> set[str]:
    """A word as any output may carry it: as is, or escaped inside JSON."""
    return {word.lower(), json.dumps(word)[1:-1].lower()}


def naming(texts: dict[str, str], words: set[str]) -> dict[str, list[str]]:
    found = {}
    for where, text in texts.items():
        low = text.lower()
        hits = sorted(w for w in words if any(s in low for s in spellings(w)))
        if hits:
            found[where] = hits
    return found


@pytest.fixture
def estate(moto: str, tmp_path: Path) -> Iterator[tuple[Path, FaultProxy]]:
    """edu-dc: a frozen department cloud on moto, holding the classified system's VM and
    bucket (new since the freeze: violations). js-core: a unified-cloud cluster on the
    simulator with a namespace labelled with the classified system, its deployment, and a
    lodger (another system's deployment) in it."""
    sim_aws.seed_instances(moto, REGION, count=1, tags={TAG: "JS-EDU-0001"})
    sim_aws.seed_instances(moto, REGION, count=1, tags={TAG: CODE, "Name": INSTANCE_NAME})
    sim_aws.seed_instances(moto, REGION, count=1)  # unattributed
    sim_aws.seed_buckets(moto, REGION, [BUCKET], tags={TAG: CODE})
    with (
        sim_k8s.KubernetesSimulator() as sim,
        FaultProxy(sim.url) as k8s_proxy,
    ):
        sim.add("namespace", sim_k8s.make_namespace("jsedu-app", system="JS-EDU-0002"))
        sim.add("deployment", sim_k8s.make_deployment("jsedu-app", "web", replicas=2))
        sim.add("namespace", sim_k8s.make_namespace(NAMESPACE, system=CODE))
        sim.add("deployment", sim_k8s.make_deployment(NAMESPACE, DEPLOYMENT, replicas=2))
        sim.add(
            "deployment",
            sim_k8s.make_deployment(NAMESPACE, LODGER, replicas=1, system="JS-EDU-0002"),
        )
        kubeconfig = sim_k8s.write_kubeconfig(
            tmp_path / "kubeconfig", server=k8s_proxy.url, token=sim.token, context="core"
        )
        nodes = [
            {"id": "js-core", "name": "省级核心节点", "level": "province_core", "one_cloud": True,
             "city": "省级", "mlps_level": 3, "capacity": {"vcpu": 1000, "memory_gib": 4000},
             "sources": [{"id": "k8s", "kind": "kubernetes", "kubeconfig": str(kubeconfig),
                          "context": "core", "namespaces": ["jsedu-app", NAMESPACE]}]},
            {"id": "edu-dc", "name": "省教育厅部门云", "level": "department_cloud",
             "one_cloud": False, "owner_department": "JS-EDU", "frozen_since": "2022-04-04",
             "sources": [{"id": "aws", "kind": "aws", "endpoint_url": moto,
                          "regions": [REGION]}]},
        ]  # fmt: skip
        (tmp_path / "nodes.yaml").write_text(
            yaml.safe_dump({"nodes": nodes}, allow_unicode=True), "utf-8"
        )
        for version, classified in (("before", "否"), ("after", "是")):
            with (tmp_path / f"register-{version}.csv").open(
                "w", encoding="utf-8-sig", newline=""
            ) as handle:
                csv.writer(handle).writerows(register(classified))
        (tmp_path / "deps.csv").write_text(
            f"from,to,type,strength\nJS-EDU-0001,{CODE},calls,soft\n", "utf-8"
        )
        yield tmp_path, k8s_proxy


def build_ledger(cli: Cli, db_url: str, folder: Path, k8s_proxy: FaultProxy) -> None:
    """The estate scanned twice, planned while the system was not yet classified, moved a
    step with notes naming it, then reclassified (涉密) by the register."""

    def run(*args: str, ok: tuple[int, ...] = (0,)) -> None:
        code, out, err = cli("--db", db_url, *args)
        assert code in ok, f"yiyun {' '.join(args)}: {out}{err}"

    run("db", "upgrade")
    run("registry", "import", str(folder / "register-before.csv"))
    run("nodes", "apply", str(folder / "nodes.yaml"))
    run("--config", str(folder / "nodes.yaml"), "scan")
    run("migrate", "deps", "import", str(folder / "deps.csv"))
    run("migrate", "assess")
    run("migrate", "plan", "create", "--source", "edu-dc", "--target", "js-core",
        "--name", "p1", "--max-systems-per-wave", "1")  # fmt: skip
    run("migrate", "advance", CODE, "--to", "provisioning", "--by", "张三",
        "--note", f"为{NAME}申请资源", "--evidence", f"{CODE}-ticket")  # fmt: skip
    run("migrate", "advance", "JS-EDU-0001", "--to", "provisioning", "--by", "张三",
        "--note", f"与{NAME}（{CODE}）同批")  # fmt: skip
    # The second scan is refused the classified namespace's deployments, as an API server
    # refuses: the message names the namespace.
    k8s_proxy.respond(
        lambda request: f"/namespaces/{NAMESPACE}/deployments" in request.path,
        403,
        json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "Forbidden", "code": 403,
                    "message": f'deployments.apps is forbidden: User "yiyun" cannot list '
                               f'resource "deployments" in API group "apps" in the namespace '
                               f'"{NAMESPACE}"'}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    run("--config", str(folder / "nodes.yaml"), "scan", ok=(1,))
    run("registry", "import", str(folder / "register-after.csv"))
    run("migrate", "deps", "infer")
    run("migrate", "assess")
    # The namespace's listings are old: evidence-v2 sets its deployments aside and says so.
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            long_ago = datetime.now(tz=UTC) - timedelta(days=30)
            session.execute(
                sa.update(ScopeResult)
                .where(col(ScopeResult.scope) == NAMESPACE)
                .values(started_at=long_ago, finished_at=long_ago)
            )
            session.commit()
    finally:
        engine.dispose()


def classified_words(db_url: str) -> set[str]:
    """The code, the name, and the name and native id of every row attributed to the system
    (by its label or its namespace), read from the ledger itself."""
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            rows = session.exec(
                select(Resource).where(
                    sa.or_(
                        col(Resource.system_code) == CODE,
                        col(Resource.namespace) == NAMESPACE,
                        col(Resource.name) == NAMESPACE,
                    )
                )
            ).all()
            assert session.exec(select(System.classified).where(System.code == CODE)).one()
    finally:
        engine.dispose()
    words = {CODE, NAME, NAMESPACE}
    for row in rows:
        words.add(row.native_id)
        if row.name:
            words.add(row.name)
    # What the estate put there is in the ledger, under those names.
    assert {INSTANCE_NAME, BUCKET, NAMESPACE, DEPLOYMENT, LODGER} <= words
    assert {row.kind for row in rows} >= {"vm", "bucket", "namespace", "deployment"}
    return words


def run_covered(cli: Cli, db_url: str, out: Path, *extra: str) -> dict[tuple[str, ...], Harvest]:
    out.mkdir()
    harvests: dict[tuple[str, ...], Harvest] = {}
    for path, invocations in COVERED.items():
        harvest = harvests.setdefault(path, Harvest())
        for arguments in invocations:
            args = [*path, *(a.replace("{out}", str(out)) for a in arguments), *extra]
            code, stdout, stderr = cli("--db", db_url, *args)
            where = " ".join(args)
            # 2: a classified code asked for without the flag is refused as unknown.
            assert code in (0, 1, 2), f"yiyun {where}: {stdout}{stderr}"
            harvest.exits[where] = code
            harvest.texts[where] = stdout + stderr
            harvest.outputs[where] = stdout
            harvest.errors[where] = stderr
            for argument in args:
                if argument.startswith(str(out)):
                    harvest.add_file(where, Path(argument))
    return harvests


def test_no_command_names_a_classified_system_unless_asked(
    estate: tuple[Path, FaultProxy],
    db_url: str,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, k8s_proxy = estate
    # Wide enough that no table folds a name over two lines, where no search would find it.
    monkeypatch.setenv("COLUMNS", "1000")
    build_ledger(cli, db_url, folder, k8s_proxy)
    words = classified_words(db_url)

    hidden = run_covered(cli, db_url, tmp_path / "hidden")
    shown = run_covered(cli, db_url, tmp_path / "shown", FLAG)

    for path in COVERED:
        asked_by_code = {w: t for w, t in hidden[path].texts.items() if f" {CODE} " in w}
        others = {w: t for w, t in hidden[path].texts.items() if w not in asked_by_code}
        assert naming(others, words) == {}, " ".join(path)
        # Asked for the classified system by its code, a command answers as it does for a
        # code registered nowhere: nothing confirms that the system exists.
        for where, text in asked_by_code.items():
            code, out, err = cli("--db", db_url, *where.replace(CODE, UNKNOWN).split(" "))
            assert text == (out + err).replace(UNKNOWN, CODE), where
            assert naming({where: text.replace(CODE, "")}, words) == {}, where
        # It says that something was withheld (unless asked by code), and how to see it.
        if others:
            assert any(WITHHELD_NOTE in hidden[path].errors[w] for w in others), " ".join(path)
        # The test can see them: with the flag, the same commands name them.
        if path in COUNTED_NOT_NAMED:
            # Its counts change (stdout alone: the note on stderr differs anyway).
            assert list(shown[path].outputs.values()) != list(hidden[path].outputs.values())
        else:
            assert naming(shown[path].texts, words), " ".join(path)
        assert not any(WITHHELD_NOTE in err for err in shown[path].errors.values())
        assert 2 not in shown[path].exits.values(), shown[path].texts
        assert set(hidden[path].exits.values()) <= ({0, 1, 2} if asked_by_code else {0, 1})

    # Where a row must still count, it is there, redacted.
    violations = json.loads(_stdout(cli, db_url, "report", "violations", "--format", "json"))
    assert [v["native_id"] for v in violations if v["native_id"] == REDACTED]
    adoption = json.loads(_stdout(cli, db_url, "report", "adoption", "--format", "json"))
    assert f"js-core/k8s/deployment/{REDACTED}" in adoption["expired_scopes"]
    assert adoption["counts"]["classified_excluded"] == 1
    scans = json.loads(_stdout(cli, db_url, "report", "scans", "--format", "json"))
    refused = [s for s in scans if s["scope"] == REDACTED and s["status"] != "ok"]
    assert refused and REDACTED in refused[0]["error_message"]

    # The commands that name nothing, run on the same ledger, name nothing either.
    quiet = Harvest()
    for args in (
        *(("nodes", "list", "--format", f) for f in FORMATS),
        *(("migrate", "plan", "list", "--format", f) for f in FORMATS),
        ("migrate", "transitions"),
        ("migrate", "deps", "infer"),
        ("migrate", "plan", "import", "p1", str(tmp_path / "hidden" / "p1.csv"), "--by", "李四",
         "--dry-run"),
    ):  # fmt: skip
        code, out, err = cli("--db", db_url, *args)
        assert code in (0, 1), f"{args}: {out}{err}"
        quiet.texts[" ".join(args)] = out + err
    quiet.texts["metrics"] = exposition(db_url)
    assert naming(quiet.texts, words) == {}
    for args in (
        ("migrate", "advance", CODE, "--to", "cancelled", "--by", "李四"),
        ("migrate", "assess", "override", CODE, "--by", "李四", "--rationale", "r",
         "--readiness", "blocked"),
    ):  # fmt: skip
        refused_for = cli("--db", db_url, *args)
        unknown = cli("--db", db_url, *(UNKNOWN if a == CODE else a for a in args))
        assert refused_for[0] != 0
        assert refused_for == tuple(
            part.replace(UNKNOWN, CODE) if isinstance(part, str) else part for part in unknown
        )


def _stdout(cli: Cli, db_url: str, *args: str) -> str:
    code, out, err = cli("--db", db_url, *args)
    assert code in (0, 1), err
    return out


def test_the_note_is_in_the_readers_language(
    estate: tuple[Path, FaultProxy], db_url: str, cli: Cli
) -> None:
    folder, _ = estate
    for args in (
        ("db", "upgrade"),
        ("registry", "import", str(folder / "register-after.csv")),
    ):
        assert cli("--db", db_url, *args)[0] == 0
    _, _, zh = cli("--db", db_url, "--lang", "zh", "registry", "list")
    _, _, en = cli("--db", db_url, "--lang", "en", "registry", "list")
    assert "已隐去涉密内容：1 个系统" in zh
    assert "withheld as classified (涉密): 1 system(s)" in en


def test_free_text_loses_codes_names_and_namespaces_but_not_their_neighbours() -> None:
    ledger = ClassifiedLedger(
        codes=frozenset({"JS-EDU-1"}),
        names=frozenset({"机要通信系统"}),
        namespaces=frozenset({("js-core", "mimi-ns")}),
    )
    text, count = ledger.redact_text(
        "after JS-EDU-1 and JS-EDU-12; 与机要通信系统同批; namespace js-core/mimi-ns, mimi-nsx"
    )
    assert text == (
        f"after {REDACTED} and JS-EDU-12; 与{REDACTED}同批; namespace js-core/{REDACTED}, mimi-nsx"
    )
    assert count == 3
    assert Disclosure(include_classified=True).text(None, "JS-EDU-1") == "JS-EDU-1"
