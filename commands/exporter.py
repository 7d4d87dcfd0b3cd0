"""`yiyun exporter`: serve the KPI, scan health and violations as Prometheus metrics."""

from __future__ import annotations

import gc
import signal
import sys
import threading
from typing import Annotated

import typer

from commands.common import err_console, fail
from inventory.output import message_text

app = typer.Typer(
    help="Prometheus exporter for the KPI, scan health and violations.", no_args_is_help=True
)


@app.command("serve")
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you say so).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = 9464,
    refresh: Annotated[
        float,
        typer.Option("--refresh", min=1.0, help="Seconds between snapshot refreshes from the DB."),
    ] = 30.0,
) -> None:
    """Serve /metrics until SIGTERM or Ctrl-C; a database outage shows as yiyun_exporter_up 0."""
    import sqlalchemy as sa

    from commands.lang import cli_lang
    from exporters.ledger_file import ledger_engine
    from exporters.server import Exporter, serve_http
    from inventory.db import mask_url
    from inventory.i18n import text
    from inventory.reports import UnknownPolicy, policy_from
    from inventory.settings import get_settings
    from migrate.metrics import migration_state_counts
    from migrate.placement import placement_counts

    settings = get_settings()
    lang = cli_lang()
    try:
        policy_from(settings)
    except UnknownPolicy as error:
        fail(text("unknown_policy", lang, policy=error.policy), lang=lang)
    try:
        # Building an engine does not connect: an unreachable database is the refresher's
        # business (yiyun_exporter_up 0), only a malformed URL stops us here. A SQLite ledger
        # that is not there is never created by the exporter.
        engine = ledger_engine(settings.database_url)
    except (sa.exc.ArgumentError, ValueError):  # SQLAlchemy's parser: a bad port is a ValueError
        fail(text("not_a_db_url", lang, url=mask_url(settings.database_url)), lang=lang)
    # The seams to `migrate` (exporters.snapshot): systems per plan, wave and state, and
    # systems placed against R1–R6 per unified-cloud node.
    exporter = Exporter(
        engine=engine,
        settings=settings,
        interval=refresh,
        migration_counts=migration_state_counts,
        placement_counts=placement_counts,
    )
    try:
        endpoint = serve_http(exporter.collector, host=host, port=port)
    except OSError as error:
        reason = error.strerror or error
        fail(text("cannot_listen", lang, address=f"{host}:{port}", error=reason), lang=lang)

    # A scrape hands the GIL back and forth a dozen times (socket, /proc reads) and waits at
    # each for the refresher's thread: every 1 ms instead of 5 keeps p99 well under 50 ms.
    sys.setswitchinterval(0.001)
    # What is loaded by now lives as long as the process: no collection needs to scan it.
    gc.freeze()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    exporter.start()
    err_console.print(
        message_text(
            text(
                "exporter_serving",
                lang,
                url=endpoint.url,
                db=mask_url(settings.database_url),
                seconds=f"{refresh:g}",
            )
        )
    )
    # A bounded wait, so the signal handler gets its turn even where a bare wait would block it.
    while not stopping.wait(1.0):
        pass
    err_console.print(text("exporter_stopping", lang), highlight=False)
    endpoint.close()
    exporter.stop()
    engine.dispose()
