"""`yiyun scan`: list every scope of the chosen nodes into the ledger and report how it went."""

from __future__ import annotations

import difflib
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlmodel import Session, col, select

from commands.common import EXIT_PROBLEM, fail, open_ledger
from commands.disclosure import IncludeClassifiedOption, disclosure_for, note_withheld
from commands.lang import cli_lang
from inventory.collectors.base import OK
from inventory.confidentiality import Disclosure
from inventory.i18n import text
from inventory.logs import redact
from inventory.models import Node
from inventory.output import as_text, message_text, visible
from inventory.scope_failures import failure_wording, scope_status_label
from inventory.settings import get_settings

if TYPE_CHECKING:
    from inventory.scan import ScanSummary, ScopeOutcome

err = Console(stderr=True)
# What a shell reports for a command ended by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _describe(outcome: ScopeOutcome, lang: str, disclosure: Disclosure) -> str:
    # A namespace labelled with a classified system is not named, nor in a source's message.
    where = disclosure.scope_label(
        None, f"{outcome.node_id}/{outcome.source}/{outcome.kind}/{outcome.scope}"
    )
    if outcome.sweep == "held":
        return text("scope_held", lang, where=where, held=outcome.held, node=outcome.node_id)
    sweep_texts = {
        "agreed": "scope_sweep_agreed",
        "confirmed": "scope_sweep_confirmed",
        "retired": "scope_retired",
    }
    if outcome.sweep in sweep_texts:
        return text(sweep_texts[outcome.sweep], lang, where=where, deleted=outcome.counts.deleted)
    if outcome.error_code == "interrupted":
        return text("scope_interrupted", lang, where=where, items=outcome.items)
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
    # The failure's code stays next to its status ("error malformed_response"): it is what
    # people search the logs and `report scans` for; the sentence after it says what to check.
    code = outcome.error_code
    return text(
        "term_scope_failed",
        lang,
        where=where,
        status=scope_status_label(outcome.status, lang),
        code=text("term_scope_code", lang, code=code) if code else "",
        items=outcome.items,
        failure=failure_wording(
            outcome.status,
            None,
            disclosure.text(None, outcome.error_message),
            lang,
            {"node_id": outcome.node_id, "held": outcome.held, "error_code": code},
        ),
    )


def _apply_config(path: str, lang: str) -> None:
    """Apply the --config node file before scanning; a refused file stops the scan (exit 2).

    A retired node the file still lists stays retired: `yiyun nodes apply FILE` brings one
    back on purpose, a routine scan never does.
    """
    from inventory.nodes import NodeFileError, apply_nodes, load_node_file

    try:
        specs = load_node_file(path)
        with Session(open_ledger(lang)) as session:
            report = apply_nodes(session=session, specs=specs, revive=False)
            session.commit()
    except NodeFileError as error:
        fail(text("node_file_invalid", lang, path=path, error=error.describe(lang)), lang=lang)
    for node_id in report.kept_retired:
        err.print(message_text(text("config_lists_retired", lang, node=node_id, path=path)))
    if report.not_in_file:
        err.print(
            message_text(
                text("config_missing_nodes", lang, nodes=", ".join(report.not_in_file), path=path)
            )
        )


