"""Scan orchestration: plan every scope, list them concurrently, write in batches, sweep only
complete scopes, and record one ScopeResult per unit of listing work."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from inventory.collectors.base import ERROR, OK, PARTIAL, ResourceRow, Scope, ScopeFailed
from inventory.collectors.registry import get_collector
from inventory.locks import lock_holders, node_locks
from inventory.logs import redact
from inventory.models import Node, ScanRun, ScopeResult
from inventory.runs import CRASHED, INTERRUPTED, close_abandoned_runs
from inventory.runs import FAILED as RUN_FAILED
from inventory.runs import OK as RUN_OK
from inventory.store import (
    HELD,
    RETIRED,
    Known,
    Sweep,
    SweepGuard,
    WriteCounts,
    has_live_rows,
    ledger_scopes,
    scope_state,
    sweep_scope,
    upsert_resources,
)

log = logging.getLogger(__name__)
# Rows written per transaction: larger batches mean fewer round trips (measured: 2,500 rows
# cut an unchanged rescan by ~8 % against 1,000), smaller ones bound memory per scope.
BATCH_SIZE = 2000
ANALYZE_AFTER_ROWS = 10_000


def utcnow() -> datetime:
    return datetime.now(tz=UTC)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the garbage collector's thresholds while a scan runs.

    A scan allocates millions of short-lived objects in batches that outlive the young
    generation, and with the default thresholds the collector re-scans them again and again:
    measured with bench/ingest.py, ~15 % of an unchanged rescan. Reference counting frees
    them anyway (rows form no cycles); the thresholds are restored afterwards.
    """
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass
class ScopeOutcome:
    """How one scope went, as the progress display and the summary show it."""

    node_id: str
    source: str
    kind: str
    scope: str
    status: str
    items: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    error_code: str | None = None
    error_message: str | None = None
    duration_seconds: float = 0.0
    held: int = 0  # rows a held sweep kept live
    sweep: str | None = None  # held / agreed / confirmed / retired; None when routine


@dataclass
class ScanSummary:
    run_id: int
    outcomes: list[ScopeOutcome]
    busy_nodes: list[str]
    status: str = OK
    # Scopes planned but never listed (the run was interrupted first).
    not_run: list[tuple[str, str, str, str]] = field(default_factory=list)
    # Scopes with a recorded result, however they ended (an interrupted run's too).
    recorded: int = 0

    @property
    def failed(self) -> list[ScopeOutcome]:
        """Scopes that did not list completely, or whose sweep was held."""
        return [o for o in self.outcomes if o.status not in (OK, RETIRED)]

    @property
    def held(self) -> list[ScopeOutcome]:
        return [o for o in self.outcomes if o.status == HELD]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.busy_nodes and not self.not_run


class ScanInterrupted(Exception):
    """Ctrl-C: the run ended `interrupted`; scopes that finished are kept, nothing else swept."""

    def __init__(self, summary: ScanSummary) -> None:
        super().__init__(f"scan run {summary.run_id} interrupted")
        self.summary = summary


class ScanCrashed(Exception):
    """The orchestrator itself failed (not one scope): the run ended `crashed`."""

    def __init__(self, run_id: int, error: BaseException) -> None:
        super().__init__(f"scan run {run_id} crashed: {type(error).__name__}: {error}")
        self.run_id = run_id
        self.error = error


def _display_only(
    on_scope_done: Callable[[ScopeOutcome], None],
) -> Callable[[ScopeOutcome], None]:
    """The caller's progress display, which must never cost the scan: a failure to show one
    scope (a renderer choking on what a source said, a closed terminal) loses that line, not
    the listings still running or the run's closing."""

    def show(outcome: ScopeOutcome) -> None:
        try:
            on_scope_done(outcome)
        except Exception as error:
            where = f"{outcome.node_id}/{outcome.source}/{outcome.kind}/{outcome.scope}"
            log.warning("could not show the result of %s: %s", where, type(error).__name__)
            log.debug("showing %s failed", where, exc_info=True)

    return show


class _Cancelled(Exception):
    """Raised inside a scope's listing when the run has been interrupted."""


