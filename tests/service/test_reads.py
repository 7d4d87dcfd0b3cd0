"""GET /adoption and /systems: the CLI's figures, cut to the reader's scope, cached per change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.adoption import STATUSES
from inventory.models import ScanRun, ScopeResult, System
from inventory.output import jsonable
from inventory.reports import adoption_report, switches_from
from tests.migrate.conftest import invoke
from tests.migrate.estate import add_resource
from tests.service.conftest import Served

# The estate's non-classified systems (A05 is classified): the migration estate's A01–A14
# and NJ-D1's N01, N02.
PUBLIC = sorted({f"A{n:02d}" for n in range(1, 15)} - {"A05"} | {"N01", "N02"})
JS_HEA = ["A12", "A13"]


def seed_scans(served: Served) -> tuple[int, int]:
    """Two finished runs: edu-dc's VMs listed completely 10 days ago (past evidence-v2's
    168 hours), and an hour ago core listed, room was refused and nj never ran."""
    now = datetime.now(tz=UTC)
    old_end, recent_end = now - timedelta(days=10), now - timedelta(hours=1)
    with Session(served.engine) as session:
        old = ScanRun(
            started_at=old_end - timedelta(minutes=1),
            finished_at=old_end,
            status="ok",
            nodes=["edu-dc"],
            scopes_total=1,
            planned=[["edu-dc", "aws", "vm", "*"]],
        )
        recent = ScanRun(
            started_at=recent_end - timedelta(minutes=1),
            finished_at=recent_end,
            status="failed",
            nodes=["core", "nj", "room"],
            scopes_total=3,
            scopes_failed=1,
            planned=[
                ["core", "aws", "vm", "*"],
                ["nj", "aws", "vm", "*"],
                ["room", "aws", "vm", "*"],
            ],
        )
        session.add_all([old, recent])
        session.flush()
        assert old.id is not None and recent.id is not None
        results = [
            (old.id, "edu-dc", "ok", old_end, None),
            (recent.id, "core", "ok", recent_end, None),
            (recent.id, "room", "denied", recent_end, "AccessDenied"),
        ]
        for run_id, node, status, end, error in results:
            session.add(
                ScopeResult(
                    run_id=run_id,
                    node_id=node,
                    source="aws",
                    kind="vm",
                    scope="*",
                    status=status,
                    items=3,
                    pages=1,
                    api_calls=1,
                    duration_seconds=1.5,
                    error_code=error,
                    error_message="not authorized to DescribeInstances" if error else None,
                    started_at=end - timedelta(seconds=2),
                    finished_at=end,
                )
            )
        session.commit()
        return old.id, recent.id


def cli_json(*args: str) -> Any:
    code, out, err = invoke(*args, "--format", "json")
    assert code in (0, 1), out + err
    return json.loads(out)


def every_page(served: Served, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """The whole list, three at a time, checking that every page states the same total."""
    items: list[dict[str, Any]] = []
    totals = set()
    while True:
        response = served.client.get(
            "/api/v1/systems",
            params={**params, "offset": len(items), "limit": 3},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        page = response.json()
        totals.add(page["total"])
        items += page["items"]
        if not page["items"]:
            break
    assert totals == {len(items)}
    return items


def codes(served: Served, headers: dict[str, str], **params: Any) -> list[str]:
    return [item["code"] for item in every_page(served, headers, **params)]


@contextmanager
def statements(served: Served) -> Iterator[list[str]]:
    """The SQL the service sends while the block runs."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(served.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(served.engine, "before_cursor_execute", listen)


# --- adoption -----------------------------------------------------------------------------------


def test_adoption_is_the_clis_json_for_every_grouping_switch_and_policy(served: Served) -> None:
    seed_scans(served)
    headers = served.headers("viewer", "province")
    expired = {}
    for by, policy, exempt, trust in product(
        (None, "province", "city", "department", "node"),
        ("evidence-v1", "evidence-v2"),
        (True, False),
        (True, False),
    ):
        args = ["report", "adoption", "--policy", policy]
        args.append("--exempt-in-denominator" if exempt else "--no-exempt-in-denominator")
        args.append("--trust-declared" if trust else "--no-trust-declared")
        params: dict[str, Any] = {
            "policy": policy,
            "exempt_in_denominator": exempt,
            "trust_declared": trust,
        }
        if by is not None:
            args += ["--by", by]
            params["by"] = by
        cli = cli_json(*args)
        response = served.client.get("/api/v1/adoption", params=params, headers=headers)
        assert response.status_code == 200, response.text
        api = response.json()
        # Computed afresh, without the service's kept evidence: the cache changes nothing.
        with Session(served.engine) as session:
            switches = switches_from(
                served.settings, exempt_in_denominator=exempt, trust_declared=trust
            )
            direct = jsonable(
                adoption_report(
                    session=session,
                    settings=served.settings,
                    switches=switches,
                    by=by,
                    policy=policy,
                )
            )
        for report in (cli, api, direct):
            assert report.pop("as_of")
        assert api == cli == direct, (by, policy, exempt, trust)
        assert ("groups" in api) is (by is not None)
        expired[policy] = api["expired_scopes"]
    # The two policies read different evidence here: edu-dc's VMs listed 10 days ago, and
    # room's were refused, never listed.
    assert expired == {"evidence-v1": [], "evidence-v2": ["edu-dc/aws/vm/*", "room/aws/vm/*"]}


