"""`yiyun demo` end to end: the KPI it prints follows from where the sample estate put things."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli import app
from commands.demo import available_stacks
from inventory.settings import Settings, set_settings
from inventory.sim.estate import Estate, Placement, plan_estate
from inventory.sim.migration import PLAN, SOURCES, TARGET

runner = CliRunner()
SYSTEMS = 60


def expected_counts(estate: Estate) -> Counter[str]:
    """The statuses the plan implies, worked out from placements alone (DESIGN.md's order)."""
    one_cloud = {n.id for n in estate.nodes if n.one_cloud}
    counts: Counter[str] = Counter()
    for s in estate.systems:
        nodes = {p.node_id for p in s.placements if p.form != "empty_namespace"}
        on, off = nodes & one_cloud, nodes - one_cloud
        exempt = s.exemption is not None and s.exemption[2] >= estate.today
        if s.classified:
            counts["classified_excluded"] += 1
        elif s.lifecycle == "retired":
            counts["retired_excluded"] += 1
        elif on and not off:
            counts["on_cloud"] += 1
        elif exempt:
            counts["exempt"] += 1
        elif on and off:
            counts["partial"] += 1
        elif off:
            counts["off_cloud"] += 1
        else:
            counts["no_evidence"] += 1
    return counts


def after_sample_migration(estate: Estate, moved: set[str]) -> Estate:
    """The estate once the demo's sample plan has moved `moved` off its sources."""
    for system in estate.systems:
        if system.code in moved:
            pieces = [p for p in system.placements if p.node_id in SOURCES]
            system.placements = [p for p in system.placements if p.node_id not in SOURCES]
            system.placements += [Placement(TARGET, p.form) for p in pieces]
    return estate


def isolate_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo points the AWS credential chain at its own files; keep that out of other tests.
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def build_demo(directory: Path, systems: int, url: str | None = None) -> Result:
    """Run `yiyun demo` into `directory` (and `url`, when given), its environment kept apart."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_demo(monkeypatch)
        set_settings(Settings())
        try:
            db = ["--db", url] if url else []
            return runner.invoke(
                app, [*db, "demo", "--dir", str(directory), "--systems", str(systems)]
            )
        finally:
            set_settings(None)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    isolate_demo(monkeypatch)
    set_settings(Settings())
    yield tmp_path / "demo"
    set_settings(None)


def plan_states(url: str) -> dict[str, str]:
    """System → state in the demo's sample plan, read through `migrate plan show`."""
    shown = runner.invoke(app, ["--db", url, "migrate", "plan", "show", PLAN, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    return {row["system_code"]: row["state"] for row in json.loads(shown.stdout)["systems"]}


def test_demo_scans_the_sample_estate_and_reports_what_is_there(isolated: Path) -> None:
    result = runner.invoke(app, ["demo", "--dir", str(isolated), "--systems", str(SYSTEMS)])

    assert result.exit_code == 0, result.output
    assert "非涉密系统上云率" in result.output
    assert {p.name for p in isolated.iterdir()} >= {
        "register.csv",
        "nodes.yaml",
        "kubeconfig",
        "yiyun.db",
    }
    report = runner.invoke(
        app, ["--db", f"sqlite:///{isolated}/yiyun.db", "report", "adoption", "--format", "json"]
    )
    kpi = json.loads(report.stdout)
    # The sample plan moved its first systems for real: they count where they landed.
    states = plan_states(f"sqlite:///{isolated}/yiyun.db")
    moved = {code for code, state in states.items() if state in ("accepted", "decommissioned")}
    # The demo leaves vSphere out where vcsim cannot be built (no Go): plan the same estate.
    stacks = available_stacks("en")
    estate = plan_estate(today=Settings().today(), systems=SYSTEMS, stacks=stacks)
    expected = expected_counts(after_sample_migration(estate, moved))
    assert moved and expected != expected_counts(
        plan_estate(today=Settings().today(), systems=SYSTEMS, stacks=stacks)
    )
    assert kpi["counts"] == {status: expected[status] for status in kpi["counts"]}
    assert kpi["numerator"] == expected["on_cloud"]
    assert kpi["stale_nodes"] == []
    # The moves passed the gates on evidence: claims and inventory agree everywhere.
    status = runner.invoke(
        app, ["--db", f"sqlite:///{isolated}/yiyun.db", "migrate", "status", "--format", "json"]
    )
    assert json.loads(status.stdout)["discrepancies"] == []
    assert "decommissioned" in states.values()
    kinds = {
        source["kind"]
        for node in json.loads(
            runner.invoke(
                app, ["--db", f"sqlite:///{isolated}/yiyun.db", "nodes", "list", "--format", "json"]
            ).stdout
        )
        for source in node["sources"]
    }
    assert kinds == set(stacks)


def test_demo_refuses_a_database_that_already_holds_data(isolated: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mine.db"
    first = runner.invoke(app, ["--db", url, "demo", "--dir", str(isolated), "--systems", "20"])
    second = runner.invoke(app, ["--db", url, "demo", "--dir", str(isolated), "--systems", "20"])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 2
    assert "already holds" in second.output
