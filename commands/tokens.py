"""`yiyun tokens`: API tokens for automation, shown once when made, kept only as a hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from commands.common import fail, open_ledger
from commands.lang import cli_lang
from inventory.i18n import label, text
from inventory.output import Format, echo, render_rows

app = typer.Typer(
    help="API tokens for scripts and CI jobs: create (shown once), list, revoke.",
    no_args_is_help=True,
)

TOKEN_COLUMNS = (
    "token_id",
    "principal",
    "role",
    "scope",
    "status",
    "created_by",
    "created_at",
    "expires_at",
    "revoked_at",
    "revoked_by",
)
# What fits a terminal; JSON, CSV and Markdown carry every column.
TOKEN_TABLE_COLUMNS = ("token_id", "principal", "role", "scope", "status", "expires_at")


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _needs_by(by: str, lang: str) -> None:
    # The token is signed with --by beside the OS user: an empty one would sign nothing.
    if not by.strip():
        fail(text("adm_by_required", lang), lang=lang)


@app.command("create")
def create_command(
    principal: Annotated[
        str, typer.Option("--principal", help="Who the token acts as (recorded on every write).")
    ],
    role: Annotated[str, typer.Option("--role", help="viewer, department_it, planner or admin.")],
    scope: Annotated[
        str,
        typer.Option(
            "--scope", help="province, city:<city> or department:<code> (department:JS-EDU)."
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="Who makes the token (recorded).")],
    expires: Annotated[
        str, typer.Option("--expires", help="How long it lives: days or hours (90d, 12h; ≤ 366d).")
    ] = "90d",
) -> None:
    """Make an API token: printed once on stdout (only its hash is kept), how to use it on
    stderr. Store it now: it cannot be shown again."""
    from inventory.access import AccessError, Actor
    from inventory.db import session_scope
    from inventory.grants import create_token, parse_lifetime

    lang = cli_lang()
    _needs_by(by, lang)
    engine = open_ledger(lang)
    try:
        lifetime = parse_lifetime(expires)
        with session_scope(engine) as session:
            issued = create_token(
                session=session,
                actor=Actor.local(by),
                principal=principal,
                role=role,
                scope=scope,
                lifetime=lifetime,
                now=datetime.now(tz=UTC),
            )
            row = issued.row
            made = {
                "token_id": row.token_id,
                "principal": row.principal,
                "grant": f"{row.role}@{row.scope}",
                "expires": _moment(row.expires_at),
            }
    except AccessError as error:
        fail(error.render(lang), lang=lang)
    # The token alone on stdout, so `TOKEN=$(yiyun tokens create …)` keeps just the token.
    echo(issued.token)
    echo(text("adm_token_created", lang, **made), err=True)


@app.command("list")
def list_command(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """List API tokens and whether each still opens the API; never a secret or its hash."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from inventory.grants import list_tokens, token_status

    lang = cli_lang()
    engine = open_ledger(lang)
    now = datetime.now(tz=UTC)
    people = fmt in (Format.table, Format.md)
    with session_scope(engine) as session:
        tokens, _total = list_tokens(session=session, actor=Actor.local())
        rows = [
            {
                "token_id": t.token_id,
                "principal": t.principal,
                "role": t.role,
                "scope": t.scope,
                "status": (
                    label("token_status", token_status(t, now), lang)
                    if people
                    else token_status(t, now)
                ),
                "created_by": t.created_by,
                "created_at": _moment(t.created_at),
                "expires_at": _moment(t.expires_at),
                "revoked_at": _moment(t.revoked_at),
                "revoked_by": t.revoked_by,
            }
            for t in tokens
        ]
    columns = TOKEN_TABLE_COLUMNS if fmt is Format.table else TOKEN_COLUMNS
    render_rows(
        rows,
        columns,
        fmt,
        title=text("adm_tokens_title", lang),
        lang=lang if people else None,
        headings={c: text(f"adm_col_{c}", lang) for c in columns} if people else None,
    )


@app.command("revoke")
def revoke_command(
    token_id: Annotated[
        str,
        typer.Argument(
            help="The token's id (yiyun tokens list), not the token itself.",
            metavar="TOKEN_ID",
            show_default=False,
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="Who revokes it (recorded).")],
) -> None:
    """Revoke a token: from now on the API refuses it (401)."""
    from inventory.access import AccessError, Actor
    from inventory.db import session_scope
    from inventory.grants import revoke_token

    lang = cli_lang()
    _needs_by(by, lang)
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            row = revoke_token(
                session=session, actor=Actor.local(by), token_id=token_id, now=datetime.now(tz=UTC)
            )
            revoked = row.token_id
    except AccessError as error:
        fail(error.render(lang), lang=lang)
    echo(text("adm_token_revoked", lang, token_id=revoked))
