"""A real Prometheus server scrapes the exporter; the KPI is read back through its HTTP API."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import Session

from exporters.server import Endpoint, Exporter, serve_http
from inventory.settings import Settings
from tests.conftest import require_binary
from tests.exporters.estate import seed_metrics_estate
from tests.exporters.test_rules_and_dashboard import ALERTS, alert_rules, dashboard_expressions
from tests.exporters.test_server import free_port, wait_for


def api(base: str, path: str, **params: str) -> dict[str, Any]:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    try:
        with urllib.request.urlopen(f"{base}{path}{query}", timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # a bad query is a 400 with the reason as JSON
        return json.loads(error.read())


@pytest.fixture
def exporter_endpoint(engine: sa.Engine, settings: Settings) -> Iterator[Endpoint]:
    with Session(engine) as session:
        seed_metrics_estate(session, today=settings.today())
    exporter = Exporter(engine=engine, settings=settings, interval=1)
    endpoint = serve_http(exporter.collector, host="127.0.0.1", port=0)
    exporter.start()
    yield endpoint
    endpoint.close()
    exporter.stop()


@contextlib.contextmanager
def prometheus_server(exporter_port: int, directory: Path) -> Iterator[str]:
    """A Prometheus server on a free loopback port scraping the exporter every second, with
    the alert rules loaded; yields its base URL."""
    binary = require_binary("prometheus")
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {
                        "job_name": "yiyun",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited: {(directory / 'prometheus.log').read_text()}")
        with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as response:
            return response.status == 200

    try:
        wait_for(ready, what="prometheus to be ready", deadline_seconds=60)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def prometheus(exporter_endpoint: Endpoint, tmp_path: Path) -> Iterator[str]:
    with prometheus_server(exporter_endpoint.port, tmp_path) as base:
        yield base


def test_prometheus_reads_back_the_province_ratio(prometheus: str) -> None:
    query = 'yiyun_adoption_ratio{scope="province"}'

    def scraped() -> list[dict[str, Any]]:
        return api(prometheus, "/api/v1/query", query=query)["data"]["result"]

    result = wait_for(scraped, what="a scrape of the exporter", deadline_seconds=90)

    assert len(result) == 1  # type: ignore[arg-type]
    series = result[0]  # type: ignore[index]
    assert series["metric"]["job"] == "yiyun"
    assert float(series["value"][1]) == pytest.approx(0.2667)  # 4/15, as `report adoption`
    targets = api(prometheus, "/api/v1/targets")["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"]


def test_prometheus_loads_the_rules_and_parses_every_dashboard_query(prometheus: str) -> None:
    groups = api(prometheus, "/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    bad: dict[str, str] = {}
    for expression in dashboard_expressions():
        # Grafana's variables, as "All" would fill them in; label_values() is Grafana's own.
        promql = expression.replace("$city", ".*")
        promql = re.sub(r"^label_values\((.*), *\w+\)$", r"\1", promql)
        answer = api(prometheus, "/api/v1/query", query=promql)
        if answer["status"] != "success":
            bad[expression] = str(answer)

    assert loaded == {rule["alert"] for rule in alert_rules()}
    assert bad == {}
