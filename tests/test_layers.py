"""Layers point one way: each layer imports only the layers below it (DESIGN.md, Layout)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What each layer must not import: everything above it. The doors (the command line in cli.py
# and commands/, the HTTP service in service/) sit on top of all of them.
DOORS = ("cli", "commands", "service")
FORBIDDEN = {
    "inventory": ("migrate", "exporters", "infra", *DOORS),
    "migrate": ("exporters", "infra", *DOORS),
    "exporters": ("infra", *DOORS),
    "infra": DOORS,
}
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


def upward_imports(layer: str) -> dict[str, list[str]]:
    wrong = {}
    for path in sorted((ROOT / layer).rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where in ALLOWED:
            continue
        upward = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN[layer]}
        if upward:
            wrong[where] = sorted(upward)
    return wrong


def test_inventory_imports_nothing_above_it() -> None:
    assert upward_imports("inventory") == {}


def test_migrate_builds_on_inventory_only() -> None:
    assert upward_imports("migrate") == {}


def test_reports_and_exporters_import_no_door() -> None:
    assert upward_imports("exporters") == {}
    assert upward_imports("infra") == {}


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    # The check itself can fail: a function-level import is found as well as a top-level one.
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from migrate.plans import create_plan\n", encoding="utf-8")
    assert imported_modules(module) == {"migrate.plans"}
