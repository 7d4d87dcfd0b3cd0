"""The refresher and the HTTP endpoint: outages, overlap, registration, the CLI and shutdown."""

from __future__ import annotations

import gzip
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest
from sqlmodel import Session

from exporters.collector import SnapshotCollector
from exporters.server import Exporter, Refresh, registry_for, serve_http
from exporters.snapshot import MetricsSnapshot
from inventory.adoption import PolicySwitches
from inventory.db import make_engine
from inventory.settings import Settings
from tests.exporters.estate import seed_metrics_estate
from tests.exporters.test_snapshot import samples

ROOT = Path(__file__).resolve().parents[2]
PROVINCE = ("yiyun_adoption_ratio", (("city", ""), ("department", ""), ("scope", "province")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], object], *, what: str, deadline_seconds: float = 60.0) -> object:
    """Poll until `check` returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + deadline_seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # not up yet: keep polling until the deadline
            last_error = error
        threading.Event().wait(0.1)
    pytest.fail(f"timed out waiting for {what} (last error: {last_error!r})")


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def exposition(exporter: Exporter) -> dict:
    return samples(
        generate_latest(registry_for(exporter.collector, process_metrics=False)).decode()
    )


def unreachable_url(password: str = "s3cr3t-pw") -> str:
    # Nothing listens on a port we just closed: connection refused, at once.
    return f"postgresql+psycopg://yiyun:{password}@127.0.0.1:{free_port()}/yiyun"


@pytest.fixture
def estate(engine: sa.Engine, settings: Settings) -> Settings:
    with Session(engine) as session:
        seed_metrics_estate(session, today=settings.today())
    return settings


def test_registering_and_collecting_never_touch_the_database() -> None:
    url = unreachable_url()
    engine = make_engine(url)
    connects: list[object] = []
    sa.event.listen(engine, "do_connect", lambda *args: connects.append(args))
    exporter = Exporter(engine=engine, settings=Settings(database_url=url))

    registry = registry_for(exporter.collector)  # register() calls describe()
    served = exposition(exporter)

    assert connects == []
    assert served[("yiyun_exporter_up", ())] == 0.0
    assert not any(name == "yiyun_adoption_ratio" for name, _ in served)
    assert registry.get_sample_value("yiyun_exporter_up") == 0.0
    assert connects == []


def test_unreachable_database_is_up_zero_with_the_password_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = unreachable_url("s3cr3t-pw")
    exporter = Exporter(engine=make_engine(url), settings=Settings(database_url=url))

    with caplog.at_level(logging.ERROR, logger="exporters.server"):
        outcome = exporter.refresh()
    served = exposition(exporter)

    assert outcome is Refresh.FAILED
    assert served[("yiyun_exporter_up", ())] == 0.0
    assert served[("yiyun_exporter_refresh_failures_total", ())] == 1.0
    assert ("yiyun_exporter_snapshot_age_seconds", ()) not in served  # nothing served yet
    assert "s3cr3t-pw" not in caplog.text
    assert "yiyun:***@127.0.0.1" in caplog.text and "OperationalError" in caplog.text


def test_outage_keeps_serving_the_last_good_snapshot(engine: sa.Engine, estate: Settings) -> None:
    down = threading.Event()

    def refuse(*_args: object) -> None:
        if down.is_set():
            raise engine.dialect.loaded_dbapi.OperationalError("simulated outage")

    sa.event.listen(engine, "do_connect", refuse)
    clock = [datetime.now(tz=UTC).timestamp()]
    exporter = Exporter(
        engine=engine, settings=estate, collector=SnapshotCollector(clock=lambda: clock[0])
    )

    assert exporter.refresh() is Refresh.OK
    good = exporter.collector.snapshot
    assert good is not None
    down.set()
    engine.dispose()  # pooled connections would outlive the outage
    clock[0] += 300
    failed = exporter.refresh()
    during, served = exposition(exporter), exporter.collector.snapshot
    down.clear()
    recovered = exporter.refresh()

    assert failed is Refresh.FAILED and recovered is Refresh.OK
    assert during[PROVINCE] == 0.2667
    assert during[("yiyun_exporter_up", ())] == 0.0
    assert served is good
    assert during[("yiyun_exporter_snapshot_age_seconds", ())] == pytest.approx(
        clock[0] - good.taken_at.timestamp()
    )
    assert during[("yiyun_exporter_refresh_failures_total", ())] == 1.0
    assert exposition(exporter)[("yiyun_exporter_up", ())] == 1.0


def placeholder_snapshot() -> MetricsSnapshot:
    return MetricsSnapshot(
        taken_at=datetime.now(tz=UTC),
        policy="evidence-v1",
        switches=PolicySwitches(),
        freshness_limit_seconds=86400.0,
    )


def test_refreshes_never_overlap() -> None:
    entered, release = threading.Event(), threading.Event()
    running, peak, guard = [0], [0], threading.Lock()

    def slow_build() -> MetricsSnapshot:
        with guard:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        entered.set()
        release.wait(30)
        with guard:
            running[0] -= 1
        return placeholder_snapshot()

    url = unreachable_url()
    exporter = Exporter(
        engine=make_engine(url),
        settings=Settings(database_url=url),
        interval=3600,
        build=slow_build,
    )
    exporter.start()  # the background loop's first refresh now holds the database
    assert entered.wait(30)
    with ThreadPoolExecutor(max_workers=8) as pool:
        meanwhile = list(pool.map(lambda _: exporter.refresh(), range(16)))
    release.set()
    exporter.stop()

    assert set(meanwhile) == {Refresh.SKIPPED}
    assert peak[0] == 1
    assert exporter.collector.up
    assert exporter.refresh() is Refresh.OK  # and the lock was released


def test_http_serves_at_once_even_when_the_first_refresh_fails() -> None:
    url = unreachable_url()
    exporter = Exporter(engine=make_engine(url), settings=Settings(database_url=url), interval=1)
    endpoint = serve_http(exporter.collector, host="127.0.0.1", port=0)
    exporter.start()
    try:
        text = scrape(endpoint.url)
        failed_once = wait_for(
            lambda: "yiyun_exporter_refresh_failures_total 0.0" not in scrape(endpoint.url),
            what="a failed refresh",
        )
    finally:
        endpoint.close()
        exporter.stop()

    assert endpoint.host == "127.0.0.1"
    assert "yiyun_exporter_up 0.0" in text
    assert "process_resident_memory_bytes" in text
    assert failed_once


def get(url: str, **headers: str) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(response.headers), response.read()


def comparable(text: str) -> dict:
    """Samples minus the ones that move between two scrapes."""
    return {
        key: value
        for key, value in samples(text).items()
        if not key[0].startswith("process_") and key[0] != "yiyun_exporter_snapshot_age_seconds"
    }


def test_every_way_of_scraping_serves_the_same_series(engine: sa.Engine, estate: Settings) -> None:
    exporter = Exporter(engine=engine, settings=estate)
    assert exporter.refresh() is Refresh.OK
    endpoint = serve_http(exporter.collector, host="127.0.0.1", port=0)
    try:
        _, plain = get(endpoint.url)
        zipped_headers, zipped = get(endpoint.url, **{"Accept-Encoding": "gzip"})
        prometheus_headers, as_prometheus_asks = get(
            endpoint.url,
            Accept="application/openmetrics-text;version=1.0.0,"
            "application/openmetrics-text;version=0.0.1;q=0.75,"
            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )
        openmetrics_headers, openmetrics = get(
            endpoint.url, Accept="application/openmetrics-text;version=1.0.0"
        )
        _, filtered = get(endpoint.url + "?name[]=yiyun_exporter_up")
    finally:
        endpoint.close()
    reference = generate_latest(registry_for(exporter.collector)).decode()

    assert comparable(plain.decode()) == comparable(reference)
    assert zipped_headers["Content-Encoding"] == "gzip"
    # Two gzip members (the snapshot's, rendered at refresh, and this moment's health).
    assert comparable(gzip.decompress(zipped).decode()) == comparable(reference)
    assert prometheus_headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert comparable(as_prometheus_asks.decode()) == comparable(reference)
    assert openmetrics_headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.decode().endswith("# EOF\n")
    assert filtered.decode().count("\nyiyun_") == 1 and "yiyun_exporter_up 1.0" in filtered.decode()
    assert "process_resident_memory_bytes" in plain.decode()


def run_cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from cli import main; main()", *args]


def test_cli_serves_the_ledger_and_stops_cleanly_on_sigterm(db_url: str, estate: Settings) -> None:
    port = free_port()
    process = subprocess.Popen(
        run_cli("--db", db_url, "exporter", "serve", "--port", str(port), "--refresh", "1"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "YIYUN_DATABASE_URL": ""},
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        text = wait_for(
            lambda: next((t for t in [scrape(url)] if "yiyun_exporter_up 1.0" in t), None),
            what="the exporter's first good snapshot",
        )
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, err
    assert 'yiyun_adoption_ratio{city="",department="",scope="province"} 0.2667' in str(text)
    assert f"serving http://127.0.0.1:{port}/metrics" in err
    assert "stopping" in err


def test_cli_refuses_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            run_cli("--db", "sqlite:///:memory:", "exporter", "serve", "--port", str(port)),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_cli_refuses_a_malformed_database_url() -> None:
    result = subprocess.run(
        run_cli("--db", "not a url", "exporter", "serve", "--port", "0"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "not a database URL" in result.stderr
