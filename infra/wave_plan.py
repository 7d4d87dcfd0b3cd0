"""Reading [migrate]'s plan export (`yiyun migrate plan export -f json`) for landing zones."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

LABEL_SYSTEM = "yiyun.io/system"
LABEL_DEPARTMENT = "yiyun.io/department"


class PlanExportError(ValueError):
    """A plan export that cannot be provisioned from; lists every problem with its JSON path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"plan export {source} is not valid:\n{lines}")


@dataclass(frozen=True)
class Sizing:
    """What a system measurably uses where it runs now: vCPU, memory and storage in GiB."""

    vcpu: float
    memory_gib: float
    storage_gib: float


@dataclass(frozen=True)
class WaveSystem:
    code: str
    department_code: str
    city: str
    target_node: str
    sizing: Sizing
    labels: dict[str, str]


@dataclass(frozen=True)
class Wave:
    number: int
    start: date
    end: date
    systems: tuple[WaveSystem, ...]


@dataclass(frozen=True)
class WavePlan:
    plan: str
    target_node: str
    waves: tuple[Wave, ...]

    def wave(self, number: int) -> Wave:
        for wave in self.waves:
            if wave.number == number:
                return wave
        numbers = ", ".join(str(w.number) for w in self.waves) or "none"
        raise KeyError(f"plan {self.plan} has no wave {number} (its waves: {numbers})")


def read_plan_export(path: Path) -> WavePlan:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise PlanExportError(str(path), [f"cannot read it: {error.strerror or error}"]) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PlanExportError(
            str(path), [f"not JSON (line {error.lineno}, column {error.colno}): {error.msg}"]
        ) from None
    return parse_plan_export(document, source=str(path))


def parse_plan_export(document: Any, *, source: str = "<document>") -> WavePlan:
    """Validate the whole export and collect every problem; extra fields are allowed."""
    problems: list[str] = []

    def text(obj: dict[str, Any], key: str, where: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}.{key}: must be a non-empty string, got {value!r}")
            return ""
        return value.strip()

    def number(obj: dict[str, Any], key: str, where: str) -> float:
        value = obj.get(key)
        # bool is an int to Python, never a size to us.
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}.{key}: must be a number, got {value!r}")
            return 0.0
        if value < 0:
            problems.append(f"{where}.{key}: must be ≥ 0, got {value}")
        return float(value)

    def day(obj: dict[str, Any], key: str, where: str) -> date | None:
        value = obj.get(key)
        try:
            return date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            pass
        problems.append(f"{where}.{key}: must be a date YYYY-MM-DD, got {value!r}")
        return None

    if not isinstance(document, dict):
        raise PlanExportError(source, [f"$: must be a JSON object, got {type(document).__name__}"])
    name = text(document, "plan", "$")
    target = text(document, "target_node", "$")
    raw_waves = document.get("waves")
    if not isinstance(raw_waves, list):
        problems.append(f"$.waves: must be a list, got {raw_waves!r}")
        raw_waves = []

    waves: list[Wave] = []
    seen_waves: dict[int, str] = {}
    seen_systems: dict[str, str] = {}
    for i, raw_wave in enumerate(raw_waves):
        where = f"$.waves[{i}]"
        if not isinstance(raw_wave, dict):
            problems.append(f"{where}: must be an object")
            continue
        wave_number = raw_wave.get("number")
        if isinstance(wave_number, bool) or not isinstance(wave_number, int) or wave_number < 1:
            problems.append(f"{where}.number: must be a whole number ≥ 1, got {wave_number!r}")
            wave_number = 0
        elif wave_number in seen_waves:
            problems.append(f"{where}.number: wave {wave_number} repeats {seen_waves[wave_number]}")
        else:
            seen_waves[wave_number] = where
        start, end = day(raw_wave, "start", where), day(raw_wave, "end", where)
        if start and end and end < start:
            problems.append(f"{where}: ends ({end}) before it starts ({start})")
        raw_systems = raw_wave.get("systems")
        if not isinstance(raw_systems, list):
            problems.append(f"{where}.systems: must be a list, got {raw_systems!r}")
            raw_systems = []
        systems: list[WaveSystem] = []
        for j, raw in enumerate(raw_systems):
            at = f"{where}.systems[{j}]"
            if not isinstance(raw, dict):
                problems.append(f"{at}: must be an object")
                continue
            code = text(raw, "code", at)
            department = text(raw, "department_code", at)
            city = text(raw, "city", at)
            system_target = text(raw, "target_node", at)
            if code in seen_systems:
                problems.append(f"{at}: system {code} is already placed at {seen_systems[code]}")
            elif code:
                seen_systems[code] = at
            if target and system_target and system_target != target:
                problems.append(
                    f"{at}.target_node: {system_target} differs from the plan's target {target}"
                )
            raw_sizing = raw.get("sizing")
            if not isinstance(raw_sizing, dict):
                problems.append(
                    f"{at}.sizing: must be an object with vcpu, memory_gib, storage_gib"
                )
                raw_sizing = {}
            sizing = Sizing(
                number(raw_sizing, "vcpu", f"{at}.sizing"),
                number(raw_sizing, "memory_gib", f"{at}.sizing"),
                number(raw_sizing, "storage_gib", f"{at}.sizing"),
            )
            labels = raw.get("labels")
            well_formed = isinstance(labels, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
            )
            if not isinstance(labels, dict) or not well_formed:
                problems.append(f"{at}.labels: must be an object of string labels")
                labels = {}
            # The labels are what the inventory attributes by: they must say what the row says.
            for key, expected in ((LABEL_SYSTEM, code), (LABEL_DEPARTMENT, department)):
                if well_formed and expected and labels.get(key) != expected:
                    problems.append(
                        f"{at}.labels: {key} must be {expected!r}, got {labels.get(key)!r}"
                    )
            systems.append(WaveSystem(code, department, city, system_target, sizing, labels))
        if start and end:
            waves.append(Wave(wave_number, start, end, tuple(systems)))
    if problems:
        raise PlanExportError(source, problems)
    return WavePlan(name, target, tuple(sorted(waves, key=lambda w: w.number)))
