"""The snapshot and its exposition on both databases: golden file, KPI parity, no names leak."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, col, select, update

from exporters.collector import SnapshotCollector
from exporters.server import registry_for
from exporters.snapshot import (
    MetricsSnapshot,
    MigrationCounts,
    build_snapshot,
    freeze_violation_counts,
    no_migration_counts,
)
from inventory.adoption import PolicySwitches
from inventory.collectors.base import SCOPE_STATUSES
from inventory.models import Node, Resource, System
from inventory.reports import adoption_report
from inventory.settings import Settings
from inventory.violations import FREEZE, violation_counts
from tests.conftest import require_binary
from tests.exporters.estate import seed_metrics_estate
from tests.inventory.evidence_age_estate import age_run, scan, seed_nodes_and_register
from tests.inventory.kpi_estate import NOW
from tests.inventory.test_violations import seed as seed_violations

GOLDEN = Path(__file__).parent / "golden" / "metrics_estate.prom"
# The one thing about the exposition that depends on the run, not the ledger.
VOLATILE = re.compile(
    r"^(yiyun_exporter_snapshot_age_seconds|yiyun_exporter_refresh_duration_seconds) .*$",
    re.MULTILINE,
)


def fake_migration_counts(*, session: Session) -> dict[tuple[str, str, str], int]:
    return {("JS-EDU-2026", "1", "cutover"): 2, ("JS-EDU-2026", "2", "planned"): 5}


def snapshot_at_now(
    engine: sa.Engine, settings: Settings, migration_counts: MigrationCounts = no_migration_counts
) -> MetricsSnapshot:
    with Session(engine) as session:
        return build_snapshot(
            session=session, settings=settings, now=NOW, migration_counts=migration_counts
        )


def exposition(snapshot: MetricsSnapshot) -> str:
    collector = SnapshotCollector(clock=lambda: NOW.timestamp() + 12)
    collector.publish(snapshot, duration_seconds=0.25)
    return generate_latest(registry_for(collector, process_metrics=False)).decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def estate(engine: sa.Engine, settings: Settings) -> Settings:
    with Session(engine) as session:
        seed_metrics_estate(session, today=settings.today(NOW))
    return settings


def test_exposition_matches_golden_file(engine: sa.Engine, estate: Settings) -> None:
    text = VOLATILE.sub(
        r"\1 <volatile>", exposition(snapshot_at_now(engine, estate, fake_migration_counts))
    )

    if os.environ.get("YIYUN_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_promtool_finds_no_problem_in_the_exposition(engine: sa.Engine, estate: Settings) -> None:
    promtool = require_binary("promtool")
    text = exposition(snapshot_at_now(engine, estate, fake_migration_counts))

    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


@pytest.mark.parametrize(
    "switches",
    [
        PolicySwitches(),
        PolicySwitches(exempt_in_denominator=False),
        PolicySwitches(trust_declared=True),
    ],
)
def test_ratios_equal_the_adoption_report(
    engine: sa.Engine, estate: Settings, switches: PolicySwitches
) -> None:
    settings = estate.model_copy(update=switches.as_dict())
    ratios = snapshot_at_now(engine, settings).adoption_ratio

    with Session(engine) as session:
        reports = {
            by: adoption_report(
                session=session, settings=settings, switches=switches, by=by, now=NOW
            )
            for by in ("city", "department")
        }
        department_city = {s.department_code: s.city for s in session.exec(select(System))}
    expected = {("province", "", ""): reports["city"]["rate"]}
    expected |= {("city", g["key"], ""): g["rate"] for g in reports["city"]["groups"]}
    expected |= {
        ("department", department_city[g["key"]], g["key"]): g["rate"]
        for g in reports["department"]["groups"]
    }

    assert ratios == {k: v for k, v in expected.items() if v is not None}


def test_hand_computed_series(engine: sa.Engine, estate: Settings) -> None:
    snapshot = snapshot_at_now(engine, estate)

    assert snapshot.adoption_ratio[("province", "", "")] == 0.2667  # 4/15
    assert snapshot.adoption_ratio[("city", "南京市", "")] == 0.4286  # 3/7
    # Classified S09 is the one system of JS-SEC: counted, and its department has no ratio.
    assert snapshot.systems[("省级", "JS-SEC", "classified_excluded")] == 1
    assert not any(k[2] == "JS-SEC" for k in snapshot.adoption_ratio)
    gib = 1024**3
    # core: VMs 8 + 1 vCPU, volume 500 + bucket 1.5 GiB; nj (Kubernetes only): the deployment's
    # requests and the pvc, never the k8s_node's 64 cores.
    assert {k: v for k, v in snapshot.node_allocated.items() if k[0] in ("core", "nj")} == {
        ("core", "vcpu"): 9.0,
        ("core", "memory_bytes"): 33.0 * gib,
        ("core", "storage_bytes"): 501.5 * gib,
        ("nj", "vcpu"): 1.5,
        ("nj", "memory_bytes"): 3.0 * gib,
        ("nj", "storage_bytes"): 20.0 * gib,
    }
    assert snapshot.node_capacity[("core", "memory_bytes")] == 80000 * gib
    # Latest finished run of core is run 2 (run 3 is still going).
    core_scopes = {k[2:]: v for k, v in snapshot.scan_scope_status.items() if k[0] == "core"}
    assert {k for k, v in core_scopes.items() if v} == {
        ("vm", "ok"),
        ("volume", "throttled"),
        ("bucket", "denied"),
    }
    assert len(core_scopes) == 3 * len(SCOPE_STATUSES)
    assert snapshot.scan_last_success == {
        ("core",): NOW.timestamp() - 2 * 3600,
        ("nj",): NOW.timestamp() - 2 * 3600,
    }
    assert snapshot.policy_violations == {
        ("freeze", "edu-dc"): 1.0,
        ("unattributed", "core"): 1.0,
        ("unattributed", "edu-dc"): 0.0,
        ("unattributed", "nj"): 0.0,
    }
    assert snapshot.migration_systems == {}
    # evidence-v2: core's bucket scope was denied in its only listing, and b-1 is S01's
    # evidence there (S01 keeps its VMs, so its status holds).
    assert snapshot.policy == "evidence-v2"
    assert snapshot.expired_scopes == {("core",): 1.0, ("edu-dc",): 0.0, ("nj",): 0.0}


def test_a_retired_node_leaves_every_series_that_names_nodes(
    engine: sa.Engine, estate: Settings
) -> None:
    before = snapshot_at_now(engine, estate)
    with Session(engine) as session:
        session.exec(
            update(Node).where(col(Node.id) == "nj").values(retired_at=NOW, retired_by="tester")
        )  # type: ignore[call-overload]
        session.commit()

    after = snapshot_at_now(engine, estate)

    by_node = ("resources", "node_capacity", "node_allocated", "scan_last_success",
               "scan_scope_status", "policy_violations", "expired_scopes")  # fmt: skip
    node_label = {"resources": 0, "node_capacity": 0, "node_allocated": 0, "scan_last_success": 0,
                  "scan_scope_status": 0, "policy_violations": 1, "expired_scopes": 0}  # fmt: skip
    for name in by_node:
        assert any(k[node_label[name]] == "nj" for k in getattr(before, name)), name
        assert not any(k[node_label[name]] == "nj" for k in getattr(after, name)), name
    # S02 ran only on nj: no evidence any more; the ratio is still the report's.
    assert after.adoption_ratio[("province", "", "")] == 0.2
    with Session(engine) as session:
        report = adoption_report(
            session=session, settings=estate, switches=PolicySwitches(), now=NOW
        )
    assert report["rate"] == 0.2 and "nj" not in report["stale_nodes"]


@pytest.mark.parametrize("policy", ["evidence-v2", "evidence-v1"])
def test_expired_evidence_through_real_scans(
    engine: sa.Engine, settings: Settings, policy: str
) -> None:
    with Session(engine) as session:
        seed_nodes_and_register(session)
    first = scan(engine, "core")
    age_run(engine, first.run_id, timedelta(days=8))
    scan(engine, "core", failing={"cn-js-1"})
    scan(engine, "edu-dc")
    chosen = settings.model_copy(update={"kpi_policy": policy})
    now = datetime.now(tz=UTC)

    with Session(engine) as session:
        snapshot = build_snapshot(session=session, settings=chosen, now=now)
        report = adoption_report(
            session=session, settings=chosen, switches=PolicySwitches(), now=now
        )
    text = exposition(snapshot)

    expired = 1.0 if policy == "evidence-v2" else 0.0
    assert snapshot.policy == report["policy"] == policy
    assert snapshot.adoption_ratio[("province", "", "")] == report["rate"]
    assert report["rate"] == (0.25 if policy == "evidence-v2" else 0.5)
    assert samples(text)[("yiyun_expired_scopes", (("node", "core"),))] == expired
    assert samples(text)[("yiyun_expired_scopes", (("node", "edu-dc"),))] == 0.0
    info = samples(text)
    assert (
        "yiyun_adoption_policy_info",
        (("exempt_in_denominator", "true"), ("policy", policy), ("trust_declared", "false")),
    ) in info


def test_no_label_names_a_system_or_a_resource(engine: sa.Engine, estate: Settings) -> None:
    text = exposition(snapshot_at_now(engine, estate, fake_migration_counts))
    with Session(engine) as session:
        systems = session.exec(select(System)).all()
        resources = session.exec(select(Resource)).all()
    forbidden = {s.code for s in systems} | {s.name for s in systems}
    forbidden |= {r.native_id for r in resources} | {r.name for r in resources if r.name}

    values = {value for _name, labels in samples(text) for _key, value in labels}

    assert values & forbidden == set()
    assert "S09" not in text and "系统S09" not in text


def test_freeze_counts_in_sql_equal_the_violations_module(
    engine: sa.Engine, settings: Settings
) -> None:
    seed_violations(engine)

    with Session(engine) as session:
        nodes = list(session.exec(select(Node)).all())
        in_sql = freeze_violation_counts(session=session, nodes=nodes, tz=settings.tz)
        reference = violation_counts(session=session, tz=settings.tz)
        snapshot = build_snapshot(session=session, settings=settings, now=NOW)

    assert {n: c for n, c in in_sql.items() if c} == {
        node: count for (rule, node), count in reference.items() if rule == FREEZE
    }
    assert {k: v for k, v in snapshot.policy_violations.items() if v} == dict(reference)
    # Zero series for the frozen node's rule too, so alerts can compare with an hour ago.
    assert set(snapshot.policy_violations) >= {("freeze", "edu-dc"), ("unattributed", "old-room")}
    assert ("freeze", "core") not in snapshot.policy_violations  # one_cloud: no freeze rule


def test_empty_ledger_exports_no_ratio(engine: sa.Engine, settings: Settings) -> None:
    snapshot = snapshot_at_now(engine, settings)
    text = exposition(snapshot)

    assert snapshot.adoption_ratio == {} and snapshot.systems == {}
    assert "yiyun_exporter_up 1.0" in text


def test_migration_seam_takes_the_session_and_exports_its_counts(
    engine: sa.Engine, estate: Settings
) -> None:
    seen: list[Session] = []

    def counts(*, session: Session) -> dict[tuple[str, str, str], int]:
        seen.append(session)
        return {("P1", "3", "trial_run"): 4}

    snapshot = snapshot_at_now(engine, estate, counts)

    assert len(seen) == 1 and isinstance(seen[0], Session)
    assert snapshot.migration_systems == {("P1", "3", "trial_run"): 4.0}