def test_a_department_reader_gets_its_department_row_and_every_city_and_total(
    served: Served,
) -> None:
    province = served.headers("viewer", "province")
    department = served.headers("department_it", "department:NJ-D1")
    city = served.headers("viewer", "city:南京市")
    for by in ("department", "city", "node", None):
        params = {"by": by} if by else {}
        whole = served.client.get("/api/v1/adoption", params=params, headers=province).json()
        for headers in (department, city):
            mine = served.client.get("/api/v1/adoption", params=params, headers=headers).json()
            assert {k: v for k, v in mine.items() if k not in ("as_of", "groups")} == {
                k: v for k, v in whole.items() if k not in ("as_of", "groups")
            }
            if by == "department":
                assert [g["key"] for g in whole["groups"]] == ["JS-EDU", "JS-HEA", "NJ-D1"]
                assert mine["groups"] == [g for g in whole["groups"] if g["key"] == "NJ-D1"]
            else:
                assert mine.get("groups") == whole.get("groups")


def test_adoption_refuses_an_unknown_grouping_as_an_invalid_request(served: Served) -> None:
    response = served.client.get(
        "/api/v1/adoption",
        params={"by": "wave"},
        headers=served.headers("viewer", "province", lang="en"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "api_invalid_request"


# --- systems ------------------------------------------------------------------------------------


def test_the_list_is_the_registers_non_classified_systems_with_kpi_status(served: Served) -> None:
    items = every_page(served, served.headers("viewer", "province"))
    assert [item["code"] for item in items] == PUBLIC
    by_code = {item["code"]: item for item in items}
    assert by_code["A10"]["status"] == "on_cloud" and by_code["A10"]["nodes"] == ["core"]
    assert by_code["A01"]["status"] == "off_cloud" and by_code["A01"]["nodes"] == ["edu-dc"]
    assert by_code["A09"]["status"] == "exempt" and by_code["A09"]["exempt"] is True
    assert by_code["A11"]["status"] == "retired_excluded"
    assert by_code["A14"]["status"] == "no_evidence" and by_code["A14"]["nodes"] == []
    assert by_code["N02"]["department"] == "南京市大数据局"
    assert by_code["N02"]["city"] == "南京市"


def test_the_list_is_what_registry_list_prints(served: Served) -> None:
    api = every_page(served, served.headers("viewer", "province"))
    cli = cli_json("registry", "list")
    fields = (
        "code",
        "name",
        "department_code",
        "department",
        "city",
        "mlps_level",
        "data_level",
        "network_zone",
        "lifecycle",
        "declared_node",
        "exemption_valid_until",
    )
    assert [{f: item[f] for f in fields} for item in api] == [
        {f: row[f] for f in fields} for row in cli
    ]


def test_each_reader_lists_its_scope_only(served: Served) -> None:
    assert codes(served, served.headers("viewer", "department:NJ-D1")) == ["N01", "N02"]
    assert codes(served, served.headers("viewer", "city:南京市")) == ["N01", "N02"]
    in_province = [c for c in PUBLIC if c.startswith("A")]
    assert codes(served, served.headers("planner", "city:省级")) == in_province
    js_edu = [c for c in in_province if c not in JS_HEA]
    assert codes(served, served.headers("department_it", "department:JS-EDU")) == js_edu
    # A filter cannot reach past the scope: another city is simply empty.
    assert codes(served, served.headers("department_it", "department:JS-EDU"), city="南京市") == []


def test_filters_narrow_the_list(served: Served) -> None:
    headers = served.headers("viewer", "province")
    assert codes(served, headers, status="on_cloud") == ["A10"]
    assert codes(served, headers, node="core") == ["A10"]
    assert codes(served, headers, node="room") == ["N02"]
    assert codes(served, headers, department="JS-HEA") == JS_HEA
    assert codes(served, headers, city="南京市") == ["N01", "N02"]
    assert codes(served, headers, q="n0") == ["N01", "N02"]
    assert codes(served, headers, q="系统A1") == ["A10", "A11", "A12", "A13", "A14"]
    assert codes(served, headers, status="off_cloud", department="JS-HEA") == JS_HEA
    assert codes(served, headers, status="classified_excluded") == []


def test_every_order_ends_with_the_code_so_pages_never_overlap(served: Served) -> None:
    headers = served.headers("viewer", "province")
    with Session(served.engine) as session:
        # Two systems with one name: only the code tells them apart.
        session.exec(select(System).where(col(System.code) == "N02")).one().name = "系统A03"
        session.exec(
            select(System).where(col(System.code) == "N02")
        ).one().updated_at = datetime.now(tz=UTC)
        session.commit()
    descending = every_page(served, headers, sort="-name")
    assert [(i["name"], i["code"]) for i in descending] == sorted(
        ((i["name"], i["code"]) for i in descending), key=lambda p: p[0], reverse=True
    )
    assert [i["code"] for i in descending if i["name"] == "系统A03"] == ["A03", "N02"]
    assert codes(served, headers, sort="-code") == PUBLIC[::-1]
    by_department = every_page(served, headers, sort="department")
    assert [(i["department_code"], i["code"]) for i in by_department] == sorted(
        (i["department_code"], i["code"]) for i in by_department
    )
    by_status = every_page(served, headers, sort="status")
    ranks = [(STATUSES.index(i["status"]), i["code"]) for i in by_status]
    assert ranks == sorted(ranks)
    assert by_status[0]["code"] == "A10"


def test_a_page_past_the_limit_is_an_invalid_request(served: Served) -> None:
    response = served.client.get(
        "/api/v1/systems", params={"limit": 501}, headers=served.headers("viewer", "province")
    )
    assert response.status_code == 422
    assert response.json()["code"] == "api_invalid_request"


def test_a_page_is_cut_from_memory_until_the_ledger_changes(served: Served) -> None:
    headers = served.headers("viewer", "province")
    first = served.client.get("/api/v1/systems", params={"q": "A14"}, headers=headers).json()
    assert first["items"][0]["status"] == "no_evidence"
    with statements(served) as sent:
        again = served.client.get("/api/v1/systems", params={"q": "A14"}, headers=headers).json()
    assert again == first
    # Neither the evidence query nor the register is read again: only the ledger's mark.
    assert not [s for s in sent if "resource.system_code" in s or "system.name" in s]
    with Session(served.engine) as session:
        add_resource(session, "A14", "core", "vm")
        session.commit()
    with statements(served) as sent:
        moved = served.client.get("/api/v1/systems", params={"q": "A14"}, headers=headers).json()
    assert moved["items"][0]["status"] == "on_cloud"
    assert [s for s in sent if "resource.system_code" in s]
    with Session(served.engine) as session:
        system = session.exec(select(System).where(col(System.code) == "A14")).one()
        system.lifecycle, system.updated_at = "retired", datetime.now(tz=UTC)
        session.commit()
    retired = served.client.get("/api/v1/systems", params={"q": "A14"}, headers=headers).json()
    assert retired["items"][0]["status"] == "retired_excluded"
    assert retired["items"][0]["lifecycle"] == "retired"


def test_a_system_shows_its_evidence_per_node(served: Served) -> None:
    seed_scans(served)
    headers = served.headers("viewer", "province")
    on_cloud = served.client.get("/api/v1/systems/A10", headers=headers)
    assert on_cloud.status_code == 200, on_cloud.text
    body = on_cloud.json()
    assert body["status"] == "on_cloud" and body["department"] == "省教育厅"
    assert [(n["node"], n["one_cloud"]) for n in body["evidence"]] == [("core", True)]
    (resource,) = body["evidence"][0]["resources"]
    assert (resource["kind"], resource["counted"]) == ("vm", True)
    # evidence-v2 (the default) no longer counts edu-dc's VMs: listed 10 days ago.
    aged = served.client.get("/api/v1/systems/A03", headers=headers).json()
    assert aged["status"] == "no_evidence"
    assert [(r["kind"], r["counted"]) for r in aged["evidence"][0]["resources"]] == [("vm", False)]
    two_kinds = served.client.get("/api/v1/systems/A02", headers=headers).json()
    assert [r["kind"] for r in two_kinds["evidence"][0]["resources"]] == ["db_instance", "vm"]


def test_classified_unknown_and_out_of_scope_systems_read_alike(served: Served) -> None:
    asked = {
        "A05": served.headers("admin", "province"),  # classified
        "A01": served.headers("viewer", "department:NJ-D1"),  # another department's
        "ZZ99": served.headers("admin", "province"),  # not in the register
    }
    for lang in ("zh", "en"):
        bodies = []
        for code, headers in asked.items():
            response = served.client.get(
                f"/api/v1/systems/{code}", headers={**headers, "Accept-Language": lang}
            )
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert body["code"] == "reads_system_unknown"
            bodies.append({k: v for k, v in body.items() if k not in ("request_id", "instance")})
            bodies[-1]["detail"] = body["detail"].replace(code, "CODE")
        assert bodies[0] == bodies[1] == bodies[2]
        assert ("没有您可查看的系统" if lang == "zh" else "no system") in bodies[0]["detail"]


def test_reads_write_nothing(served: Served) -> None:
    headers = served.headers("viewer", "province")
    with statements(served) as sent:
        for path in ("/api/v1/systems", "/api/v1/systems/A01", "/api/v1/adoption"):
            assert served.client.get(path, headers=headers).status_code == 200
    written = [s for s in sent if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert written == []
