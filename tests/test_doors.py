"""One use case, many doors: every route calls a use case that the matching command calls too."""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

ROOT = Path(__file__).resolve().parents[1]
# Routes that are not a person's action on the ledger: the demo login hands out a token
# (its use case, create_token, is `yiyun tokens create`'s too, checked below all the same).
NOT_ACTIONS: set[str] = set()
# A route body is parse, call, render: a route longer than this holds logic of its own.
MAX_ROUTE_STATEMENTS = 25


def is_use_case(function: object) -> bool:
    """A use case takes the ledger and the acting principal by keyword: session=, actor=."""
    if not callable(function):
        return False
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return all(
        name in parameters and parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        for name in ("session", "actor")
    )


def _names_imported(tree: ast.AST) -> dict[str, Callable[..., Any]]:
    """Every `from X import Y` in a module, at any depth (commands import lazily), resolved."""
    found: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if value is not None:
                    found[alias.asname or alias.name] = value
    return found


def called_use_cases(function: Callable[..., Any], scope: dict[str, Any]) -> set[object]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    names = {**scope, **_names_imported(tree)}
    called: set[object] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            target = names.get(node.func.id)
            if target is not None and is_use_case(target):
                called.add(target)
    return called


def command_use_cases() -> set[object]:
    called: set[object] = set()
    for path in sorted((ROOT / "commands").glob("*.py")):
        module = importlib.import_module(f"commands.{path.stem}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {**vars(module), **_names_imported(tree)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                target = names.get(node.func.id)
                if target is not None and is_use_case(target):
                    called.add(target)
    return called


def api_routes() -> list[APIRoute]:
    """Every route under /api/v1 (the routers' own paths carry no prefix: checked as given)."""
    from service.app import API
    from service.routes import ROUTERS, demo

    routes = [r for router in (*ROUTERS, demo.router) for r in router.routes]
    assert all(isinstance(r, APIRoute) for r in routes)
    return [r for r in routes if isinstance(r, APIRoute) and not r.path.startswith(API)]


def test_every_route_calls_a_use_case_the_command_line_calls_too() -> None:
    shared = command_use_cases()
    assert shared and api_routes(), "the check must have commands and routes to look at"
    problems: dict[str, str] = {}
    for route in api_routes():
        if route.path in NOT_ACTIONS:
            continue
        endpoint = route.endpoint
        used = called_use_cases(endpoint, vars(importlib.import_module(endpoint.__module__)))
        where = f"{sorted(route.methods)} {route.path}"
        if not used:
            problems[where] = "calls no use case (session=, actor=)"
        elif not used & shared:
            names = sorted(getattr(f, "__qualname__", str(f)) for f in used)
            problems[where] = f"{names}: no command calls it"
    assert problems == {}


def test_routes_are_thin() -> None:
    fat = {}
    for route in api_routes():
        tree = ast.parse(textwrap.dedent(inspect.getsource(route.endpoint)))
        statements = sum(isinstance(node, ast.stmt) for node in ast.walk(tree)) - 1
        if statements > MAX_ROUTE_STATEMENTS:
            fat[route.path] = statements
    assert fat == {}


def test_every_api_route_names_its_permission() -> None:
    from inventory.access import ACTIONS

    missing = {}
    for route in api_routes():
        if route.path == "/demo/login":
            continue
        permission = (route.openapi_extra or {}).get("x-yiyun-permission")
        if permission not in ACTIONS:
            missing[f"{sorted(route.methods)} {route.path}"] = permission
    assert missing == {}


def test_the_check_tells_a_use_case_from_a_helper() -> None:
    def use_case(*, session: object, actor: object, code: str) -> None: ...

    def helper(session: object, code: str) -> None: ...

    def route() -> None:
        use_case(session=None, actor=None, code="x")
        helper(None, "x")

    assert is_use_case(use_case) and not is_use_case(helper)
    found = called_use_cases(route, {"use_case": use_case, "helper": helper})
    assert found == {use_case}


def portal_writes() -> list[APIRoute]:
    """Every portal route that writes (POST) to the ledger; logging in and out is the door."""
    from service.portal.pages import PAGE_ROUTERS

    routes = [r for router in PAGE_ROUTERS for r in router.routes]
    return [r for r in routes if isinstance(r, APIRoute) and "POST" in r.methods]


def used_through_module(function: Callable[..., Any]) -> set[object]:
    """The use cases a page route calls, itself or through its own module's helpers (a page
    shapes its view in helpers; the use case is still one call away)."""
    module = importlib.import_module(function.__module__)
    scope = vars(module)
    found: set[object] = set()
    seen: set[str] = set()
    todo = [function]
    while todo:
        current = todo.pop()
        if current.__qualname__ in seen:
            continue
        seen.add(current.__qualname__)
        found |= called_use_cases(current, scope)
        tree = ast.parse(textwrap.dedent(inspect.getsource(current)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                target = scope.get(node.func.id)
                if inspect.isfunction(target) and target.__module__ == module.__name__:
                    todo.append(target)
    return found


def test_every_portal_write_calls_a_use_case_the_command_line_calls_too() -> None:
    shared = command_use_cases()
    writes = portal_writes()
    assert writes, "the check must have portal writes to look at"
    problems: dict[str, str] = {}
    for route in writes:
        used = used_through_module(route.endpoint)
        if not used:
            problems[route.path] = "calls no use case (session=, actor=)"
        elif not used & shared:
            names = sorted(getattr(f, "__qualname__", str(f)) for f in used)
            problems[route.path] = f"{names}: no command calls it"
    assert problems == {}
