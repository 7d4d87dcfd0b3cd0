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
from inventory.commands.lang import cli_lang
from inventory.models import Node
from inventory.reporting.i18n import text
from inventory.settings import get_settings

if TYPE_CHECKING:
    from inventory.scan import ScanSummary, ScopeOutcome

err = Console(stderr=True)


def _describe(outcome: ScopeOutcome, lang: str) -> str:
    where = f"{outcome.node_id}/{outcome.source}/{outcome.kind}/{outcome.scope}"
    if outcome.status == OK:
        c = outcome.counts
        return text(
            "scope_ok",
            lang,
            where=where,
            items=outcome.items,
            created=c.created,
            updated=c.updated,
            reappeared=c.reappeared,
            deleted=c.deleted,
            seconds=f"{outcome.duration_seconds:.1f}",
        )
    return text(
        "scope_failed",
        lang,
        where=where,
        status=outcome.status,
        code=outcome.error_code,
        message=outcome.error_message,
        items=outcome.items,
    )


def _apply_config(path: str, lang: str) -> None:
    from inventory.nodes import NodeFileError, apply_nodes, load_node_file

    try:
        specs = load_node_file(path)
    except NodeFileError as error:
        fail(text("node_file_invalid", lang, path=path, error=error), lang=lang)
    with Session(open_ledger(lang)) as session:
        apply_nodes(session=session, specs=specs)
        session.commit()


def execute_scan(
    engine: sa.Engine, chosen: list[Node], *, lang: str, concurrency: int = 4
) -> ScanSummary:
    """Run the scan with a progress display (a bar on a terminal, a line per scope otherwise)
    and print the per-node summary."""
    from inventory.scan import Scanner, ScopeOutcome

    interactive = sys.stderr.isatty()
    progress = Progress(
        TextColumn(f"[bold]{text('scan_progress', lang)}"),
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
        assert isinstance(outcome, ScopeOutcome)
        progress.advance(task)
        line = _describe(outcome, lang)
        if interactive:
            progress.update(task, description=line[:60])
            if outcome.status != OK:
                progress.console.print(f"[red]{line}[/red]", highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    with progress:
        summary = Scanner(
            engine, concurrency=concurrency, on_scope_done=done, on_planned=planned
        ).run(chosen)

    table = Table(title=text("scan_run", lang, run=summary.run_id))
    for column in ("node", "scopes", "failed", "items", "new", "changed", "gone"):
        table.add_column(text(column, lang), justify="left" if column == "node" else "right")
    for n in chosen:
        mine = [o for o in summary.outcomes if o.node_id == n.id]
        if n.id in summary.busy_nodes:
            table.add_row(n.id, "—", text("busy", lang), "", "", "", "")
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
        err.print(text("node_busy", lang, node=busy), style="yellow", markup=False)
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
    lang = cli_lang()
    settings = get_settings()
    if settings.config:
        _apply_config(settings.config, lang)
    engine = open_ledger(lang)
    with Session(engine, expire_on_commit=False) as session:
        nodes = list(session.exec(select(Node).order_by(col(Node.id))))
    if not nodes:
        fail(text("no_nodes_defined", lang), lang=lang)
    known = {n.id: n for n in nodes}
    for wanted in node or []:
        if wanted not in known:
            close = difflib.get_close_matches(wanted, known, n=1)
            hint = text("did_you_mean", lang, names=repr(close[0])) if close else ""
            fail(text("unknown_node", lang, node=wanted) + hint, lang=lang)
    chosen = [known[n] for n in node] if node else [n for n in nodes if n.sources]
    chosen = [n for n in chosen if n.sources]
    if not chosen:
        fail(text("no_source_to_scan", lang), lang=lang)

    summary = execute_scan(engine, chosen, lang=lang, concurrency=concurrency)
    if not summary.ok:
        err.print(text("scan_failed", lang, count=len(summary.failed)), markup=False)
        raise typer.Exit(EXIT_PROBLEM)
