"""Who may do what, cell by cell: every route × every role × every scope, on both databases.

The expected answer of each cell comes from DESIGN.md's table (inventory/access.py
PERMISSIONS), not from the routes: a role without the right gets 403; a target outside the
scope reads as unknown (404) or as a row error; aggregates answer everyone. A route without a
row here fails the coverage test, so a new route cannot skip the matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlmodel import Session, func, select

from inventory.access import PERMISSIONS, PROVINCE_ONLY, Scope
from inventory.models import AuditEntry, ScanRun
from service.routes import ROUTERS
from tests.service.conftest import ROLES, SCOPES, Served

DATA = Path(__file__).resolve().parents[1] / "data"
# Where the estate's sample targets live (tests/service/conftest.py).
SYSTEMS = {"A01": ("JS-EDU", "省级"), "N01": ("NJ-D1", "南京市")}
DEPENDENCIES_CSV = "依赖方,被依赖方,依赖类型,依赖强度\nA01,A02,调用,弱\n".encode()


@dataclass(frozen=True)
class Call:
    """One request and whom it is for: `anyone` (an aggregate or a scope-filtered list),
    `province` (the estate: register, access, audit, province-wide reports), `any-grant`
    (done within whatever scope the grant has), or a system or department code."""

    method: str
    route: str  # the path template as the router declares it
    url: str
    target: str
    json: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    # What a target outside the scope gets: 404 (unknown to you), or 422 for a file whose
    # rows name systems the actor may not touch (the rows are the errors).
    outside: int = 404
    setup: str | None = None


READS = [
    Call("GET", "/adoption", "/adoption?by=department", "anyone"),
    Call("GET", "/systems", "/systems?limit=5", "anyone"),
    Call("GET", "/systems/{code}", "/systems/A01", "A01"),
    Call("GET", "/systems/{code}", "/systems/N01", "N01"),
    Call("GET", "/systems/{code}/history", "/systems/A01/history", "A01"),
    Call("GET", "/nodes", "/nodes", "anyone"),
    Call("GET", "/nodes/{node_id}", "/nodes/core", "anyone"),
    Call("GET", "/scans", "/scans", "anyone"),
    Call("GET", "/scans/{run_id}", "/scans/{run}", "anyone"),
    Call("GET", "/snapshots", "/snapshots", "anyone"),
    Call("GET", "/violations", "/violations", "anyone"),
    Call("GET", "/dependencies", "/dependencies", "anyone"),
    Call("GET", "/assessments", "/assessments", "anyone"),
    Call("GET", "/plans", "/plans", "anyone"),
    Call("GET", "/plans/{name}", "/plans/p1", "anyone"),
    Call("GET", "/plans/{name}/export", "/plans/p1/export?format=csv", "anyone"),
    Call("GET", "/migration/status", "/migration/status?by=department", "anyone"),
    Call("GET", "/migration/discrepancies", "/migration/discrepancies", "anyone"),
    Call("GET", "/reports/scorecard", "/reports/scorecard?department=JS-EDU", "JS-EDU"),
    Call("GET", "/reports/html", "/reports/html", "province:read"),
    Call("GET", "/reports/xlsx", "/reports/xlsx", "province:read"),
    Call("GET", "/audit", "/audit", "province:audit"),
    Call("GET", "/access", "/access", "province:access"),
    Call("GET", "/tokens", "/tokens", "province:access"),
]
# Each write runs on a ledger of its own; its permission comes from the route's declaration.
WRITES = [
    Call("POST", "/systems/{code}/advance", "/systems/A01/advance", "A01", {"to": "provisioning"}),
    Call(
        "POST",
        "/systems/{code}/override",
        "/systems/N01/override",
        "N01",
        {"readiness": "ready", "strategy": "rehost", "reason": "专线已开通"},
    ),
    Call("POST", "/dependencies", "/dependencies", "A01", {"from": "A01", "to": "A02"}),
    Call("DELETE", "/dependencies/{dependency_id}", "/dependencies/{edge}", "A01", setup="edge"),
    Call(
        "POST",
        "/dependencies/import",
        "/dependencies/import",
        "A01",
        files={"file": ("deps.csv", DEPENDENCIES_CSV, "text/csv")},
        outside=422,
    ),
    Call("POST", "/assessments/run", "/assessments/run", "any-grant", {}),
    Call(
        "POST",
        "/plans",
        "/plans",
        "any-grant",
        {"name": "p2", "sources": ["edu-dc"], "target": "core", "start": "2027-03-01"},
    ),
    Call("POST", "/plans/{name}/import", "/plans/p1/import", "any-grant", setup="export"),
    Call("DELETE", "/plans/{name}", "/plans/p1", "province:plan"),
    Call(
        "POST",
        "/register/import",
        "/register/import",
        "province:register",
        files={
            "file": (
                "systems.csv",
                (DATA / "register" / "systems_gb18030.csv").read_bytes(),
                "text/csv",
            )
        },
    ),
    Call(
        "POST",
        "/access",
        "/access",
        "province:access",
        {"principal": "李四", "role": "viewer", "scope": "city:南京市"},
    ),
    Call(
        "DELETE",
        "/access",
        "/access?principal=王五&role=viewer&scope=province",
        "province:access",
        setup="grant",
    ),
    Call(
        "POST",
        "/tokens",
        "/tokens",
        "province:access",
        {"principal": "ci", "role": "viewer", "scope": "province", "expires": "1d"},
    ),
    Call("DELETE", "/tokens/{token_id}", "/tokens/{token}", "province:access", setup="token"),
]


def permission_of(call: Call) -> str:
    for router in ROUTERS:
        for route in router.routes:
            if (
                isinstance(route, APIRoute)
                and route.path == call.route
                and call.method in route.methods
            ):
                return str((route.openapi_extra or {})["x-yiyun-permission"])
    raise AssertionError(f"no route {call.method} {call.route}")


def expected(call: Call, role: str, scope_text: str) -> str:
    """'ok', or the status a refusal must have."""
    scope = Scope.parse(scope_text)
    permission = permission_of(call)
    holds = permission in PERMISSIONS[role]
    if call.target == "anyone":
        return "ok"
    if call.target == "any-grant":
        return "ok" if holds else "403"
    if call.target.startswith("province:"):
        on_province = scope.kind == "province"
        return "ok" if holds and on_province and permission in PERMISSIONS[role] else "403"
    department, city = SYSTEMS.get(call.target, (call.target, "省级"))
    if call.outside == 422 and not holds:
        # A file: a role without the right is refused before any row is read.
        return "403"
    if not scope.covers(department=department, city=city):
        return str(call.outside)
    if not holds or (permission in PROVINCE_ONLY and scope.kind != "province"):
        return "403"
    return "ok"


@dataclass
class Matrix:
    served: Served
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    def send(self, call: Call, role: str, scope: str) -> Any:
        url = "/api/v1" + call.url.format(**self.values)
        headers = {"Authorization": f"Bearer {self.tokens[role, scope]}", "Accept-Language": "en"}
        return self.served.client.request(
            call.method, url, headers=headers, json=call.json, files=call.files
        )

    def audit_count(self) -> int:
        with Session(self.served.engine) as session:
            return int(session.exec(select(func.count()).select_from(AuditEntry)).one())


@pytest.fixture
def matrix(served: Served) -> Iterator[Matrix]:
    grid = Matrix(served)
    for role in ROLES:
        for scope in SCOPES:
            grid.tokens[role, scope] = served.token(role, scope, principal=f"{role}|{scope}")
    with Session(served.engine) as session:
        run = ScanRun(started_at=datetime.now(tz=UTC), status="ok", nodes=["core"])
        session.add(run)
        session.commit()
        grid.values["run"] = str(run.id)
    yield grid


def check(grid: Matrix, call: Call) -> list[str]:
    wrong: list[str] = []
    succeeded = 0
    # Refused cells first: a refusal must change nothing, whatever ran before it.
    cells = sorted(
        ((role, scope) for role in ROLES for scope in SCOPES),
        key=lambda cell: expected(call, *cell) == "ok",
    )
    for role, scope in cells:
        want = expected(call, role, scope)
        before = grid.audit_count() if call.method != "GET" else 0
        response = grid.send(call, role, scope)
        status = response.status_code
        where = f"{call.method} {call.url} as {role}@{scope}: {status}"
        if want == "ok":
            # Allowed: never refused for who it is; a later cell may find the state changed
            # (409), or the thing already deleted by an earlier one (404).
            gone = call.method == "DELETE" and succeeded > 0 and status == 404
            if (status in (401, 403, 404) and not gone) or status >= 500:
                wrong.append(f"{where}, expected success ({response.text[:200]})")
            succeeded += status < 300
        else:
            if status != int(want):
                wrong.append(f"{where}, expected {want} ({response.text[:200]})")
            if call.method != "GET" and grid.audit_count() != before:
                wrong.append(f"{where}: a refused write left an audit entry")
    if succeeded == 0:
        wrong.append(f"{call.method} {call.url}: no cell succeeded")
    return wrong


def test_every_route_has_a_row_in_the_matrix() -> None:
    declared = {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    covered = {(call.method, call.route) for call in (*READS, *WRITES)}
    assert declared - covered == set()


def test_every_read_cell(matrix: Matrix) -> None:
    wrong = [problem for call in READS for problem in check(matrix, call)]
    assert wrong == []


def _prepare(grid: Matrix, call: Call) -> Call:
    """What the call needs in the ledger first (made as a province admin); the call itself."""
    admin = {"Authorization": f"Bearer {grid.tokens['admin', 'province']}"}
    client = grid.served.client
    if call.setup == "edge":
        response = client.post(
            "/api/v1/dependencies", json={"from": "A01", "to": "A02"}, headers=admin
        )
        assert response.status_code == 201, response.text
        grid.values["edge"] = str(response.json()["id"])
    elif call.setup == "grant":
        body = {"principal": "王五", "role": "viewer", "scope": "province"}
        response = client.post("/api/v1/access", json=body, headers=admin)
        assert response.status_code == 201, response.text
    elif call.setup == "token":
        body = {"principal": "ci", "role": "viewer", "scope": "province"}
        response = client.post("/api/v1/tokens", json=body, headers=admin)
        assert response.status_code == 201, response.text
        grid.values["token"] = response.json()["token_id"]
    elif call.setup == "export":
        response = client.get("/api/v1/plans/p1/export?format=csv", headers=admin)
        assert response.status_code == 200, response.text
        return replace(call, files={"file": ("p1.csv", response.content, "text/csv")})
    return call


@pytest.mark.parametrize("call", WRITES, ids=lambda c: f"{c.method} {c.route}")
def test_every_write_cell(matrix: Matrix, call: Call) -> None:
    assert check(matrix, _prepare(matrix, call)) == []
