"""`yiyun serve`: the HTTP API on uvicorn, over the same use cases as the command line."""

from __future__ import annotations

import errno
import os
import signal
import socket
from typing import TYPE_CHECKING, Annotated

import typer

from commands.common import fail, open_ledger
from commands.lang import cli_lang

if TYPE_CHECKING:
    import uvicorn

# Why a socket could not be had, in the reader's words for the usual three.
LISTEN_REASONS = {
    errno.EADDRINUSE: "serve_port_in_use",
    errno.EADDRNOTAVAIL: "serve_no_such_address",
    errno.EACCES: "serve_port_denied",
}


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before uvicorn starts: a taken port is our clear error (not
    uvicorn's exit 3 after "serving" was already printed), and --port 0 learns its real port."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


def stop_cleanly_on_sigterm(server: uvicorn.Server) -> None:
    """SIGTERM (how Kubernetes and systemd stop a service) ends with exit 0.

    uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler it
    found; under the default one the process would die "killed by SIGTERM" after a clean stop.
    A SIGTERM before uvicorn takes over its signals still stops it, once it has started."""

    def stop(_signum: int, _frame: object) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)


def tune_collector() -> None:
    """Fewer, later garbage collections for a long-running service.

    The read caches hold a province's KPI, findings and plans: millions of objects that the
    default thresholds (700 allocations) make the collector walk again and again, stalling
    every request in flight; bench/portal.py saw the dashboard's p99 fall from 361 to 108 ms
    with this (p50 52 → 38 ms), at the same memory. What exists at start-up (modules, the
    app) is frozen out of collection altogether; cycles are still collected."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you say so).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8080,
    demo_login: Annotated[
        bool,
        typer.Option(
            "--demo-login",
            help="Let anyone on this machine get a token without the identity provider "
            "(loopback only; for the demo ledger).",
        ),
    ] = False,
) -> None:
    """Serve the API under /api/v1 (OpenAPI at /api/v1/openapi.json) until Ctrl-C or SIGTERM."""
    import uvicorn

    from inventory.i18n import Wording, text
    from inventory.settings import get_settings
    from service.app import create_app
    from service.context import Service, is_loopback
    from service.identity import OidcSettings, OidcVerifier
    from service.portal.oidc_login import PortalClient

    lang = cli_lang()
    if demo_login and not is_loopback(host):
        fail(text("serve_demo_not_loopback", lang, host=host), lang=lang)
    engine = open_ledger(lang)
    try:
        oidc = OidcSettings.from_env(os.environ)
        portal = PortalClient.from_env(os.environ)
    except Wording as error:
        fail(text("serve_bad_identity_settings", lang, error=error.render(lang)), lang=lang)
    verifier = OidcVerifier(oidc) if oidc else None
    if oidc is None and not demo_login:
        typer.echo(text("serve_no_identity_provider", lang), err=True)
    if oidc is not None and portal is None:
        typer.echo(text("serve_no_portal_client", lang), err=True)
    ledger = Service(
        engine=engine,
        settings=get_settings(),
        oidc=oidc,
        verifier=verifier,
        demo_login=demo_login,
        portal=portal,
    )
    app = create_app(ledger)
    try:
        listener = listen(host, port)
    except OSError as error:
        # The reader's words for the usual three; the system's own otherwise.
        reason = LISTEN_REASONS.get(error.errno or 0)
        shown_error = text(reason, lang) if reason else (error.strerror or str(error))
        fail(text("cannot_listen", lang, address=f"{host}:{port}", error=shown_error), lang=lang)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{listener.getsockname()[1]}"
    typer.echo(text("serve_listening", lang, url=url))
    typer.echo(text("serve_portal", lang, url=url))
    if demo_login:
        typer.echo(text("serve_demo_login", lang, url=url))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    stop_cleanly_on_sigterm(server)
    tune_collector()
    with listener:
        server.run(sockets=[listener])
