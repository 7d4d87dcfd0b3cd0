"""The exporter process: a background refresher feeding the collector, and the HTTP endpoint."""

from __future__ import annotations

import gc
import gzip
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Metric, generate_latest, make_wsgi_app
from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    ThreadingWSGIServer,
    gzip_accepted,
)
from prometheus_client.process_collector import ProcessCollector
from sqlmodel import Session

from exporters.collector import ReadyFamilies, SnapshotCollector
from exporters.ledger_file import LedgerFile, LedgerGone, sqlite_path
from exporters.snapshot import (
    MetricsSnapshot,
    MigrationCounts,
    PlacementCounts,
    build_snapshot,
    no_migration_counts,
    no_placement_counts,
)
from inventory.db import mask_url, require_schema
from inventory.settings import Settings
from inventory.urls import scrub

log = logging.getLogger(__name__)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]

DEFAULT_REFRESH_SECONDS = 30.0
LISTEN_BACKLOG = 1024


class Refresh(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # another refresh was running: never two at once


@contextmanager
def _no_gc_pause() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a refresh. A refresh makes tens of thousands
    of objects that live until it ends; collecting them mid-way stopped every thread (scrapes
    too) for up to 120 ms at province size. Reference counting still frees nearly all of it
    at the end, and collection resumes then."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _reader(engine: sa.Engine) -> sa.Engine:
    """The engine the snapshot reads through: on PostgreSQL one REPEATABLE READ, read-only
    transaction, so every aggregate of a snapshot sees the same moment even while a scan writes."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return engine


class Exporter:
    """Recomputes the snapshot every `interval` seconds in one background thread."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        settings: Settings,
        interval: float = DEFAULT_REFRESH_SECONDS,
        migration_counts: MigrationCounts = no_migration_counts,
        placement_counts: PlacementCounts = no_placement_counts,
        collector: SnapshotCollector | None = None,
        build: Callable[[], MetricsSnapshot] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.interval = interval
        self.migration_counts = migration_counts
        self.placement_counts = placement_counts
        self.collector = collector or SnapshotCollector()
        self._reader = _reader(engine)
        # Tests put a stand-in here to hold a refresh open; production reads the database.
        self._build = build or self._from_database
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures_in_a_row: int = 0
        path = sqlite_path(engine.url)
        self._ledger = LedgerFile(path) if path is not None else None

    def _from_database(self) -> MetricsSnapshot:
        if self._ledger is not None:
            try:
                self._ledger.check()
            except LedgerGone:
                # Pooled connections still read the file they opened: close them, so the
                # next refresh opens whatever the path holds by then.
                self.engine.dispose()
                raise
        require_schema(self.engine)
        with Session(self._reader) as session:
            return build_snapshot(
                session=session,
                settings=self.settings,
                now=datetime.now(tz=UTC),
                migration_counts=self.migration_counts,
                placement_counts=self.placement_counts,
            )

    def refresh(self) -> Refresh:
        """Rebuild the snapshot now, unless a refresh is already running."""
        if not self._refreshing.acquire(blocking=False):
            return Refresh.SKIPPED
        try:
            with _no_gc_pause():
                return self._refresh()
        finally:
            self._refreshing.release()

    def _refresh(self) -> Refresh:
        started = time.perf_counter()
        try:
            snapshot = self._build()
        except Exception as error:  # the edge: a failed refresh must never stop the exporter
            self.collector.mark_failed(duration_seconds=time.perf_counter() - started)
            self._failures_in_a_row += 1
            log.error(
                "snapshot refresh from %s failed (%d in a row); serving the last good "
                "snapshot with yiyun_exporter_up 0: %s",
                mask_url(str(self.engine.url)),
                self._failures_in_a_row,
                self._describe(error),
            )
            return Refresh.FAILED
        self.collector.publish(snapshot, duration_seconds=time.perf_counter() - started)
        if self._failures_in_a_row:
            log.warning(
                "snapshot refresh from %s works again after %d failures",
                mask_url(str(self.engine.url)),
                self._failures_in_a_row,
            )
            self._failures_in_a_row = 0
        return Refresh.OK

    def _describe(self, error: Exception) -> str:
        """The error's first line (SQLAlchemy appends the SQL), with the URL's secrets masked."""
        lines = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {lines[0] if lines else ''}"
        return scrub(text, self.engine.url.render_as_string(hide_password=False))

    def start(self) -> None:
        """Refresh in the background: the first refresh at once, then every `interval` seconds
        after the previous one ended, so a slow database never piles refreshes up."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="yiyun-exporter-refresh")
        self._thread.daemon = True  # a refresh stuck in the database must not block exit
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            if self._stop.wait(self.interval):
                break

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


@dataclass
class Endpoint:
    """The running HTTP server: where it listens and how to stop it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5.0)


