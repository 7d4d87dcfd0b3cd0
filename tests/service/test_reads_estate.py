"""GET /nodes, /scans, /violations and /snapshots: the CLI's answers, in the reader's scope."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from inventory.models import Node, System
from service.app import create_app
from service.context import Service
from service.identity import OidcSettings, OidcVerifier
from tests.migrate.conftest import invoke
from tests.migrate.estate import add_resource
from tests.service import oidc_peer
from tests.service.conftest import Served
from tests.service.oidc_peer import AUDIENCE, OidcProvider
from tests.service.test_reads import cli_json, seed_scans

# The peer's fixtures, made visible to pytest in this module.
oidc_keys = oidc_peer.oidc_keys
oidc_provider = oidc_peer.oidc_provider


def get(served: Served, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = served.client.get(f"/api/v1{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- nodes --------------------------------------------------------------------------------------


def test_nodes_are_nodes_list_with_allocation_and_last_complete_scan(served: Served) -> None:
    seed_scans(served)
    nodes = get(served, "/nodes", served.headers("viewer", "department:NJ-D1"))
    cli = cli_json("nodes", "list")
    assert (
        [n["id"] for n in nodes]
        == [row["id"] for row in cli]
        == sorted(["core", "core4", "nj", "edu-dc", "room"])
    )
    by_id = {n["id"]: n for n in nodes}
    edu = by_id["edu-dc"]
    # IaaS rows only (VMs and the database instance): the Kubernetes rows on edu-dc are the
    # cluster's, counted already as its VMs; N01's VM has no size.
    assert (edu["allocated_vcpu"], edu["allocated_memory_gib"]) == (32.0, 87.0)
    # Volumes and the database's storage, and the bucket; not the PVC.
    assert edu["allocated_storage_gib"] == 650.0
    assert by_id["core"]["allocated_vcpu"] == 10.0 and by_id["core"]["capacity_vcpu"] == 100.0
    ends = {n["id"]: n["last_complete_scan"] for n in nodes}
    assert ends["edu-dc"] is not None and ends["core"] is not None
    assert ends["edu-dc"] < ends["core"]
    # room's only scope was refused and nj's never ran: neither has listed completely.
    assert ends["room"] is None and ends["nj"] is None
    one = get(served, "/nodes/edu-dc", served.headers("viewer", "province"))
    assert one == edu


def test_an_unknown_node_is_404_in_the_readers_language(served: Served) -> None:
    for lang, words in (("zh", "没有节点 nope"), ("en", "no node nope")):
        response = served.client.get(
            "/api/v1/nodes/nope", headers=served.headers("viewer", "province", lang=lang)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "reads_node_unknown"
        assert words in response.json()["detail"]


# --- scans --------------------------------------------------------------------------------------


def test_scan_runs_are_newest_first_and_paged(served: Served) -> None:
    old, recent = seed_scans(served)
    headers = served.headers("viewer", "department:JS-EDU")
    runs = get(served, "/scans", headers)
    assert [r["id"] for r in runs["items"]] == [recent, old] and runs["total"] == 2
    assert runs["items"][0]["status"] == "failed" and runs["items"][0]["scopes_failed"] == 1
    second = get(served, "/scans", headers, offset=1, limit=1)
    assert [r["id"] for r in second["items"]] == [old] and second["total"] == 2


def test_a_runs_scopes_are_report_scans(served: Served) -> None:
    _old, recent = seed_scans(served)
    run = get(served, f"/scans/{recent}", served.headers("viewer", "province"))
    cli = cli_json("report", "scans", "--run", str(recent))
    assert run["id"] == recent and run["status"] == "failed"
    assert [{k: row[k] for k in scope} for row, scope in zip(cli, run["scopes"], strict=True)] == (
        run["scopes"]
    )
    assert [(s["node_id"], s["status"], s["error_code"]) for s in run["scopes"]] == [
        ("core", "ok", None),
        ("nj", "not_run", None),
        ("room", "denied", "AccessDenied"),
    ]
    latest = cli_json("report", "scans")
    assert {row["run_id"] for row in latest} == {recent}


def test_an_unknown_run_is_404_and_the_cli_says_no_scans(served: Served) -> None:
    for lang, words in (("zh", "没有扫描运行 999"), ("en", "no scan run 999")):
        response = served.client.get(
            "/api/v1/scans/999", headers=served.headers("viewer", "province", lang=lang)
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "reads_scan_unknown"
        assert words in response.json()["detail"]
    code, out, err = invoke("report", "scans", "--run", "999")
    assert code == 0 and out == "" and "no scan has run yet" in err


# --- violations ---------------------------------------------------------------------------------


def seed_findings(served: Served) -> None:
    """edu-dc frozen since 2026-01-01 with a VM of A01 (JS-EDU) and one of N01 (NJ-D1) made
    after it, an unattributed VM on room, and a level-4 system of each department on core
    (a level-3 platform: R1)."""
    with Session(served.engine) as session:
        node = session.get(Node, "edu-dc")
        assert node is not None
        node.frozen_since = date(2026, 1, 1)
        made = datetime(2026, 6, 1, tzinfo=UTC)
        add_resource(session, "A01", "edu-dc", "vm", created_at_source=made)
        add_resource(session, "N01", "edu-dc", "vm", created_at_source=made)
        add_resource(session, None, "room", "vm")
        for code, department, city in (("P01", "JS-EDU", "省级"), ("P02", "NJ-D1", "南京市")):
            session.add(
                System(
                    code=code, name=f"系统{code}", department_code=department, city=city,
                    mlps_level=4, crypto_assessed_on=date(2026, 1, 5),
                )
            )  # fmt: skip
            add_resource(session, code, "core", "vm")
        session.commit()


def test_violations_are_report_violations(served: Served) -> None:
    seed_findings(served)
    api = get(served, "/violations", served.headers("viewer", "province"))
    cli = cli_json("report", "violations")
    assert api["items"] == cli and api["total"] == len(cli)
    rules = sorted((row["rule"], row["native_id"] or row["kind"]) for row in cli)
    assert [r for r, _ in rules] == ["freeze", "freeze", "placement", "placement", "unattributed"]
    assert ("placement", "P01") in rules and ("placement", "P02") in rules
    detailed = get(served, "/violations", served.headers("viewer", "province"), details="true")
    assert detailed["items"] == cli_json("report", "violations", "--details")


def test_a_department_sees_its_own_systems_findings_and_the_nodes(served: Served) -> None:
    seed_findings(served)
    whole = get(served, "/violations", served.headers("viewer", "province"))["items"]
    nj = served.headers("department_it", "department:NJ-D1")
    mine = get(served, "/violations", nj)
    placement = [row["native_id"] for row in mine["items"] if row["rule"] == "placement"]
    assert placement == ["P02"]
    frozen = [row["name"] for row in mine["items"] if row["rule"] == "freeze"]
    assert len(frozen) == 1 and frozen[0].startswith("N01-vm-")
    assert [row for row in mine["items"] if row["rule"] == "unattributed"] == [
        row for row in whole if row["rule"] == "unattributed"
    ]
    # Pages of two cross from the freeze violations to the placements to the unattributed.
    for headers, rows in ((served.headers("viewer", "province"), whole), (nj, mine["items"])):
        pages = [
            get(served, "/violations", headers, offset=offset, limit=2)
            for offset in range(0, len(rows) + 2, 2)
        ]
        assert [row for page in pages for row in page["items"]] == rows
        assert {page["total"] for page in pages} == {len(rows)}


# --- snapshots ----------------------------------------------------------------------------------


def test_the_trend_is_the_history_oldest_first(served: Served) -> None:
    for policy in ("evidence-v1", "evidence-v2", "evidence-v2"):
        code, out, err = invoke("report", "adoption", "--snapshot", "--policy", policy)
        assert code == 0, out + err
    headers = served.headers("viewer", "department:NJ-D1")
    trend = get(served, "/snapshots", headers)
    history = cli_json("report", "adoption", "--history")
    assert trend["items"] == history[::-1] and trend["total"] == 3
    assert [s["policy_change"] for s in trend["items"]] == [
        None,
        "evidence-v1 → evidence-v2",
        None,
    ]
    # The page's first snapshot still knows what came before it.
    middle = get(served, "/snapshots", headers, offset=1, limit=1)
    assert middle["items"] == trend["items"][1:2] and middle["total"] == 3


# --- who may read -------------------------------------------------------------------------------


def test_a_principal_without_a_grant_reads_nothing(
    served: Served, oidc_provider: OidcProvider
) -> None:
    # Grants from yiyun's own table only: the provider knows the person, yiyun grants nothing.
    oidc = OidcSettings(issuer=oidc_provider.issuer, audience=AUDIENCE, grants_claim=None)
    service = Service(
        engine=served.engine, settings=served.settings, oidc=oidc, verifier=OidcVerifier(oidc)
    )
    token = oidc_provider.token("province-viewer")
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        for path in (
            "/adoption",
            "/systems",
            "/systems/A01",
            "/nodes",
            "/scans",
            "/violations",
            "/snapshots",
        ):
            for lang, words in (("zh", "无权"), ("en", "may not 'read'")):
                response = client.get(
                    f"/api/v1{path}",
                    headers={"Authorization": f"Bearer {token}", "Accept-Language": lang},
                )
                assert response.status_code == 403, (path, response.text)
                assert response.json()["code"] == "access_denied"
                assert words in response.json()["detail"]
    # The same person, with the provider's claim mapped to grants (viewer:province), reads.
    mapped = OidcSettings(issuer=oidc_provider.issuer, audience=AUDIENCE)
    service = Service(
        engine=served.engine, settings=served.settings, oidc=mapped, verifier=OidcVerifier(mapped)
    )
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/systems", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 15
