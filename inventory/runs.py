"""Scan run states: how a run ends, and closing runs that a killed process left `running`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.locks import node_locks
from inventory.models import ScanRun

log = logging.getLogger(__name__)

RUNNING, OK, FAILED = "running", "ok", "failed"
INTERRUPTED, CRASHED, ABANDONED = "interrupted", "crashed", "abandoned"
RUN_STATUSES = (RUNNING, OK, FAILED, INTERRUPTED, CRASHED, ABANDONED)


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
        with node_locks(engine, list(run.nodes or [])) as busy:
            if busy:
                continue
            with Session(engine) as session:
                # Only if still running: the run may have closed itself meanwhile.
                result = session.execute(
                    sa.update(ScanRun)
                    .where(col(ScanRun.id) == run.id, col(ScanRun.status) == RUNNING)
                    .values(status=ABANDONED, finished_at=now or datetime.now(tz=UTC))
                )
                session.commit()
            if getattr(result, "rowcount", 0):
                assert run.id is not None
                closed.append(run.id)
                log.warning("scan run %s was left running by a process that died", run.id)
    return closed