def registry_for(
    collector: SnapshotCollector, *, process_metrics: bool = True
) -> CollectorRegistry:
    """A registry of our own (not the global one), holding the snapshot collector."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)  # calls describe(): no database access
    if process_metrics:
        # process_resident_memory_bytes and friends: the exporter's own footprint.
        ProcessCollector(registry=registry)
    return registry


def _takes_text(accept: str) -> bool:
    """Prometheus asks for OpenMetrics first but takes the text format too (q=0.5)."""
    return not accept or "text/plain" in accept or "*/*" in accept


class _RecentProcessFamilies:
    """The process_* families, read from /proc at most once per `max_age` seconds. Each
    reading opens several /proc files and lists every open descriptor; a hundred scrapes
    arriving at once each did it, which cost more than the rest of their scrape (measured
    with bench/exporter.py: p99 of 100 simultaneous scrapes ~105–130 ms reading each time,
    ~70–90 ms sharing one reading). A second's staleness is nothing to a gauge of the
    exporter's own footprint."""

    def __init__(self, *, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self._collector = ProcessCollector(registry=None)
        self._max_age, self._clock = max_age, clock
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._families: tuple[Metric, ...] = ()

    def families(self) -> tuple[Metric, ...]:
        if self._clock() - self._read_at < self._max_age:
            return self._families
        with self._lock:  # one thread reads; the others of the burst take its reading
            if self._clock() - self._read_at >= self._max_age:
                self._families = tuple(self._collector.collect())
                self._read_at = self._clock()
            return self._families


def metrics_app(collector: SnapshotCollector, *, process_metrics: bool = True) -> WSGIApp:
    """The /metrics WSGI app. A plain scrape gets the snapshot text rendered at refresh time
    plus the health and process families rendered now; anything else (OpenMetrics only,
    `name[]` filters, other methods) goes to prometheus_client's make_wsgi_app over the same
    collector."""
    fallback = make_wsgi_app(registry_for(collector, process_metrics=process_metrics))
    process = _RecentProcessFamilies() if process_metrics else None

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if (
            environ["REQUEST_METHOD"] != "GET"
            or environ.get("QUERY_STRING")
            or environ.get("PATH_INFO") == "/favicon.ico"
            or not _takes_text(environ.get("HTTP_ACCEPT", ""))
        ):
            return fallback(environ, start_response)
        text, text_gzip, health = collector.rendered()
        live = [*health, *(process.families() if process else ())]
        tail = generate_latest(ReadyFamilies(live))
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            # Two gzip members in a row are one valid gzip stream (RFC 1952, 2.2).
            body = text_gzip + gzip.compress(tail)
            headers.append(("Content-Encoding", "gzip"))
        else:
            body = text + tail
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    # A client that stops sending or reading mid-request gives up its thread after this
    # long instead of holding it for good (Prometheus's scrape_timeout is at most 10 s).
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # a scrape a second is no news
        pass


def serve_http(
    collector: SnapshotCollector, *, host: str, port: int, process_metrics: bool = True
) -> Endpoint:
    """Listen on host:port (port 0 picks a free one); raises OSError when it cannot."""

    class Server(ThreadingWSGIServer):
        # A thread per connection (daemon threads: a stuck client never blocks exit), so a
        # slow client delays only itself.
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # socketserver's default listen backlog is 5: with more scrapers connecting at once
        # the kernel dropped their SYNs and they retried after 1, 3, 7… s (a 28 s maximum
        # under 50 scrapers). The kernel caps it at net.core.somaxconn.
        request_queue_size = LISTEN_BACKLOG

    server = make_server(
        host,
        port,
        metrics_app(collector, process_metrics=process_metrics),
        Server,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="yiyun-exporter-http")
    thread.daemon = True
    thread.start()
    return Endpoint(server=server, thread=thread)
