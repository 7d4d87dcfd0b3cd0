"""`yiyun serve`: the HTTP API on uvicorn, over the same use cases as the command line."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from commands.common import fail, open_ledger
from commands.lang import cli_lang


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

    from inventory.i18n import text
    from inventory.settings import get_settings
    from service.app import create_app
    from service.context import Service, is_loopback
    from service.identity import OidcSettings, OidcVerifier

    lang = cli_lang()
    if demo_login and not is_loopback(host):
        fail(text("serve_demo_not_loopback", lang, host=host), lang=lang)
    engine = open_ledger(lang)
    oidc = OidcSettings.from_env(os.environ)
    verifier = OidcVerifier(oidc) if oidc else None
    if oidc is None and not demo_login:
        typer.echo(text("serve_no_identity_provider", lang), err=True)
    ledger = Service(
        engine=engine, settings=get_settings(), oidc=oidc, verifier=verifier, demo_login=demo_login
    )
    app = create_app(ledger)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(text("serve_listening", lang, url=f"http://{shown}:{port}"))
    if demo_login:
        typer.echo(text("serve_demo_login", lang, url=f"http://{shown}:{port}"))
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except OSError as error:
        fail(text("cannot_listen", lang, address=f"{host}:{port}", error=error.strerror or error))
    if not server.started:
        fail(text("cannot_listen", lang, address=f"{host}:{port}", error="-"), lang=lang)
