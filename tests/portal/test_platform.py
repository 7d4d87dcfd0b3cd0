"""The platform pages: nodes, scans and scope health, held sweeps, violations, the node file."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from inventory.models import Node, ScanRun, ScopeResult
from tests.migrate.estate import add_resource
from tests.portal.conftest import Portal

PROVINCE = ("viewer", "province")
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def add_run(
    portal: Portal,
    node: str,
    scopes: list[tuple[str, str, int]],
    *,
    status: str = "failed",
    at: datetime = T0,
) -> int:
    """A finished scan run of `node` with one result per (scope, status, held rows)."""
    with Session(portal.engine) as session:
        run = ScanRun(
            started_at=at,
            finished_at=at + timedelta(minutes=2),
            status=status,
            nodes=[node],
            scopes_total=len(scopes),
            scopes_failed=sum(1 for _, s, _ in scopes if s != "ok"),
            planned=[[node, "aws", "vm", scope] for scope, _, _ in scopes],
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        for scope, scope_status, held in scopes:
            session.add(
                ScopeResult(
                    run_id=run.id,
                    node_id=node,
                    source="aws",
                    kind="vm",
                    scope=scope,
                    status=scope_status,
                    items=3,
                    held=held,
                    sweep="held" if scope_status == "held" else None,
                    error_code="sweep_held" if scope_status == "held" else None,
                    error_message="the listing lacks rows" if scope_status == "held" else None,
                    started_at=at,
                    finished_at=at + timedelta(minutes=1),
                )
            )
        session.commit()
        return run.id


def body(response: Any) -> str:
    assert response.status_code == 200, response.text[:500]
    return response.text


def test_a_department_user_is_refused_every_platform_page(portal: Portal) -> None:
    user = portal.login("department_it", "department:JS-EDU")
    for path in ("/platform", "/platform/nodes", "/platform/scans", "/platform/held",
                 "/platform/violations", "/platform/specs"):  # fmt: skip
        response = user.get(path)
        assert response.status_code == 403, path
        assert "edu-dc" not in response.text


def test_the_nav_offers_the_platform_to_province_readers_only(portal: Portal) -> None:
    city = portal.login("viewer", "city:南京市")
    assert city.get("/platform").status_code == 403
    province = portal.login(*PROVINCE)
    page = body(province.get("/platform"))
    assert 'href="/platform/nodes"' in page and "平台运维" in page


def test_nodes_show_capacity_and_allocation_as_the_api_does(portal: Portal) -> None:
    user = portal.login(*PROVINCE)
    api = portal.served.client.get("/api/v1/nodes", headers=portal.served.headers(*PROVINCE))
    core = next(n for n in api.json() if n["id"] == "core")
    page = body(user.get("/platform/nodes?q=core&sort=id"))
    rows = re.findall(r'<th scope="row">([^<]+)</th>', page)
    assert rows == ["core", "core4"]
    # core: 10 vCPU of 100, as GET /nodes says.
    assert core["allocated_vcpu"] == 10 and core["capacity_vcpu"] == 100
    assert "10 / 100" in page and "10.0%" in page


def test_nodes_page_sort_filter_and_paging(portal: Portal) -> None:
    user = portal.login(*PROVINCE)
    page = body(user.get("/platform/nodes?sort=-id&limit=2"))
    assert re.findall(r'<th scope="row">([^<]+)</th>', page) == ["room", "nj"]
    assert "共 5" in page or "5 " in page
    second = body(user.get("/platform/nodes?sort=-id&limit=2&offset=2"))
    assert re.findall(r'<th scope="row">([^<]+)</th>', second) == ["edu-dc", "core4"]
    level = body(user.get("/platform/nodes?level=server_room"))
    assert re.findall(r'<th scope="row">([^<]+)</th>', level) == ["room"]
    fragment = user.get("/platform/nodes?level=server_room", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and 'id="nodes-table"' in fragment.text
    assert user.get("/platform/nodes?limit=500").status_code == 422


def test_scan_runs_and_scope_health(portal: Portal) -> None:
    run = add_run(portal, "edu-dc", [("r1", "ok", 0), ("r2", "held", 7), ("r3", "denied", 0)])
    user = portal.login(*PROVINCE)
    runs = body(user.get("/platform/scans"))
    assert f'href="/platform/scans/{run}"' in runs
    page = body(user.get(f"/platform/scans/{run}"))
    assert "暂缓删除" in page and "r2" in page
    # Each scope's counts: 3 listed, 7 held on r2.
    assert re.search(
        r"<td>r2</td>.*?<td class=\"num\">3</td>.*?<td class=\"num\">7</td>", page, re.S
    )
    held = body(user.get(f"/platform/scans/{run}?health=held"))
    assert "r2" in held and "r1" not in held and "r3" not in held
    failed = body(user.get(f"/platform/scans/{run}?health=failed"))
    assert "r3" in failed and "r2" not in failed
    assert user.get("/platform/scans/99999").status_code == 403


def test_held_sweeps_are_the_latest_per_scope_with_the_command_to_confirm(
    portal: Portal,
) -> None:
    # An older run held r9 on edu-dc; a newer complete run of edu-dc listed r9 fine and held
    # r2: only r2 is still held. room's only run holds r5.
    add_run(portal, "edu-dc", [("r9", "held", 4)], at=T0 - timedelta(days=1))
    add_run(portal, "edu-dc", [("r2", "held", 7), ("r9", "ok", 0)])
    add_run(portal, "room", [("r5", "held", 2)], at=T0 - timedelta(hours=1))
    user = portal.login("admin", "province", principal="ops@js")
    page = body(user.get("/platform/held"))
    assert "r2" in page and "r5" in page and "r9" not in page
    assert "yiyun scan --node edu-dc --confirm-deletions --by ops@js" in page
    assert "yiyun scan --node room --confirm-deletions --by ops@js" in page
    assert re.search(r"<td>r2</td>\s*<td class=\"num\">7</td>\s*<td class=\"num\">3</td>", page)
    assert "确认后将删除" in page and "2 个范围的删除被暂缓，共 9 条" in page
    overview = body(user.get("/platform"))
    assert re.search(r'id="platform-held-count">2<', overview)


def test_no_held_sweep_says_so(portal: Portal) -> None:
    add_run(portal, "edu-dc", [("r1", "ok", 0)], status="ok")
    page = body(portal.login(*PROVINCE).get("/platform/held"))
    assert 'id="held-none"' in page


def test_violations_match_the_api_page_by_page(portal: Portal) -> None:
    # room froze in January: a resource seen since breaks the freeze; one has no system.
    with Session(portal.engine) as session:
        room = session.get(Node, "room")
        assert room is not None
        room.frozen_since = date(2026, 1, 1)
        session.add(room)
        add_resource(session, "A14", "room", "vm", name="after-freeze", created_at_source=T0)
        add_resource(session, None, "room", "bucket", name="orphan-bucket")
        session.commit()
    user = portal.login(*PROVINCE)
    api = portal.served.client.get(
        "/api/v1/violations?limit=100", headers=portal.served.headers(*PROVINCE)
    ).json()
    page = body(user.get("/platform/violations?limit=100"))
    shown = re.findall(r"<tr>\s*<th scope=\"row\">", page)
    assert len(shown) == len(api["items"]) and api["total"] == len(api["items"])
    rules = {row["rule"] for row in api["items"]}
    assert {"freeze", "unattributed"} <= rules
    assert "冻结节点新建资源" in page and "未归属资源" in page and "after-freeze" in page
    details = body(user.get("/platform/violations?details=true&limit=100"))
    assert "orphan-bucket" in details and "orphan-bucket" not in page
    first = body(user.get("/platform/violations?limit=1"))
    assert len(re.findall(r"<tr>\s*<th scope=\"row\">", first)) == min(1, api["total"])


def test_the_node_file_shows_each_nodes_sources(portal: Portal) -> None:
    with Session(portal.engine) as session:
        node = session.get(Node, "room")
        assert node is not None
        node.sources = [{"name": "room-aws", "kind": "aws"}]
        session.add(node)
        session.commit()
    page = body(portal.login(*PROVINCE).get("/platform/specs"))
    assert "room-aws" in page and "yiyun nodes apply" in page


@pytest.mark.parametrize(
    "path",
    ["/platform", "/platform/nodes", "/platform/scans", "/platform/held",
     "/platform/violations", "/platform/specs"],
)  # fmt: skip
def test_english_renders_with_no_chinese_of_the_pages_own(portal: Portal, path: str) -> None:
    add_run(portal, "edu-dc", [("r2", "held", 7)])
    page = body(portal.login(*PROVINCE, lang="en").get(path))
    assert 'lang="en"' in page
    main = page.split('<main id="main">', 1)[1].split("</main>", 1)[0]
    # Chinese may only come from the ledger's own data (names of systems), not our words.
    assert not re.search(r"[\u4e00-\u9fff]", re.sub(r"系统[A-Z]\d+", "", main)), path
