"""Stack config validation (no Pulumi needed): clear errors, all at once, nothing half-built."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from infra.stack_config import (
    Quota,
    StackConfigError,
    cpu_quantity,
    landing_zone_namespace,
    memory_quantity,
    parse_stack_config,
    read_stack_file,
    sized_quota,
)

DATA = Path(__file__).parents[1] / "data" / "infra"
INFRA = Path(__file__).parents[2] / "infra"
runner = CliRunner()


def raw_config() -> dict[str, Any]:
    document = yaml.safe_load((DATA / "Pulumi.test-core.yaml").read_text(encoding="utf-8"))
    return {k.split(":", 1)[1]: v for k, v in document["config"].items()}


def problems(raw: dict[str, Any], base_dir: Path = DATA) -> list[str]:
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config(raw, base_dir=base_dir)
    return raised.value.problems


@pytest.mark.parametrize("stack_file", sorted(INFRA.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_shipped_example_stacks_are_valid(stack_file: Path) -> None:
    config = read_stack_file(stack_file)
    assert config.node.id == stack_file.name.split(".")[1]
    assert config.tenants and config.agent is not None


def test_example_stacks_cover_the_core_and_a_city_node() -> None:
    assert {p.name for p in INFRA.glob("Pulumi.*.yaml")} >= {
        "Pulumi.js-core.yaml",
        "Pulumi.nj.yaml",
    }


def test_test_stack_parses_into_component_arguments() -> None:
    config = parse_stack_config(raw_config(), base_dir=DATA)
    assert [t.namespace for t in config.tenants] == ["js-edu", "js-hrss", "nj-bigdata"]
    assert [t.bucket for t in config.tenants] == ["test-core-js-edu", "test-core-js-hrss", None]
    (zone,) = config.landing_zones
    assert (zone.plan, zone.wave, zone.headroom) == ("edu-dc-2026", 1, 0.2)
    assert [n.namespace for n in zone.namespaces] == [
        "js-edu-0003", "js-hrss-s-hr-11", "nj-dsj-nj-0101"
    ]  # fmt: skip
    # Landing zones inherit their department's tenant rules (egress CIDRs included).
    assert zone.namespaces[1].rules.egress_cidrs == ("10.20.30.0/24",)
    assert zone.namespaces[0].labels["yiyun.io/system"] == "JS-EDU-0003"
    assert zone.namespaces[2].labels["yiyun.io/city"] == "nanjing"


def test_unknown_department_is_named_with_a_suggestion() -> None:
    raw = raw_config()
    raw["tenants"][0]["department"] = "JS-EUD"
    found = problems(raw)
    assert any(
        p.startswith("tenants[0].department: unknown department JS-EUD (did you mean JS-EDU?)")
        for p in found
    ), found


def test_negative_quota_is_refused() -> None:
    raw = raw_config()
    raw["tenants"][1]["quota"]["memoryGib"] = -512
    assert "tenants[1].quota.memoryGib: must be ≥ 0, got -512" in problems(raw)


def test_duplicate_tenant_is_refused() -> None:
    raw = raw_config()
    raw["tenants"].append(copy.deepcopy(raw["tenants"][0]))
    assert "tenants[3]: duplicate tenant: department JS-EDU already has tenants[0]" in problems(raw)


def test_every_problem_is_reported_at_once() -> None:
    raw = raw_config()
    raw["tenants"][0]["quota"]["cpu"] = "lots"
    raw["tenants"][1]["namespace"] = "Bad_Name"
    raw["agent"]["schedule"] = "hourly"
    raw["agent"].pop("databaseSecret")
    raw["tenant"] = []
    found = problems(raw)
    assert {p.split(":")[0] for p in found} >= {
        "tenants[0].quota.cpu", "tenants[1].namespace", "agent.schedule",
        "agent.databaseSecret.name", "yiyun",
    }  # fmt: skip
    assert "yiyun:tenant: unknown setting (did you mean tenants?)" in found


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("agent", "databaseUrl"),
        ("node.objectStore", "secretKey"),
        ("node.objectStore", "accessKey"),
    ],
)
def test_credentials_in_stack_config_are_refused(where: str, key: str) -> None:
    raw = raw_config()
    section = raw["agent"] if where == "agent" else raw["node"]["objectStore"]
    section[key] = "postgresql://yiyun:hunter2@db/yiyun"
    (found,) = [p for p in problems(raw) if p.startswith(f"{where}.{key}")]
    assert "never put a credential here" in found
    assert "hunter2" not in found


def test_landing_zone_needs_its_departments_tenant() -> None:
    raw = raw_config()
    raw["tenants"] = [t for t in raw["tenants"] if t["department"] != "NJ-DSJ"]
    (found,) = problems(raw)
    assert "system NJ-0101" in found
    assert "department NJ-DSJ has no tenant on node test-core" in found


def test_landing_zone_plan_must_target_this_node_and_name_an_existing_wave(tmp_path: Path) -> None:
    raw = raw_config()
    raw["landingZones"][0]["wave"] = 7
    assert problems(raw) == [
        "landingZones[0].wave: plan edu-dc-2026 has no wave 7 (its waves: 1, 2)"
    ]
    raw["node"]["id"] = "other-node"
    (found,) = problems(raw)
    assert "moves systems to node test-core, not to this stack's node other-node" in found


def test_bad_plan_export_problems_carry_the_plan_path(tmp_path: Path) -> None:
    plan = json.loads((DATA / "plan_export.json").read_text(encoding="utf-8"))
    plan["waves"][0]["systems"][0]["sizing"]["vcpu"] = -1
    (tmp_path / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    raw = raw_config()
    raw["landingZones"][0]["plan"] = str(tmp_path / "plan.json")
    (found,) = problems(raw)
    assert found.endswith("$.waves[0].systems[0].sizing.vcpu: must be ≥ 0, got -1")
    raw["landingZones"][0]["plan"] = "missing.json"
    (found,) = problems(raw)
    assert "missing.json" in found and "cannot read it" in found


def test_a_namespace_has_one_owner() -> None:
    raw = raw_config()
    raw["tenants"][2]["namespace"] = "js-edu-0003"  # a landing zone's namespace
    raw["agent"]["namespace"] = "kube-system"
    found = problems(raw)
    assert (
        "landing zone for JS-EDU-0003: namespace js-edu-0003 is already used by tenant NJ-DSJ"
        in found
    )
    assert (
        "the inventory agent: namespace kube-system belongs to the cluster's platform, pick another"
        in found
    )


def test_bucket_needs_an_object_store() -> None:
    raw = raw_config()
    raw["node"].pop("objectStore")
    found = problems(raw)
    assert len(found) == 2 and all("node.objectStore is not configured" in p for p in found)


def test_unknown_settings_get_a_suggestion() -> None:
    raw = raw_config()
    raw["tenants"][0]["qouta"] = raw["tenants"][0].pop("quota")
    found = problems(raw)
    assert "tenants[0].qouta: unknown setting (did you mean quota?)" in found
    assert "tenants[0].quota: is required" in found


def test_quantities_round_up_and_never_below_the_measured_use() -> None:
    # 0.1 × 1.25 × 1000 is 125.00000000000001 in binary floating point: still 125m.
    assert cpu_quantity(0.1 * 1.25) == "125m"
    assert cpu_quantity(0.0001) == "1m"
    assert memory_quantity(0.3) == "308Mi"
    floor = Quota(cpu=0.5, memory_gib=1.0, storage_gib=10.0, pods=20)
    sized = sized_quota(12.3, 47.9, 1500.5, headroom=0.2, floor=floor)
    assert sized.hard() == {
        "requests.cpu": "14760m", "requests.memory": "58860Mi",
        "requests.storage": "1801Gi", "pods": "20",
    }  # fmt: skip
    assert sized_quota(0, 0, 0, headroom=0.2, floor=floor) == floor


def test_landing_zone_namespace_names() -> None:
    assert landing_zone_namespace("JS-EDU", "JS-EDU-0003") == "js-edu-0003"
    assert landing_zone_namespace("NJ-DSJ", "NJ-0101") == "nj-dsj-nj-0101"
    long = landing_zone_namespace("JS-EDU", "系统" + "X" * 80)
    assert len(long) <= 63 and long.startswith("js-edu-xxx")


def test_check_command_validates_a_stack_file_without_pulumi(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["infra", "check", str(DATA / "Pulumi.test-core.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "js-hrss-s-hr-11 (S-HR-11): cpu 14760m, memory 58860Mi, storage 1801Gi" in ok.stdout
    assert "stack config is valid" in ok.stdout
    zh = runner.invoke(app, ["--lang", "zh", "infra", "check", str(DATA / "Pulumi.test-core.yaml")])
    assert zh.exit_code == 0, zh.output
    assert "栈配置有效" in zh.stdout and "着陆区" in zh.stdout

    raw = raw_config()
    raw["tenants"][0]["department"] = "JS-EUD"
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(
        yaml.safe_dump({"config": {f"yiyun:{k}": v for k, v in raw.items()}}, allow_unicode=True),
        encoding="utf-8",
    )
    (tmp_path / "plan_export.json").write_text(
        (DATA / "plan_export.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = runner.invoke(app, ["infra", "check", str(bad)])
    assert result.exit_code == 2
    assert "unknown department JS-EUD (did you mean JS-EDU?)" in result.output


def test_pulumi_project_file_points_at_the_thin_program() -> None:
    project = yaml.safe_load((INFRA / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["name"] == "yiyun"  # the `yiyun:` config namespace
    assert project["runtime"]["name"] == "python"
    program = INFRA / project["main"]
    assert sorted(p.name for p in program.iterdir() if p.suffix == ".py") == ["__main__.py"]
    assert (INFRA / project["runtime"]["options"]["virtualenv"]).resolve() == (
        INFRA.parent / ".venv"
    ).resolve()


def test_limit_range_defaults_must_fit_under_their_maxima() -> None:
    raw = raw_config()
    raw["tenants"][0]["limits"] = {"defaultRequestMemory": "2Gi", "defaultMemory": "1Gi"}
    raw["tenants"][1]["limits"] = {"defaultCpu": "12", "maxCpu": "8000m", "maxMemory": "lots"}
    found = problems(raw)
    assert "tenants[0].limits: defaultRequestMemory 2Gi is above defaultMemory 1Gi" in found
    assert "tenants[1].limits: defaultCpu 12 is above maxCpu 8000m" in found
    assert (
        "tenants[1].limits.maxMemory: must be a Kubernetes quantity like 500m or 2Gi: 'lots'"
        in found
    )
