"""The plan-export reader: the sample parses, every kind of bad export is named with its path."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra.wave_plan import PlanExportError, Sizing, parse_plan_export, read_plan_export

SAMPLE = Path(__file__).parents[1] / "data" / "infra" / "plan_export.json"


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def problems(document: Any) -> list[str]:
    with pytest.raises(PlanExportError) as raised:
        parse_plan_export(document, source="plan.json")
    return raised.value.problems


def test_sample_export_parses() -> None:
    plan = read_plan_export(SAMPLE)
    assert (plan.plan, plan.target_node) == ("edu-dc-2026", "test-core")
    wave = plan.wave(1)
    assert (wave.start, wave.end) == (date(2026, 12, 1), date(2026, 12, 31))
    assert [s.code for s in wave.systems] == ["JS-EDU-0003", "S-HR-11", "NJ-0101"]
    assert wave.systems[1].sizing == Sizing(12.3, 47.9, 1500.5)
    assert plan.wave(2).systems[0].sizing == Sizing(2.0, 8.0, 50.0)
    with pytest.raises(KeyError, match=r"has no wave 3 \(its waves: 1, 2\)"):
        plan.wave(3)


def test_extra_fields_are_allowed() -> None:
    document = sample()
    document["generated_by"] = "yiyun 0.2"
    document["waves"][0]["systems"][0]["risk"] = "low"
    assert parse_plan_export(document).wave(1).systems[0].code == "JS-EDU-0003"


def _system(d: dict[str, Any], wave: int, index: int) -> dict[str, Any]:
    return d["waves"][wave]["systems"][index]


BAD_EXPORTS: list[tuple[Callable[[dict[str, Any]], object], str]] = [
    (lambda d: d.pop("target_node"), "$.target_node: must be a non-empty string, got None"),
    (lambda d: d.update(waves={}), "$.waves: must be a list, got {}"),
    (
        lambda d: d["waves"][0].update(number=True),
        "$.waves[0].number: must be a whole number ≥ 1, got True",
    ),
    (lambda d: d["waves"][1].update(number=1), "$.waves[1].number: wave 1 repeats $.waves[0]"),
    (
        lambda d: d["waves"][0].update(start="2026-13-01"),
        "$.waves[0].start: must be a date YYYY-MM-DD, got '2026-13-01'",
    ),
    (
        lambda d: d["waves"][0].update(end="2026-11-01"),
        "$.waves[0]: ends (2026-11-01) before it starts (2026-12-01)",
    ),
    (
        lambda d: _system(d, 0, 1)["sizing"].update(memory_gib=-2),
        "$.waves[0].systems[1].sizing.memory_gib: must be ≥ 0, got -2",
    ),
    (
        lambda d: _system(d, 0, 1)["sizing"].update(vcpu=None),
        "$.waves[0].systems[1].sizing.vcpu: must be a number, got None",
    ),
    (
        lambda d: _system(d, 0, 0).pop("sizing"),
        "$.waves[0].systems[0].sizing: must be an object with vcpu, memory_gib, storage_gib",
    ),
    (
        lambda d: _system(d, 0, 0).update(target_node="nj"),
        "$.waves[0].systems[0].target_node: nj differs from the plan's target test-core",
    ),
    (
        lambda d: d["waves"][1]["systems"].append(copy.deepcopy(_system(d, 0, 0))),
        "$.waves[1].systems[1]: system JS-EDU-0003 is already placed at $.waves[0].systems[0]",
    ),
    (
        lambda d: _system(d, 0, 2)["labels"].update({"yiyun.io/system": "NJ-9"}),
        "$.waves[0].systems[2].labels: yiyun.io/system must be 'NJ-0101', got 'NJ-9'",
    ),
    (
        lambda d: _system(d, 0, 2).pop("department_code"),
        "$.waves[0].systems[2].department_code: must be a non-empty string, got None",
    ),
]


@pytest.mark.parametrize(("change", "expected"), BAD_EXPORTS)
def test_bad_exports_are_refused_with_the_path_of_the_problem(change: Any, expected: str) -> None:
    document = sample()
    change(document)
    assert expected in problems(document)


def test_every_problem_is_listed_at_once_in_the_message() -> None:
    document = sample()
    document["waves"][0]["systems"][0]["sizing"]["vcpu"] = -1
    document["waves"][0]["systems"][1]["labels"] = []
    with pytest.raises(PlanExportError) as raised:
        parse_plan_export(document, source="plan.json")
    assert len(raised.value.problems) == 2  # bad vcpu, bad labels
    assert str(raised.value).startswith("plan export plan.json is not valid:\n  - $.waves[0]")


def test_unreadable_and_non_json_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PlanExportError, match="cannot read it"):
        read_plan_export(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"plan": "x",', encoding="utf-8")
    with pytest.raises(PlanExportError, match=r"not JSON \(line 1, column 14\)"):
        read_plan_export(broken)
    assert problems([]) == ["$: must be a JSON object, got list"]


def test_missing_attribution_labels_are_refused() -> None:
    document = sample()
    document["waves"][0]["systems"][0]["labels"] = {}
    assert problems(document) == [
        "$.waves[0].systems[0].labels: yiyun.io/system must be 'JS-EDU-0003', got None",
        "$.waves[0].systems[0].labels: yiyun.io/department must be 'JS-EDU', got None",
    ]