class _Writer:
    """Hands out one short transaction per write; serialised on SQLite (one writer at a
    time), parallel on PostgreSQL. A scope keeps one session (its connection stays checked
    out, so no per-write pool checkout); threads never share one."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.lock: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self, session: Session | None = None) -> Iterator[Session]:
        with self.lock, nullcontext(session) if session else self.session() as active:
            try:
                yield active
                active.commit()
            except BaseException:
                active.rollback()
                raise


def _classify_crash(error: BaseException, items: int) -> tuple[str, str, str]:
    """Status, code and message for an exception a collector did not map itself."""
    status = PARTIAL if items else ERROR
    return status, type(error).__name__, redact(str(error))[:1000]


def plan(node: Node) -> tuple[list[Scope], list[ScopeOutcome]]:
    """Every scope of a node, plus a failed outcome for each source that could not be planned."""
    scopes: list[Scope] = []
    failures: list[ScopeOutcome] = []
    for source in node.sources or []:
        name = source.get("name") or source["kind"]
        try:
            collector = get_collector(source["kind"])
            scopes.extend(
                collector.plan_scopes(node_id=node.id, source=source, system_tag=node.system_tag)
            )
        except Exception as error:  # isolate at the edge: one bad source costs only itself
            failures.append(
                ScopeOutcome(
                    node_id=node.id,
                    source=name,
                    kind="*",
                    scope="*",
                    status=ERROR,
                    error_code=type(error).__name__,
                    error_message=redact(str(error))[:1000],
                )
            )
    return scopes, failures


class Scanner:
    """Runs one ScanRun over a set of nodes."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        concurrency: int = 4,
        batch_size: int = BATCH_SIZE,
        on_scope_done: Callable[[ScopeOutcome], None] | None = None,
        on_planned: Callable[[int], None] | None = None,
        planner: Callable[[Node], tuple[list[Scope], list[ScopeOutcome]]] = plan,
        upsert: Callable[..., WriteCounts] = upsert_resources,
        sweep: Callable[..., Sweep] = sweep_scope,
        guard: SweepGuard | None = None,
    ) -> None:
        self.engine = engine
        self.planner = planner
        self.concurrency = max(1, concurrency)
        self.batch_size = batch_size
        self.on_scope_done = _display_only(on_scope_done or (lambda _o: None))
        self.on_planned = on_planned or (lambda _n: None)
        self.writer = _Writer(engine)
        # The bulk write path by default; tests swap in inventory.store_simple to prove both
        # leave the same ledger.
        self.upsert, self.sweep = upsert, sweep
        self.guard = guard if guard is not None else SweepGuard()
        # Set by Ctrl-C: scopes stop at their next page and sweep nothing; unstarted ones
        # never start.
        self.cancelled = threading.Event()

    def run(self, nodes: list[Node]) -> ScanSummary:
        with fewer_collections():
            return self._run(nodes)

    def _run(self, nodes: list[Node]) -> ScanSummary:
        # Before taking our own locks: a dead run's nodes must be lockable by us to tell.
        close_abandoned_runs(self.engine)
        # The locks come first and the run is closed before they are released, so a run seen
        # `running` always has its process holding them (close_abandoned_runs relies on it).
        with node_locks(self.engine, [n.id for n in nodes]) as busy:
            run_id = self._open_run(nodes)
            outcomes: list[ScopeOutcome] = []
            planned: list[Scope] = []
            try:
                holders = lock_holders(self.engine, busy) if busy else {}
                for node_id in busy:
                    pid = holders.get(node_id)
                    log.warning(
                        "node %s is being scanned by another process; skipped%s",
                        node_id,
                        f" (pid {pid} holds its lock)" if pid else "",
                    )
                by_node: dict[str, tuple[Node, list[Scope], list[ScopeOutcome]]] = {}
                for node in nodes:
                    if node.id in busy:
                        continue
                    scopes, failures = self.planner(node)
                    by_node[node.id] = (node, scopes, failures)
                    planned.extend(scopes)
                    for failure in failures:
                        self._record(run_id, failure, started=utcnow())
                        outcomes.append(failure)
                        self.on_scope_done(failure)
                self._save_plan(run_id, planned)
                self.on_planned(len(planned) + len(outcomes))
                outcomes.extend(self._list_all(run_id, planned))
                # Per node, gathered once: looking through every outcome for every node took
                # minutes at 5,000 nodes.
                incomplete: dict[str, set[tuple[str, str]]] = {}
                for done in outcomes:
                    if done.status != OK:
                        incomplete.setdefault(done.node_id, set()).add((done.source, done.kind))
                for node, scopes, failures in by_node.values():
                    outcomes.extend(
                        self._retire_unplanned(
                            run_id, node, scopes, failures, incomplete.get(node.id, set())
                        )
                    )
            except KeyboardInterrupt:
                self.cancelled.set()
                summary = self._close(run_id, outcomes, planned, busy, status=INTERRUPTED)
                raise ScanInterrupted(summary) from None
            except Exception as error:  # the orchestrator's own failure, not one scope's
                self.cancelled.set()
                self._close(run_id, outcomes, planned, busy, status=CRASHED, error=error)
                raise ScanCrashed(run_id, error) from error
            summary = self._close(run_id, outcomes, planned, busy)
        self._refresh_statistics(outcomes)
        return summary

    def _open_run(self, nodes: list[Node]) -> int:
        with Session(self.engine, expire_on_commit=False) as session:
            run = ScanRun(started_at=utcnow(), nodes=[n.id for n in nodes])
            session.add(run)
            session.commit()
            assert run.id is not None
            return run.id

    def _save_plan(self, run_id: int, scopes: list[Scope]) -> None:
        with self.writer.transaction() as session:
            run = session.get(ScanRun, run_id)
            assert run is not None
            run.planned = [list(scope.key) for scope in scopes]
            session.add(run)

    def _list_all(self, run_id: int, scopes: list[Scope]) -> list[ScopeOutcome]:
        """List every scope on the pool; Ctrl-C cancels what has not started and stops the rest
        at their next page (a listing in flight is never swept)."""
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures = [pool.submit(self._run_scope, run_id, scope) for scope in scopes]
            results = [future.result() for future in futures]
        except BaseException:
            self.cancelled.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return [outcome for outcome in results if outcome is not None]

    def _close(
        self,
        run_id: int,
        outcomes: list[ScopeOutcome],
        planned: list[Scope],
        busy: list[str],
        *,
        status: str | None = None,
        error: BaseException | None = None,
    ) -> ScanSummary:
        """End the run with its final status; an interrupted or crashed run still closes."""
        with Session(self.engine) as session:
            recorded = {
                (r.node_id, r.source, r.kind, r.scope)
                for r in session.exec(select(ScopeResult).where(ScopeResult.run_id == run_id))
            }
            not_run = [scope.key for scope in planned if scope.key not in recorded]
            summary = ScanSummary(run_id=run_id, outcomes=outcomes, busy_nodes=busy)
            summary.not_run, summary.recorded = not_run, len(recorded)
            if status is None:
                status = RUN_OK if summary.ok else RUN_FAILED
            summary.status = status
            finished = session.get(ScanRun, run_id)
            assert finished is not None
            finished.finished_at = utcnow()
            finished.scopes_total = len(outcomes)
            finished.scopes_failed = len(summary.failed)
            finished.status = status
            if error is not None:
                finished.error_message = redact(f"{type(error).__name__}: {error}")[:1000]
            session.add(finished)
            session.commit()
        return summary

    def _retire_unplanned(
        self,
        run_id: int,
        node: Node,
        scopes: list[Scope],
        failures: list[ScopeOutcome],
        incomplete: set[tuple[str, str]],
    ) -> list[ScopeOutcome]:
        """Tombstone the rows of scopes the node file no longer plans (reason scope_retired).

        A region, namespace, kind or whole source was removed, so no listing will ever sweep
        those rows again, and live they would count as evidence forever. Held back where the
        plan is uncertain: a source that could not be planned keeps all its scopes, and a
        (source, kind) with a scope that did not list completely keeps its old scopes too
        (their rows may have moved into the failed one).
        """
        if self.cancelled.is_set():
            return []
        planned = {(s.source, s.kind, s.scope) for s in scopes}
        unplanned_sources = {f.source for f in failures}
        retired: list[ScopeOutcome] = []
        with self.writer.session() as session:
            candidates = sorted(ledger_scopes(session=session, node_id=node.id) - planned)
            for source, kind, scope in candidates:
                if source in unplanned_sources or (source, kind) in incomplete:
                    continue
                if not has_live_rows(session=session, node_id=node.id, key=(source, kind, scope)):
                    continue
                started, clock = utcnow(), time.monotonic()
                outcome = ScopeOutcome(node.id, source, kind, scope, status=RETIRED)
                with self.writer.transaction(session):
                    swept = self.sweep(
                        session=session,
                        node_id=node.id,
                        source=source,
                        kind=kind,
                        scope=scope,
                        seen=(),
                        run_id=run_id,
                        now=utcnow(),
                        reason="scope_retired",
                    )
                    outcome.counts.deleted = swept.deleted
                    outcome.sweep = RETIRED
                    outcome.duration_seconds = time.monotonic() - clock
                    session.add(self._result(run_id, outcome, started=started))
                log.info("scope %s/%s/%s/%s retired", node.id, source, kind, scope)
                retired.append(outcome)
                self.on_scope_done(outcome)
        return retired

    def _refresh_statistics(self, outcomes: list[ScopeOutcome]) -> None:
        """After a scan that wrote many rows, let the query planner see the new table at once.
        With stale statistics PostgreSQL plans the next scan's key lookups as sequential
        scans, and SQLite walks the live-evidence index for queries that should scan the
        table (autovacuum comes only later; SQLite has none). On PostgreSQL a VACUUM also
        marks the new rows all-visible, so the KPI's evidence query is answered from its
        covering index alone (measured at 1M rows: 0.5 s → 0.2 s; the VACUUM took 0.6 s)."""
        written = sum(o.counts.created + o.counts.deleted for o in outcomes)
        if written < ANALYZE_AFTER_ROWS:
            return
        if self.engine.dialect.name == "postgresql":
            # VACUUM cannot run inside a transaction block.
            with self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                connection.exec_driver_sql("VACUUM (ANALYZE) resource")
                connection.exec_driver_sql("ANALYZE resourceevent")
            return
        with self.engine.connect() as connection:
            # Sampled statistics: enough for the planner, a fraction of a full ANALYZE.
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            connection.exec_driver_sql("ANALYZE resource")
            connection.exec_driver_sql("ANALYZE resourceevent")
            connection.commit()

    def _write(
        self,
        session: Session,
        run_id: int,
        scope: Scope,
        buffer: list[ResourceRow],
        known: Known | None = None,
    ) -> WriteCounts:
        return self.upsert(
            session=session,
            node_id=scope.node_id,
            source=scope.source,
            kind=scope.kind,
            rows=buffer,
            run_id=run_id,
            now=utcnow(),
            known=known,
        )

    def _known(self, session: Session, scope: Scope) -> Known | None:
        """The scope's rows as the ledger holds them, read once (its own short transaction)."""
        try:
            return scope_state(
                session=session,
                node_id=scope.node_id,
                source=scope.source,
                kind=scope.kind,
                scope=scope.scope,
            )
        finally:
            session.rollback()  # a read: end its transaction before the listing starts

    def _flush(
        self,
        session: Session,
        run_id: int,
        scope: Scope,
        buffer: list[ResourceRow],
        counts: WriteCounts,
        known: Known | None = None,
    ) -> None:
        if not buffer:
            return
        with self.writer.transaction(session):
            written = self._write(session, run_id, scope, buffer, known)
        # Only once committed: a failed write keeps its rows for the caller to retry or keep.
        counts.add(written)
        buffer.clear()

    def _run_scope(self, run_id: int, scope: Scope) -> ScopeOutcome | None:
        if self.cancelled.is_set():
            return None  # interrupted before it started: it never ran
        with self.writer.session() as session:
            return self._run_scope_in(session, run_id, scope)

    def _run_scope_in(self, session: Session, run_id: int, scope: Scope) -> ScopeOutcome:
        started, clock = utcnow(), time.monotonic()
        outcome = ScopeOutcome(scope.node_id, scope.source, scope.kind, scope.scope, status=OK)
        seen: set[str] = set()
        terminal: set[str] = set()
        buffer: list[ResourceRow] = []
        try:
            known = self._known(session, scope)
            owner = scope.scope
            for page in scope.pages(scope.stats):
                if self.cancelled.is_set():
                    raise _Cancelled
                for row in page:
                    # The scope that listed a row owns it: only its complete listing may sweep it.
                    row.scope = owner
                    seen.add(row.native_id)
                    if row.terminal:
                        terminal.add(row.native_id)
                buffer.extend(page)
                outcome.items += len(page)
                if len(buffer) >= self.batch_size:
                    self._flush(session, run_id, scope, buffer, outcome.counts, known)
            if self.cancelled.is_set():
                raise _Cancelled
            # The last batch, the sweep and the result that licenses it commit together: a
            # scan killed between two commits would leave tombstones that no recorded
            # complete listing explains.
            with self.writer.transaction(session):
                last = (
                    self._write(session, run_id, scope, buffer, known) if buffer else WriteCounts()
                )
                swept = self.sweep(
                    session=session,
                    node_id=scope.node_id,
                    source=scope.source,
                    kind=scope.kind,
                    scope=scope.scope,
                    seen=seen,
                    run_id=run_id,
                    now=utcnow(),
                    # Terminal rows are tombstoned, not live (counting one too few is safe).
                    live_seen=len(seen) - len(terminal),
                    guard=self.guard,
                )
                last.deleted += swept.deleted
                outcome.held, outcome.sweep = swept.held, swept.verdict
                if swept.verdict == HELD:
                    # Complete, but not trusted with its deletions: not `ok`, the scan exits 1.
                    outcome.status, outcome.error_code = HELD, "sweep_held"
                    outcome.error_message = (
                        f"the listing lacks {swept.held} live rows of the scope; kept until "
                        "the next complete listing lacks them too, or --confirm-deletions"
                    )
                outcome.duration_seconds = time.monotonic() - clock
                outcome.counts.add(last)
                session.add(self._result(run_id, outcome, started=started, scope=scope))
            buffer.clear()
        except _Cancelled:
            # Keep what the listing returned (it is true), sweep nothing.
            self._flush_quietly(session, run_id, scope, buffer, outcome)
            outcome.status = PARTIAL if outcome.items else ERROR
            outcome.error_code, outcome.error_message = "interrupted", "the scan was interrupted"
        except ScopeFailed as error:
            # Keep what the listing returned before it broke (it is true), sweep nothing.
            self._flush_quietly(session, run_id, scope, buffer, outcome)
            outcome.status, outcome.error_code = error.status, error.code
            outcome.error_message = redact(error.message)[:1000]
        except Exception as error:  # a crash in a collector fails its scope, not the scan
            log.debug("scope %s crashed", scope.key, exc_info=True)
            self._flush_quietly(session, run_id, scope, buffer, outcome)
            outcome.status, outcome.error_code, outcome.error_message = _classify_crash(
                error, outcome.items
            )
        else:
            self.on_scope_done(outcome)
            return outcome
        outcome.duration_seconds = time.monotonic() - clock
        self._record(run_id, outcome, started=started, scope=scope)
        self.on_scope_done(outcome)
        return outcome

    def _flush_quietly(
        self,
        session: Session,
        run_id: int,
        scope: Scope,
        buffer: list[ResourceRow],
        outcome: ScopeOutcome,
    ) -> None:
        try:
            self._flush(session, run_id, scope, buffer, outcome.counts)
        except Exception:
            log.warning("could not keep the rows listed before %s failed", scope.key, exc_info=True)

    def _record(
        self, run_id: int, outcome: ScopeOutcome, *, started: datetime, scope: Scope | None = None
    ) -> None:
        with self.writer.transaction() as session:
            session.add(self._result(run_id, outcome, started=started, scope=scope))

    def _result(
        self, run_id: int, outcome: ScopeOutcome, *, started: datetime, scope: Scope | None = None
    ) -> ScopeResult:
        stats = scope.stats if scope else None
        return ScopeResult(
            run_id=run_id,
            node_id=outcome.node_id,
            source=outcome.source,
            kind=outcome.kind,
            scope=outcome.scope,
            status=outcome.status,
            items=outcome.items,
            pages=stats.pages if stats else 0,
            api_calls=stats.api_calls if stats else 0,
            retries=stats.retries if stats else 0,
            duration_seconds=outcome.duration_seconds,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            started_at=started,
            finished_at=utcnow(),
            deleted=outcome.counts.deleted,
            held=outcome.held,
            sweep=outcome.sweep,
        )
