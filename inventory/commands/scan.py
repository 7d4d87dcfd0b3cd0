"""`yiyun scan`: list every scope of the chosen nodes into the ledger and report how it went."""

from __future__ import annotations

import difflib
import sys
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlmodel import Session, col, select

from inventory.collectors.base import OK
from inventory.commands.common import EXIT_PROBLEM, fail, open_ledger
from inventory.models import Node
from inventory.settings import get_settings

if TYPE_CHECKING:
    from inventory.scan import ScanSummary

err = Console(stderr=True)


def _describe(outcome: object) -> str:
    from inventory.scan import ScopeOutcome

    assert isinstance(outcome, ScopeOutcome)
    where = f"{outcome.node_id}/{outcome.source}/{outcome.kind}/{outcome.scope}"
    if outcome.status == OK:
        c = outcome.counts
        return (
            f"{where}: ok, {outcome.items} items ({c.created} new, {c.updated} changed, "
            f"{c.reappeared} back, {c.deleted} gone) in {outcome.duration_seconds:.1f}s"
        )
    return (
        f"{where}: {outcome.status} {outcome.error_code}: {outcome.error_message} "
        f"(kept every row it had; {outcome.items} items listed before it stopped)"
    )


def _apply_config(path: str) -> None:
    from inventory.nodes import NodeFileError, apply_nodes, load_node_file

    try:
        specs = load_node_file(path)
    except NodeFileError as error:
        fail(f"node file {path} is not valid:\n{error}")
    with Session(open_ledger()) as session:
        apply_nodes(session=session, specs=specs)
        session.commit()


def execute_scan(engine: sa.Engine, chosen: list[Node], *, concurrency: int = 4) -> ScanSummary:
    """Run the scan with a progress display (a bar on a terminal, a line per scope otherwise)
    and print the per-node summary."""
    from inventory.scan import Scanner

    interactive = sys.stderr.isatty()
    progress = Progress(
        TextColumn("[bold]scan"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        disable=not interactive,
    )
    task = progress.add_task("", total=None)

    def planned(total: int) -> None:
        progress.update(task, total=total)

    def done(outcome: object) -> None:
        progress.advance(task)
        line = _describe(outcome)
        if interactive:
            progress.update(task, description=line[:60])
            if "ok," not in line:
                progress.console.print(f"[red]{line}[/red]", highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    with progress:
        summary = Scanner(
            engine, concurrency=concurrency, on_scope_done=done, on_planned=planned
        ).run(chosen)

    table = Table(title=f"scan run {summary.run_id}")
    for column in ("node", "scopes", "failed", "items", "new", "changed", "gone"):
        table.add_column(column, justify="left" if column == "node" else "right")
    for n in chosen:
        mine = [o for o in summary.outcomes if o.node_id == n.id]
        if n.id in summary.busy_nodes:
            table.add_row(n.id, "—", "busy", "", "", "", "")
            continue
        table.add_row(
            n.id,
            str(len(mine)),
            str(sum(o.status != OK for o in mine)),
            str(sum(o.items for o in mine)),
            str(sum(o.counts.created for o in mine)),
            str(sum(o.counts.updated for o in mine)),
            str(sum(o.counts.deleted for o in mine)),
        )
    Console().print(table)
    for busy in summary.busy_nodes:
        err.print(f"[yellow]node {busy} is being scanned by another process; skipped[/yellow]")
    return summary


def scan(
    node: Annotated[
        list[str] | None, typer.Option("--node", help="Scan only this node (repeatable).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Scopes listed at once.")
    ] = 4,
) -> None:
    """Inventory the nodes: exit 0 when every scope listed completely, 1 when any failed."""
    settings = get_settings()
    if settings.config:
        _apply_config(settings.config)
    engine = open_ledger()
    with Session(engine, expire_on_commit=False) as session:
        nodes = list(session.exec(select(Node).order_by(col(Node.id))))
    if not nodes:
        fail("no nodes defined yet: run `yiyun nodes apply FILE` (or pass --config FILE)")
    known = {n.id: n for n in nodes}
    for wanted in node or []:
        if wanted not in known:
            close = difflib.get_close_matches(wanted, known, n=1)
            fail(f"unknown node {wanted!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    chosen = [known[n] for n in node] if node else [n for n in nodes if n.sources]
    chosen = [n for n in chosen if n.sources]
    if not chosen:
        fail("none of the chosen nodes has a source to scan")

    summary = execute_scan(engine, chosen, concurrency=concurrency)
    if not summary.ok:
        err.print(
            f"{len(summary.failed)} scope(s) failed; their rows were kept as they were. "
            "See `yiyun report scans` or run with -v for details."
        )
        raise typer.Exit(EXIT_PROBLEM)
