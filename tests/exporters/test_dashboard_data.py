"""After `yiyun demo` every Grafana panel has data, read through a real Prometheus server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, _pg_reachable, missing_peer
from tests.exporters.test_prometheus import api, prometheus_server
from tests.exporters.test_rules_and_dashboard import DASHBOARD
from tests.exporters.test_server import ROOT, free_port, run_cli, scrape, wait_for
from tests.inventory.test_demo import build_demo

# Enough for the sample plan to place systems and move two of them through every gate.
SYSTEMS = 60
# Grafana's built-in interval variables, as a dashboard of a week would resolve them.
BUILT_IN = {"__rate_interval": "2m", "__interval": "1m", "__range": "7d"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those folded inside a row."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def substitute(expression: str, dashboard: dict[str, Any]) -> str:
    """The PromQL Grafana sends with every template variable at "All" (or its first value)."""
    values = dict(BUILT_IN)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            values[variable["name"]] = variable.get("allValue") or ".*"

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise AssertionError(f"no test value for dashboard variable ${name} in {expression}")
        return values[name]

    return VARIABLE.sub(value, expression)


def panel_queries() -> list[tuple[str, str, str, bool]]:
    """(panel title, refId, PromQL, is a range query) for every target of every panel, and the
    query variables' own label_values() queries."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries: list[tuple[str, str, str, bool]] = []
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            range_query = bool(target.get("range", not target.get("instant", False)))
            promql = substitute(target["expr"], dashboard)
            queries.append((panel["title"], target["refId"], promql, range_query))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*), *\w+\)", variable["definition"])
            assert inner, variable["definition"]
            queries.append((f"${variable['name']}", "variable", inner.group(1), False))
    return queries


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One `yiyun demo` per database for the whole module: it is the slow part."""
    directory = tmp_path_factory.mktemp("demo")
    if request.param == "sqlite":
        result = build_demo(directory, SYSTEMS)
        assert result.exit_code == 0, result.output
        yield f"sqlite:///{directory}/yiyun.db"
        return
    problem = _pg_reachable()
    if problem:
        missing_peer(problem)
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    try:
        result = build_demo(directory, SYSTEMS, url)
        assert result.exit_code == 0, result.output
        yield url
    finally:
        from inventory.db import dispose_engines

        dispose_engines()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def scraped(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`yiyun exporter serve` on the demo ledger, scraped by Prometheus; yields Prometheus's
    URL once a scrape of a good snapshot is stored."""
    port = free_port()
    exporter = subprocess.Popen(
        run_cli("--db", demo_url, "exporter", "serve", "--port", str(port), "--refresh", "1"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "YIYUN_DATABASE_URL": ""},
    )
    try:
        wait_for(
            lambda: "yiyun_exporter_up 1.0" in scrape(f"http://127.0.0.1:{port}/metrics"),
            what="the exporter's first good snapshot",
        )
        with prometheus_server(port, tmp_path_factory.mktemp("prometheus")) as base:

            def stored() -> bool:
                answer = api(base, "/api/v1/query", query="yiyun_exporter_up == 1")
                return bool(answer["data"]["result"])

            wait_for(stored, what="Prometheus to store a scrape", deadline_seconds=90)
            yield base
    finally:
        exporter.terminate()
        try:
            exporter.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            exporter.kill()
            exporter.communicate()


def answer_for(base: str, promql: str, range_query: bool) -> dict[str, Any]:
    if not range_query:
        return api(base, "/api/v1/query", query=promql)
    now = time.time()  # the window Prometheus holds: the last few minutes
    return api(
        base,
        "/api/v1/query_range",
        query=promql,
        start=f"{now - 300:.3f}",
        end=f"{now:.3f}",
        step="1",
    )


def test_the_queries_cover_every_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = {title for title, *_ in panel_queries()}

    assert titles >= {p["title"] for p in panels(dashboard) if p["type"] != "row"}
    assert len(panel_queries()) >= 20


@pytest.mark.parametrize(
    ("title", "ref", "promql", "range_query"),
    panel_queries(),
    ids=[f"{title.split()[0]}-{ref}" for title, ref, *_ in panel_queries()],
)
def test_every_panel_has_data_after_the_demo(
    scraped: str, title: str, ref: str, promql: str, range_query: bool
) -> None:
    answer = answer_for(scraped, promql, range_query)

    assert answer["status"] == "success", answer
    series = answer["data"]["result"]
    assert series, f"panel {title!r} ({ref}) shows no data: {promql}"
    if range_query:
        assert all(s["values"] for s in series)


def test_the_failed_scopes_panel_shows_zero_for_every_scanned_node(scraped: str) -> None:
    (promql,) = [q for title, _, q, _ in panel_queries() if title.startswith("失败的扫描范围")]
    nodes = api(scraped, "/api/v1/query", query="yiyun_scan_last_success_timestamp_seconds")

    shown = api(scraped, "/api/v1/query", query=promql)["data"]["result"]

    # Every scope of the demo lists completely: a 0 for each node, not an empty panel.
    assert {s["metric"]["node"]: s["value"][1] for s in shown} == {
        s["metric"]["node"]: "0" for s in nodes["data"]["result"]
    }


def test_the_migration_panel_shows_systems_moved_and_in_progress(scraped: str) -> None:
    (promql,) = [q for title, _, q, _ in panel_queries() if title.startswith("迁移进度")]

    shown = api(scraped, "/api/v1/query", query=promql)["data"]["result"]

    states = {s["metric"]["state"]: float(s["value"][1]) for s in shown}
    assert {s["metric"]["plan"] for s in shown} == {"demo-js-core"}
    assert states.get("accepted", 0) + states.get("decommissioned", 0) >= 1
