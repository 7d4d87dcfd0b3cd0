"""Everyday drift under the real `yiyun scan`: a listing that lacks too much is held, scopes the
node file drops are retired, and a scan run always ends in a state that says how it ended.

Each test shows the ledger, the KPI and the exit code before and after, on SQLite and
PostgreSQL, against moto's server and the Kubernetes simulator behind fault proxies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import Session, col, select

from inventory.models import AdoptionSnapshot, Resource, ResourceEvent, ScanRun, ScopeResult
from inventory.sim.k8s import make_deployment
from tests.hardening.conftest import YIYUN, Cli, isolated_env
from tests.hardening.rig import (
    AWS_NODE,
    K8S_NODE,
    NAMESPACES,
    REGIONS,
    Rig,
    running_rig,
)

EDU_A, EDU_B = NAMESPACES
US, EU = REGIONS
# A system whose only evidence is a dozen deployments in one namespace: enough rows for the
# sweep guard (at least 10), and a KPI status that moves if they are wrongly tombstoned.
GUARDED_SYSTEM = "JS-EDU-2"
GUARDED = [f"api-{n:02d}" for n in range(12)]
REGISTER = (
    "system_code,name,department_code,department,city,classified,mlps_level\n"
    "JS-A,省级核心业务系统,JS-GOV,江苏省政府办公厅,省级,否,3\n"
    "JS-EDU-1,教育综合管理系统,JS-EDU,江苏省教育厅,省级,否,2\n"
    f"{GUARDED_SYSTEM},教育接口平台,JS-EDU,江苏省教育厅,省级,否,2\n"
)


@pytest.fixture
def rig(
    moto: str, db_url: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    with running_rig(moto, db_url, cli, tmp_path, monkeypatch) as rig:
        for name in GUARDED:
            rig.sim.add("deployment", make_deployment(EDU_A, name, system=GUARDED_SYSTEM))
        register = tmp_path / "register.csv"
        register.write_text(REGISTER, encoding="utf-8")
        assert cli("--db", db_url, "registry", "import", str(register))[0] == 0
        yield rig


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


def scope_result(rig: Rig, kind: str, scope: str, node: str = K8S_NODE) -> ScopeResult:
    _, results = rig.last_run()
    (found,) = [r for r in results if (r.node_id, r.kind, r.scope) == (node, kind, scope)]
    return found


def live_names(rig: Rig, kind: str, scope: str, node: str = K8S_NODE) -> set[str]:
    with Session(rig.engine()) as session:
        return set(
            session.exec(
                select(Resource.name).where(
                    Resource.node_id == node,
                    Resource.kind == kind,
                    Resource.scope == scope,
                    col(Resource.deleted_at).is_(None),
                )
            )
        )


def events_of(rig: Rig, names: list[str], type_: str) -> list[dict[str, Any] | None]:
    with Session(rig.engine()) as session:
        return list(
            session.exec(
                select(ResourceEvent.diff)
                .join(Resource, col(Resource.id) == col(ResourceEvent.resource_id))
                .where(col(Resource.name).in_(names), ResourceEvent.type == type_)
            )
        )


def deployments_path(namespace: str) -> Callable[[Any], bool]:
    return lambda request: request.path.startswith(
        f"/apis/apps/v1/namespaces/{namespace}/deployments"
    )


EMPTY_DEPLOYMENT_LIST = json.dumps(
    {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": []}
).encode()


# --- the sweep guard ------------------------------------------------------------------------


def test_an_empty_listing_is_held_and_the_next_true_listing_restores_nothing_lost(
    rig: Rig,
) -> None:
    assert rig.scan()[0] == 0
    before_live = live_names(rig, "deployment", EDU_A)
    assert set(GUARDED) <= before_live
    assert kpi(rig)[GUARDED_SYSTEM] == "off_cloud"
    # A proxy in front of the cluster answers one listing with a well-formed, empty list.
    rig.k8s_proxy.respond(deployments_path(EDU_A), 200, EMPTY_DEPLOYMENT_LIST, times=1)

    code, _, err = rig.scan()

    assert code == 1, err
    assert "--confirm-deletions" in err and f"--node {K8S_NODE}" in err
    held = scope_result(rig, "deployment", EDU_A)
    assert (held.status, held.sweep, held.held, held.deleted) == (
        "held",
        "held",
        len(before_live),
        0,
    )
    assert live_names(rig, "deployment", EDU_A) == before_live
    assert kpi(rig)[GUARDED_SYSTEM] == "off_cloud"  # not no_evidence
    assert len(events_of(rig, GUARDED, "held")) == len(GUARDED)
    assert events_of(rig, GUARDED, "deleted") == []
    run, _ = rig.last_run()
    assert run.status == "failed"

    # The next listing returns them all: nothing was lost, nothing is deleted.
    code, _, err = rig.scan()
    assert code == 0, err
    assert scope_result(rig, "deployment", EDU_A).status == "ok"
    assert live_names(rig, "deployment", EDU_A) == before_live
    assert events_of(rig, GUARDED, "deleted") == []


def test_a_held_sweep_goes_ahead_when_the_next_listing_still_lacks_the_same_rows(
    rig: Rig,
) -> None:
    assert rig.scan()[0] == 0
    assert kpi(rig)[GUARDED_SYSTEM] == "off_cloud"
    for name in GUARDED:  # really deleted from the cluster
        rig.sim.delete("deployment", EDU_A, name)

    code, _, err = rig.scan()
    assert code == 1, err
    assert scope_result(rig, "deployment", EDU_A).status == "held"
    assert set(GUARDED) <= live_names(rig, "deployment", EDU_A)
    assert kpi(rig)[GUARDED_SYSTEM] == "off_cloud"

    code, _, err = rig.scan()

    assert code == 0, err
    agreed = scope_result(rig, "deployment", EDU_A)
    assert (agreed.status, agreed.sweep, agreed.deleted) == ("ok", "agreed", len(GUARDED))
    assert not set(GUARDED) & live_names(rig, "deployment", EDU_A)
    assert events_of(rig, GUARDED, "deleted") == [{"reason": "agreed"}] * len(GUARDED)
    assert kpi(rig)[GUARDED_SYSTEM] == "no_evidence"
    assert rig.live() == rig.truth()


def test_an_operator_confirms_held_deletions(rig: Rig) -> None:
    assert rig.scan()[0] == 0
    for name in GUARDED:
        rig.sim.delete("deployment", EDU_A, name)
    assert rig.scan()[0] == 1

    # Confirming needs a node: a blanket confirmation is refused and changes nothing.
    code, _, err = rig.scan("--confirm-deletions")
    assert code == 2 and "--node" in err
    assert set(GUARDED) <= live_names(rig, "deployment", EDU_A)

    code, _, err = rig.scan("--node", K8S_NODE, "--confirm-deletions", "--by", "张三")

    assert code == 0, err
    confirmed = scope_result(rig, "deployment", EDU_A)
    assert (confirmed.status, confirmed.sweep) == ("ok", "confirmed")
    assert events_of(rig, GUARDED, "deleted") == [{"reason": "confirmed", "by": "张三"}] * len(
        GUARDED
    )
    assert kpi(rig)[GUARDED_SYSTEM] == "no_evidence"
    code, out, _ = rig.cli("--db", rig.db_url, "report", "scans", "--format", "json")
    rows = json.loads(out)
    (row,) = [r for r in rows if (r["kind"], r["scope"]) == ("deployment", EDU_A)]
    assert (row["sweep"], row["deleted"], row["run_status"]) == ("confirmed", 12, "ok")


def test_small_deletions_are_not_held(rig: Rig) -> None:
    assert rig.scan()[0] == 0
    for name in GUARDED[:3]:
        rig.sim.delete("deployment", EDU_A, name)

    code, _, err = rig.scan()

    assert code == 0, err
    result = scope_result(rig, "deployment", EDU_A)
    assert (result.status, result.sweep, result.deleted) == ("ok", None, 3)
    assert rig.live() == rig.truth()


# --- scopes the node file no longer plans ---------------------------------------------------


def edit_node_file(rig: Rig, change: Callable[[dict[str, Any]], None]) -> None:
    document = yaml.safe_load(rig.node_file.read_text(encoding="utf-8"))
    change({node["id"]: node for node in document["nodes"]})
    rig.node_file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


def retired_reasons(rig: Rig) -> dict[tuple[str, str, str], int]:
    """(node, kind, scope) → rows tombstoned with reason scope_retired."""
    found: dict[tuple[str, str, str], int] = {}
    with Session(rig.engine()) as session:
        rows = session.exec(
            select(Resource.node_id, Resource.kind, Resource.scope, ResourceEvent.diff).join(
                ResourceEvent, col(ResourceEvent.resource_id) == col(Resource.id)
            )
        )
        for node, kind, scope, diff in rows:
            if diff == {"reason": "scope_retired"}:
                found[(node, kind, scope)] = found.get((node, kind, scope), 0) + 1
    return found


def test_a_region_and_a_namespace_removed_from_the_node_file_are_retired(rig: Rig) -> None:
    assert rig.scan()[0] == 0
    live_before = rig.live_by_scope()
    assert (AWS_NODE, "vm", EU) in live_before and (K8S_NODE, "deployment", EDU_B) in live_before

    def narrow(nodes: dict[str, Any]) -> None:
        nodes[AWS_NODE]["sources"][0]["regions"] = [US]
        nodes[K8S_NODE]["sources"][0]["namespaces"] = [EDU_A]

    edit_node_file(rig, narrow)
    code, _, err = rig.scan()

    assert code == 0, err
    live_after = rig.live_by_scope()
    retired_scopes = {key for key in live_before if key[2] in (EU, EDU_B)}
    assert retired_scopes and not retired_scopes & set(live_after)
    # Every other scope is untouched.
    assert {k: v for k, v in live_before.items() if k not in retired_scopes} == live_after
    assert retired_reasons(rig) == {key: len(live_before[key]) for key in retired_scopes}
    _, results = rig.last_run()
    retired = {(r.node_id, r.kind, r.scope): r for r in results if r.status == "retired"}
    assert set(retired) == retired_scopes
    assert all(r.deleted == len(live_before[k]) for k, r in retired.items())
    assert "retired" in err  # the run reports each retirement
    # JS-A keeps its US evidence; JS-EDU-2 lives in edu-a, which stays.
    statuses = kpi(rig)
    assert (statuses["JS-A"], statuses[GUARDED_SYSTEM]) == ("on_cloud", "off_cloud")

    # Nothing left to retire: the next scan is routine.
    code, _, err = rig.scan()
    assert code == 0, err
    _, results = rig.last_run()
    assert not [r for r in results if r.status == "retired"]


def test_a_narrowed_service_list_retires_its_kinds(rig: Rig) -> None:
    assert rig.scan()[0] == 0
    assert rig.live_by_scope().get((AWS_NODE, "db_instance", US))

    def without_rds(nodes: dict[str, Any]) -> None:
        nodes[AWS_NODE]["sources"][0]["services"] = ["ec2", "s3"]

    edit_node_file(rig, without_rds)
    code, _, err = rig.scan()

    assert code == 0, err
    live = rig.live_by_scope()
    assert not [key for key in live if key[1] == "db_instance"]
    assert (AWS_NODE, "vm", US) in live and (AWS_NODE, "bucket", "*") in live


def test_a_node_whose_every_source_was_removed_is_retired_scope_by_scope(rig: Rig) -> None:
    assert rig.scan()[0] == 0
    before = rig.live_by_scope()
    assert kpi(rig)["JS-EDU-1"] == "off_cloud"

    def no_sources(nodes: dict[str, Any]) -> None:
        nodes[K8S_NODE]["sources"] = []

    edit_node_file(rig, no_sources)
    code, _, err = rig.scan()

    assert code == 0, err
    after = rig.live_by_scope()
    assert not [key for key in after if key[0] == K8S_NODE]
    assert {k: v for k, v in before.items() if k[0] == AWS_NODE} == after
    assert kpi(rig)["JS-EDU-1"] == "no_evidence"


def test_a_source_that_cannot_be_planned_keeps_its_rows(rig: Rig) -> None:
    assert rig.scan()[0] == 0
    before = rig.live_by_scope()

    def broken_kubeconfig(nodes: dict[str, Any]) -> None:
        nodes[K8S_NODE]["sources"][0]["kubeconfig"] = str(rig.directory / "missing")

    edit_node_file(rig, broken_kubeconfig)
    code, _, err = rig.scan()

    assert code == 1, err
    assert retired_reasons(rig) == {}
    assert rig.live_by_scope() == before


# --- how a run ends -------------------------------------------------------------------------


def scans_report(rig: Rig, *options: str) -> list[dict[str, Any]]:
    code, out, err = rig.cli("--db", rig.db_url, "report", "scans", "--format", "json", *options)
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def start_scan(rig: Rig, tmp_path: Path) -> subprocess.Popen[bytes]:
    """`yiyun scan` in a process of its own, with every Kubernetes answer held back a while so
    it can be stopped mid-run."""
    command = [*YIYUN, "--db", rig.db_url, "--config", str(rig.node_file), "scan"]
    env = isolated_env(tmp_path, YIYUN_LANG="en")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(check: Callable[[], object], *, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        threading.Event().wait(0.02)


def results_of_run(engine: sa.Engine, run_id: int) -> int:
    with Session(engine) as session:
        return len(session.exec(select(ScopeResult).where(ScopeResult.run_id == run_id)).all())


def newest_run(engine: sa.Engine) -> ScanRun | None:
    with Session(engine) as session:
        return session.exec(select(ScanRun).order_by(col(ScanRun.id).desc())).first()


def scan_in_flight(
    rig: Rig, tmp_path: Path, *, delay: float, listed: int = 0
) -> tuple[subprocess.Popen[bytes], sa.Engine]:
    """A second `yiyun scan` in a process of its own, every Kubernetes answer held back by
    `delay`, returned once its run has planned and recorded `listed` scope results."""
    engine = rig.engine()
    first = newest_run(engine)
    assert first is not None
    rig.sim.delay(delay)
    process = start_scan(rig, tmp_path)
    wait_for(
        lambda: (
            (run := newest_run(engine)) is not None
            and run.id != first.id
            and run.planned is not None
            and results_of_run(engine, run.id) >= listed
        ),
        what="the scan to get under way",
    )
    return process, engine


def test_ctrl_c_ends_the_run_interrupted_with_exit_130_and_sweeps_nothing(
    rig: Rig, tmp_path: Path
) -> None:
    assert rig.scan()[0] == 0
    before = rig.live_by_scope()
    for name in GUARDED[:2]:  # deleted: a completed listing of edu-a would sweep them
        rig.sim.delete("deployment", EDU_A, name)
    process, engine = scan_in_flight(rig, tmp_path, delay=0.3, listed=1)

    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)

    text = err.decode()
    assert process.returncode == 130, text
    assert "Traceback" not in text
    assert "scan interrupted" in text
    run = newest_run(engine)
    assert run is not None and (run.status, run.finished_at is not None) == ("interrupted", True)
    rows = scans_report(rig)
    assert {row["run_status"] for row in rows} == {"interrupted"}
    assert [row for row in rows if row["status"] == "not_run"], "some scopes never ran"
    assert len(rows) == len(run.planned or [])
    # Nothing was swept by the interrupted run, and the KPI still sees every system.
    assert rig.live_by_scope() == before
    assert kpi(rig)[GUARDED_SYSTEM] == "off_cloud"

    rig.sim.reset_faults()
    code, _, err = rig.scan()
    assert code == 0, err
    assert rig.live() == rig.truth()


def test_a_killed_run_is_closed_as_abandoned_by_the_next_report(rig: Rig, tmp_path: Path) -> None:
    assert rig.scan()[0] == 0
    process, engine = scan_in_flight(rig, tmp_path, delay=0.3)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    killed = newest_run(engine)
    assert killed is not None and killed.status == "running"

    # PostgreSQL frees a dead client's advisory locks once its backend notices the closed
    # socket: the report that finds them free closes the run (one right away may not yet).
    wait_for(
        lambda: {row["run_status"] for row in scans_report(rig)} != {"running"},
        what="the dead scan's locks to be released",
    )
    rows = scans_report(rig)

    assert {row["run_status"] for row in rows} == {"abandoned"}
    assert [row for row in rows if row["status"] == "not_run"]
    run = newest_run(engine)
    assert run is not None and (run.status, run.finished_at is not None) == ("abandoned", True)
    code, out, _ = rig.cli("--db", rig.db_url, "report", "scans", "--failed")
    assert code == 0 and "abandoned" in out


def test_a_live_scan_is_never_taken_for_abandoned(rig: Rig, tmp_path: Path) -> None:
    assert rig.scan()[0] == 0
    process, engine = scan_in_flight(rig, tmp_path, delay=0.2)

    rows = scans_report(rig)

    assert {row["run_status"] for row in rows} == {"running"}
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    run = newest_run(engine)
    assert run is not None and run.status == "ok"


def test_a_crash_inside_the_orchestrator_ends_the_run_crashed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rig.scan()[0] == 0
    before = rig.live_by_scope()
    from inventory.scan import Scanner

    def broken(*_: object, **__: object) -> list[object]:
        raise RuntimeError("the database connection was lost")

    monkeypatch.setattr(Scanner, "_retire_unplanned", broken)

    code, _, err = rig.scan()

    assert code == 1
    assert "crashed" in err and "the database connection was lost" in err
    rows = scans_report(rig)
    assert {row["run_status"] for row in rows} == {"crashed"}
    run = newest_run(rig.engine())
    assert run is not None and run.error_message is not None
    assert rig.live_by_scope() == before


def test_a_retired_node_stays_retired_when_the_scan_config_still_lists_it(rig: Rig) -> None:
    assert rig.scan()[0] == 0
    assert kpi(rig)["JS-EDU-1"] == "off_cloud"
    code, _, err = rig.cli(
        "--db", rig.db_url, "nodes", "retire", K8S_NODE, "--by", "张三", "--reason", "已迁移"
    )
    assert code == 0, err

    code, _, err = rig.scan()

    assert code == 0, err
    assert f"node {K8S_NODE} is retired" in err and "nodes apply" in err
    assert not [key for key in rig.live_by_scope() if key[0] == K8S_NODE]
    _, results = rig.last_run()
    assert {r.node_id for r in results} == {AWS_NODE}
    assert kpi(rig)["JS-EDU-1"] == "no_evidence"
