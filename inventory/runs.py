"""Scan run states: how a run ends, and closing runs that a killed process left `running`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.confidentiality import REDACTED, Disclosure
from inventory.locks import LocksUnavailable, node_locks
from inventory.models import ScanRun, ScopeResult

log = logging.getLogger(__name__)

RUNNING, OK, FAILED = "running", "ok", "failed"
INTERRUPTED, CRASHED, ABANDONED = "interrupted", "crashed", "abandoned"
# Runs that listed every scope they planned (some may have failed): only these can be a
# node's complete scan.
COMPLETED_RUNS = (OK, FAILED)


def close_abandoned_runs(engine: sa.Engine, *, now: datetime | None = None) -> list[int]:
    """Mark `abandoned` every run still `running` whose process is gone; return their ids.

    A live scan holds the scan lock of each node it scans from before its run is recorded
    until after the run is closed. So a `running` run all of whose node locks can be taken
    now has no process behind it (SIGKILL, a power cut): the operating system or the
    database released its locks when it died. A run whose nodes are locked by someone is
    left alone — it may be alive, and the next look will tell.
    """
    with Session(engine) as session:
        running = session.exec(
            select(ScanRun).where(ScanRun.status == RUNNING).order_by(col(ScanRun.id))
        ).all()
    closed: list[int] = []
    for run in running:
        try:
            abandoned = _close_if_abandoned(engine, run, now=now)
        except LocksUnavailable as error:
            # Without the locks no run can be told dead: leave them all to a later look (a
            # scan needs the same locks and stops with this error itself).
            log.warning("cannot tell whether scan runs were abandoned: %s", error)
            break
        if abandoned:
            assert run.id is not None
            closed.append(run.id)
            log.warning("scan run %s was left running by a process that died", run.id)
    return closed


def _close_if_abandoned(engine: sa.Engine, run: ScanRun, *, now: datetime | None) -> bool:
    with node_locks(engine, list(run.nodes or [])) as busy:
        if busy:
            return False
        with Session(engine) as session:
            # Only if still running: the run may have closed itself meanwhile.
            result = session.execute(
                sa.update(ScanRun)
                .where(col(ScanRun.id) == run.id, col(ScanRun.status) == RUNNING)
                .values(status=ABANDONED, finished_at=now or datetime.now(tz=UTC))
            )
            session.commit()
        return bool(getattr(result, "rowcount", 0))


NOT_RUN = "not_run"


def scope_rows(
    *,
    session: Session,
    run: ScanRun,
    failed_only: bool = False,
    disclosure: Disclosure | None = None,
) -> list[dict[str, Any]]:
    """A row per scope of `run`: its ScopeResult, or `not_run` for a scope the run planned but
    never listed. Every row carries the run's id and status. A namespace labelled with a
    classified system is redacted unless the disclosure includes it (the row stays: its status
    counts). Sorted by node, kind, scope and source."""
    disclosure = disclosure or Disclosure()
    results = session.exec(select(ScopeResult).where(ScopeResult.run_id == run.id)).all()
    rows = [r.model_dump() for r in results]
    listed = {(r.node_id, r.source, r.kind, r.scope) for r in results}
    for node_id, source, kind, scope in run.planned or []:
        if (node_id, source, kind, scope) not in listed:
            rows.append(
                {"node_id": node_id, "source": source, "kind": kind, "scope": scope,
                 "status": NOT_RUN, "items": 0, "pages": 0, "api_calls": 0, "retries": 0,
                 "deleted": 0, "held": 0}
            )  # fmt: skip
    for row in rows:
        row["run_id"], row["run_status"] = run.id, run.status
    if failed_only:
        rows = [row for row in rows if row["status"] not in ("ok", "retired")]
    for row in rows:
        _disclose_scope(session, row, disclosure)
    rows.sort(key=lambda row: (row["node_id"], row["kind"], row["scope"], row["source"]))
    return rows


def _disclose_scope(session: Session, row: dict[str, Any], disclosure: Disclosure) -> None:
    scope = row["scope"]
    shown = disclosure.scope(
        session, node_id=row["node_id"], source=row["source"], kind=row["kind"], scope=scope
    )
    if shown != scope:
        row["scope"] = shown
        # A Kubernetes refusal names the namespace it was refused in.
        if row.get("error_message"):
            row["error_message"] = row["error_message"].replace(scope, REDACTED)