def execute_scan(
    engine: sa.Engine,
    chosen: list[Node],
    *,
    lang: str,
    concurrency: int = 4,
    confirm_deletions: bool = False,
    by: str | None = None,
    disclosure: Disclosure | None = None,
) -> ScanSummary:
    """Run the scan with a progress display (a bar on a terminal, a line per scope otherwise)
    and print the per-node summary."""
    from inventory.scan import Scanner, ScopeOutcome
    from inventory.store import SweepGuard

    disclosure = disclosure or Disclosure()
    with Session(engine) as session:
        disclosure.classified(session)  # read once, before the scan's threads need it

    settings = get_settings()
    guard = SweepGuard(
        ratio=settings.sweep_guard_ratio,
        minimum=settings.sweep_guard_min,
        confirmed=confirm_deletions,
        by=by,
    )

    interactive = sys.stderr.isatty()
    progress = Progress(
        TextColumn(f"[bold]{text('scan_progress', lang)}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        # The description is a scope's line, a source's own words among it: never markup.
        TextColumn("{task.description}", markup=False),
        console=err,
        disable=not interactive,
    )
    task = progress.add_task("", total=None)

    printing = threading.Lock()

    def planned(total: int) -> None:
        progress.update(task, total=total)

    def done(outcome: object) -> None:
        assert isinstance(outcome, ScopeOutcome)
        progress.advance(task)
        # A source's error message is its own text: its markup and escape sequences are
        # shown, never obeyed (an ESC from an endpoint must not drive the user's terminal).
        line = visible(_describe(outcome, lang, disclosure))
        if interactive:
            progress.update(task, description=line[:60])
            if outcome.status != OK or outcome.sweep:
                style = "red" if outcome.status not in (OK, "retired") else "yellow"
                progress.console.print(Text(line, style=style))
        else:
            # Scopes finish on worker threads: print() writes the line and its newline apart,
            # so two lines could run together. One write of the whole line, one at a time.
            with printing:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    with progress:
        summary = Scanner(
            engine, concurrency=concurrency, on_scope_done=done, on_planned=planned, guard=guard
        ).run(chosen)

    table = Table(title=text("scan_run", lang, run=summary.run_id))
    for column in ("node", "scopes", "failed", "items", "new", "changed", "gone"):
        table.add_column(text(column, lang), justify="left" if column == "node" else "right")
    by_node: dict[str, list[ScopeOutcome]] = {}
    for outcome in summary.outcomes:
        by_node.setdefault(outcome.node_id, []).append(outcome)
    for n in chosen:
        mine = by_node.get(n.id, [])
        if n.id in summary.busy_nodes:
            table.add_row(as_text(n.id), "—", text("busy", lang), "", "", "", "")
            continue
        table.add_row(
            as_text(n.id),
            str(len(mine)),
            str(sum(o.status not in (OK, "retired") for o in mine)),
            str(sum(o.items for o in mine)),
            str(sum(o.counts.created for o in mine)),
            str(sum(o.counts.updated for o in mine)),
            str(sum(o.counts.deleted for o in mine)),
        )
    Console().print(table)
    for busy in summary.busy_nodes:
        err.print(message_text(text("node_busy", lang, node=busy), "yellow"))
    return summary


def scan(
    node: Annotated[
        list[str] | None, typer.Option("--node", help="Scan only this node (repeatable).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Scopes listed at once.")
    ] = 4,
    confirm_deletions: Annotated[
        bool,
        typer.Option(
            "--confirm-deletions",
            help="Let this scan of the --node(s) delete what its complete listings lack, even "
            "past the deletion guard (after checking that those resources are really gone).",
        ),
    ] = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who confirms the deletions (default: the login name)."),
    ] = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Inventory the nodes: exit 0 when every scope listed completely, 1 when any failed or
    had its deletions held, 130 when interrupted."""
    from inventory.locks import LocksUnavailable
    from inventory.scan import ScanCrashed, ScanInterrupted

    lang = cli_lang()
    if confirm_deletions and not node:
        fail(text("confirm_needs_node", lang), lang=lang)
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
    chosen = [known[n] for n in node] if node else list(nodes)
    for retired in [n for n in chosen if n.retired_at is not None]:
        if node:  # asked for by name: say why nothing happens
            err.print(message_text(text("scan_skipped_retired", lang, node=retired.id)))
    # A node whose every source was removed still gets a scan: it plans nothing, so its
    # rows are retired instead of counting as evidence forever.
    chosen = [
        n for n in chosen if n.retired_at is None and (n.sources or _has_live_rows(engine, n.id))
    ]
    if not chosen:
        fail(text("no_source_to_scan", lang), lang=lang)

    disclosure = disclosure_for(include_classified)
    try:
        summary = execute_scan(
            engine,
            chosen,
            lang=lang,
            concurrency=concurrency,
            confirm_deletions=confirm_deletions,
            by=(by or _login_name()) if confirm_deletions else None,
            disclosure=disclosure,
        )
    except ScanInterrupted as interrupted:
        done = interrupted.summary
        err.print(
            text(
                "scan_interrupted",
                lang,
                run=done.run_id,
                done=done.recorded,
                not_run=len(done.not_run),
            ),
            markup=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ScanCrashed as crashed:
        err.print(
            message_text(
                text("scan_crashed", lang, run=crashed.run_id, error=redact(str(crashed.error)))
            )
        )
        raise typer.Exit(EXIT_PROBLEM) from None
    except LocksUnavailable as error:
        # Taken before the run is recorded: nothing was scanned and no run is left `running`.
        fail(
            text("scan_locks_unavailable", lang, path=error.path, error=error.reason),
            EXIT_PROBLEM,
            lang=lang,
        )
    note_withheld(disclosure, lang)
    if summary.held:
        held_nodes = " ".join(f"--node {n}" for n in sorted({o.node_id for o in summary.held}))
        err.print(message_text(text("scan_held", lang, count=len(summary.held), nodes=held_nodes)))
    if not summary.ok:
        others = len(summary.failed) - len(summary.held)
        if others:
            err.print(text("scan_failed", lang, count=others), markup=False)
        if summary.outcomes and len(summary.failed) == len(summary.outcomes):
            # Not one scope listed: the run proved nothing, which a partial failure does not
            # say loudly enough. Both exit 1 (README, exit codes).
            err.print(message_text(text("term_scan_nothing_listed", lang)))
        raise typer.Exit(EXIT_PROBLEM)


def _has_live_rows(engine: sa.Engine, node_id: str) -> bool:
    from inventory.store import has_live_rows

    with Session(engine) as session:
        return has_live_rows(session=session, node_id=node_id)


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name in a container without a passwd entry
        return "unknown"
