"""Many scrapers at once, and clients that stall: the real `yiyun exporter serve` answers every
scrape in full, each from its own thread, behind a listen backlog that does not drop them."""

from __future__ import annotations

import socket
import subprocess
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import sqlalchemy as sa

from exporters.collector import FAMILIES
from tests.conftest import require_binary
from tests.exporters.test_ledger_gone import PROVINCE, exporter, seed
from tests.exporters.test_server import comparable

SCRAPERS = 100


def scrape_at_once(url: str, barrier: threading.Barrier) -> tuple[int, int, bytes]:
    """One scraper: wait for all the others, then scrape; (status, Content-Length, body)."""
    barrier.wait(timeout=60)
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, int(response.headers["Content-Length"]), response.read()


def stalled_clients(url: str, count: int) -> list[socket.socket]:
    """Clients that connect and send half a request line, then nothing: each holds a
    connection (and, in a thread-per-connection server, one thread) open."""
    where = urlsplit(url)
    clients = []
    for _ in range(count):
        client = socket.create_connection((where.hostname, where.port), timeout=30)
        client.sendall(b"GET /metrics HTTP/1.1\r\nHost: ")
        clients.append(client)
    return clients


def test_a_hundred_concurrent_scrapes_all_get_the_whole_exposition_while_clients_stall(
    db_url: str, engine: sa.Engine
) -> None:
    seed(db_url)

    # No refresh during the scrapes: every one of them must serve the same snapshot.
    with exporter(db_url, refresh=3600) as (served, _err):
        reference = served.wait_up(1.0, what="the first good snapshot")
        stalled = stalled_clients(served.url, 3)
        try:
            barrier = threading.Barrier(SCRAPERS)
            with ThreadPoolExecutor(max_workers=SCRAPERS) as pool:
                scrapes = list(
                    pool.map(lambda _: scrape_at_once(served.url, barrier), range(SCRAPERS))
                )
        finally:
            for client in stalled:
                client.close()

    assert len(scrapes) == SCRAPERS
    assert {status for status, _, _ in scrapes} == {200}
    for _status, length, body in scrapes:
        text = body.decode()
        assert len(body) == length and text.endswith("\n")
        assert PROVINCE in text
        assert all(f"# TYPE {family.name} gauge" in text for family in FAMILIES)
        assert comparable(text) == comparable(reference)


def test_the_exporter_listens_with_a_backlog_for_many_scrapers(db_url: str) -> None:
    ss = require_binary("ss")
    seed(db_url)
    # The socketserver default, 5, dropped the SYNs of scrapers connecting at once: they
    # retried after 1, 3, 7… s.
    with exporter(db_url, refresh=3600) as (served, _err):
        served.wait_up(1.0, what="the exporter listening")
        port = urlsplit(served.url).port
        listing = subprocess.run(
            [ss, "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout.split()

    # State, Recv-Q, Send-Q (for a listening socket: its backlog), local, peer.
    assert listing[0] == "LISTEN"
    assert int(listing[2]) >= 128
