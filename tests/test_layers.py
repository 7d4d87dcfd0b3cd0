"""Layers point one way: inventory/ knows nothing of the layers built on it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABOVE_INVENTORY = ("migrate", "exporters", "infra", "cli")
# Alembic's env.py must see every table to compare the models with the database.
ALLOWED = {"inventory/migrations/env.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_inventory_imports_nothing_above_it() -> None:
    wrong = {}
    for path in sorted((ROOT / "inventory").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where in ALLOWED:
            continue
        upward = {m for m in imported_modules(path) if m.split(".")[0] in ABOVE_INVENTORY}
        if upward:
            wrong[where] = sorted(upward)
    assert wrong == {}


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    # The check itself can fail: a function-level import is found as well as a top-level one.
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from migrate.plans import create_plan\n", encoding="utf-8")
    assert imported_modules(module) == {"migrate.plans"}


def test_the_demo_without_the_migration_layer_says_so() -> None:
    # inventory alone (no cli.py composing the layers) skips the sample plan, in words.
    import cli  # noqa: F401  (installs the runner, as the command line does)
    from inventory.commands import demo

    installed = demo._sample_runner
    demo.use_sample_migration(None)
    try:
        outcome = demo._run_sample_migration(None, None, None, "zh")  # type: ignore[arg-type]
    finally:
        demo.use_sample_migration(installed)
    assert installed is not None
    assert outcome.skipped == "迁移模块（migrate/）未装入，未制定示范计划"
