"""Registry-wide: every collector has the tests STYLE.md and the collectors issue require."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from inventory.collectors.registry import COLLECTORS

TESTS = Path(__file__).parent / "collectors"
# category -> (pattern a test name must match, whether it must run on both databases)
REQUIRED = {
    "normalize": (r"^test_normalize_", False),
    "multi-page listing": (r"multi_page", False),
    "two-run stale (tombstoned in run 2)": (r"^test_two_runs_tombstone", True),
    "failed scope keeps its rows": (r"failed_scope_keeps_every_row", True),
    "revival": (r"^test_revival", True),
    "events": (r"^test_events_", True),
    "attribution": (r"attribution", False),
}
EXTRA = {"kubernetes": {"namespace inheritance": (r"attribution.*namespace", False)}}


def collector_tests(kind: str) -> dict[str, inspect.Signature]:
    """Every test function in tests/inventory/collectors/test_<kind>*.py."""
    found: dict[str, inspect.Signature] = {}
    for path in sorted(TESTS.glob(f"test_{kind}*.py")):
        module = importlib.import_module(f"tests.inventory.collectors.{path.stem}")
        for name, function in vars(module).items():
            if name.startswith("test_") and callable(function):
                found[name] = inspect.signature(function)
    return found


def missing_categories(kind: str, tests: dict[str, inspect.Signature]) -> list[str]:
    missing = []
    for category, (pattern, on_databases) in {**REQUIRED, **EXTRA.get(kind, {})}.items():
        matching = [n for n in tests if re.search(pattern, n)]
        if not matching:
            missing.append(category)
        elif on_databases and not any("engine" in tests[n].parameters for n in matching):
            missing.append(f"{category} (on SQLite and PostgreSQL, via the engine fixture)")
    return missing


@pytest.mark.parametrize("kind", sorted(COLLECTORS))
def test_every_collector_has_every_required_test(kind: str) -> None:
    missing = missing_categories(kind, collector_tests(kind))

    assert not missing, f"collector {kind!r} lacks tests for: {', '.join(missing)}"


def test_the_check_notices_missing_and_db_less_tests() -> None:
    def without_db() -> None: ...

    def with_db(engine: object) -> None: ...

    tests = {
        "test_normalize_thing": inspect.signature(without_db),
        "test_two_runs_tombstone_things": inspect.signature(without_db),
        "test_revival_of_a_thing": inspect.signature(with_db),
    }

    missing = missing_categories("kubernetes", tests)

    assert "normalize" not in missing and "revival" not in missing
    assert (
        "two-run stale (tombstoned in run 2) (on SQLite and PostgreSQL, via the engine "
        "fixture)" in missing
    )
    assert {"multi-page listing", "events", "namespace inheritance"} <= set(missing)
