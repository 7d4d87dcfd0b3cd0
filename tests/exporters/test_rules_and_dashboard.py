"""Alert rules (promtool check and unit tests) and the Grafana dashboard against the metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from exporters.collector import FAMILIES, SnapshotCollector
from tests.conftest import require_binary

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "exporters" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
DASHBOARD = Path(__file__).resolve().parents[2] / "exporters" / "grafana" / "yiyun.json"

# DESIGN.md, "Prometheus metrics": the public contract.
CONTRACT = {
    "yiyun_adoption_ratio": ("scope", "city", "department"),
    "yiyun_systems": ("city", "department", "status"),
    "yiyun_resources": ("node", "kind"),
    "yiyun_node_capacity": ("node", "resource"),
    "yiyun_node_allocated": ("node", "resource"),
    # Added with the vSphere and OpenStack collectors: capacity the node's own API reports.
    "yiyun_node_capacity_listed": ("node", "resource"),
    "yiyun_scan_last_success_timestamp_seconds": ("node",),
    "yiyun_scan_scope_status": ("node", "source", "kind", "status"),
    "yiyun_policy_violations": ("rule", "node"),
    "yiyun_migration_systems": ("plan", "wave", "state"),
    "yiyun_systems_by_network_zone": ("city", "department", "zone"),
    "yiyun_exporter_snapshot_age_seconds": (),
    "yiyun_exporter_up": (),
    # Added with policy evidence-v2: scopes per node whose evidence no longer counts.
    "yiyun_expired_scopes": ("node",),
}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
SELECTOR = re.compile(r"\b(yiyun_[a-z0-9_]+)\s*\{([^}]*)\}")
METRIC = re.compile(r"\b(yiyun_[a-z0-9_]+)\b")
CJK = re.compile(r"[\u4e00-\u9fff]")
MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def exported() -> dict[str, tuple[str, ...]]:
    """Sample names the exporter serves → their labels, from describe() alone."""
    suffix = {"counter": "_total", "info": "_info"}
    labels = {f.name: f.labels for f in FAMILIES}
    return {
        family.name + suffix.get(family.type, ""): labels.get(family.name, ())
        for family in SnapshotCollector().describe()
    }


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def dashboard_expressions() -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    return found


def unknown_references(expressions: list[str]) -> set[str]:
    """Metric names, and label names in selectors, that the exporter does not serve."""
    names = exported()
    problems: set[str] = set()
    for expression in expressions:
        problems |= {m for m in METRIC.findall(expression) if m not in names}
        for metric, matchers in SELECTOR.findall(expression):
            allowed = set(names.get(metric, ())) | TARGET_LABELS
            problems |= {
                f"{metric}{{{label}}}"
                for label in MATCHER_LABEL.findall(matchers)
                if label not in allowed
            }
    return problems


def test_the_contract_is_exported_with_its_labels() -> None:
    names = exported()

    assert {name: names.get(name) for name in CONTRACT} == CONTRACT


def test_promtool_checks_the_rules() -> None:
    promtool = require_binary("promtool")

    checked = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")

    tested = subprocess.run(
        [promtool, "test", "rules", ALERTS_TEST.name],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases = [
        case
        for test in yaml.safe_load(ALERTS_TEST.read_text(encoding="utf-8"))["tests"]
        for case in test.get("alert_rule_test", [])
    ]

    for rule in alert_rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c.get("exp_alerts") for c in mine), f"{rule['alert']} never tested firing"
        assert any(not c.get("exp_alerts") for c in mine), f"{rule['alert']} never tested silent"


def test_every_alert_has_a_severity_and_bilingual_annotations() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        for key in ("summary", "description"):
            # "中文 / English", one string that any receiver's template shows whole.
            chinese, _, english = rule["annotations"][key].partition(" / ")
            assert re.search(CJK, chinese), f"{rule['alert']} {key}: no Chinese first"
            assert english and not re.search(CJK, english), f"{rule['alert']} {key}: no English"
            words = re.findall(r"\b[A-Za-z]{2,}\b", re.sub(r"\{\{.*?\}\}", "", english))
            assert len(words) >= 3, f"{rule['alert']} {key}: {english!r}"


def test_alerts_reference_only_exported_metrics() -> None:
    expressions = [rule["expr"] for rule in alert_rules()]

    assert unknown_references(expressions) == set()
    assert all(METRIC.search(e) or "up{" in e for e in expressions)


def test_dashboard_references_only_exported_metrics() -> None:
    expressions = dashboard_expressions()

    assert len(expressions) >= 15
    assert unknown_references(expressions) == set()


def test_dashboard_uses_the_datasource_variable_everywhere() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasources: list[object] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "datasource" in node:
                datasources.append(node["datasource"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard["panels"])
    walk(variables["city"])

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert datasources and all(
        d == {"type": "prometheus", "uid": "${datasource}"} for d in datasources
    )
    assert dashboard["id"] is None  # importable: Grafana assigns its own
    assert "__inputs" not in dashboard
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for wanted in ("Province", "trend", "city", "departments", "status", "Scan health",
                   "violations", "Migration"):  # fmt: skip
        assert wanted.lower() in titles.lower(), wanted


def dashboard_panel(title_start: str) -> dict[str, Any]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    (panel,) = [p for p in dashboard["panels"] if p["title"].startswith(title_start)]
    return panel


def alert_expr(name: str) -> str:
    (rule,) = [r for r in alert_rules() if r["alert"] == name]
    return " ".join(str(rule["expr"]).split())


def test_the_allocation_panel_turns_red_where_the_capacity_alert_fires() -> None:
    limit = float(re.findall(r">\s*([0-9.]+)$", alert_expr("YiyunNodeCapacityHigh"))[0])
    steps = dashboard_panel("节点分配率")["fieldConfig"]["defaults"]["thresholds"]["steps"]

    # Green while there is room, amber on the way, red from the alert's own threshold.
    assert [s["color"] for s in steps] == ["green", "orange", "red"]
    assert steps[0]["value"] is None
    assert 0 < steps[1]["value"] < steps[2]["value"] == limit


def test_the_failed_scopes_panel_counts_what_the_alert_counts_and_shows_zero() -> None:
    (selector,) = re.findall(
        r"yiyun_scan_scope_status\{[^}]*\}", alert_expr("YiyunScanScopesFailing")
    )
    (target,) = dashboard_panel("失败的扫描范围")["targets"]
    table = dashboard_panel("各节点扫描健康")["targets"]

    assert target["expr"] == f"sum by (node) ({selector})"
    # No "> 0" filter: a node whose scopes are all ok shows 0, not an empty panel.
    assert ">" not in target["expr"]
    assert f"sum by (node) ({selector})" in [t["expr"] for t in table]
