"""`yiyun access`: who may do what (grants of a role over a scope), and the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from commands.common import fail, open_ledger
from commands.disclosure import IncludeClassifiedOption, disclosure_for, note_withheld
from commands.lang import cli_lang
from inventory.i18n import text
from inventory.output import Format, echo, render_rows

app = typer.Typer(
    help="Access: grant and revoke roles over scopes for principals, list them, read the audit.",
    no_args_is_help=True,
)

PrincipalArgument = Annotated[
    str,
    typer.Argument(
        help="Who: the identity provider's subject, or the name an API token was made for.",
        metavar="PRINCIPAL",
        show_default=False,
    ),
]
RoleArgument = Annotated[
    str,
    typer.Argument(
        help="viewer, department_it, planner or admin.", metavar="ROLE", show_default=False
    ),
]
ScopeArgument = Annotated[
    str,
    typer.Argument(
        help="province, city:<city> (city:南京市) or department:<code> (department:JS-EDU).",
        metavar="SCOPE",
        show_default=False,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
GRANT_COLUMNS = ("principal", "role", "scope", "granted_by", "granted_at")
AUDIT_COLUMNS = (
    "id",
    "at",
    "principal",
    "principal_kind",
    "by",
    "request_id",
    "action",
    "target",
    "before",
    "after",
)
# What fits a terminal; JSON, CSV and Markdown carry every column.
AUDIT_TABLE_COLUMNS = ("at", "principal", "by", "action", "target", "request_id")


def _headings(columns: tuple[str, ...], lang: str) -> dict[str, str]:
    return {column: text(f"adm_col_{column}", lang) for column in columns}


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _needs_by(by: str, lang: str) -> None:
    # Grants are signed with --by beside the OS user: an empty one would sign nothing.
    if not by.strip():
        fail(text("adm_by_required", lang), lang=lang)


@app.command("grant")
def grant_command(
    principal: PrincipalArgument,
    role: RoleArgument,
    scope: ScopeArgument,
    by: Annotated[str, typer.Option("--by", help="Who gives the grant (recorded).")],
) -> None:
    """Give a principal a role over a scope (API tokens and identity-provider users alike)."""
    from inventory.access import AccessError, Actor
    from inventory.db import session_scope
    from inventory.grants import grant_access

    lang = cli_lang()
    _needs_by(by, lang)
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            row = grant_access(
                session=session,
                actor=Actor.local(by),
                principal=principal,
                role=role,
                scope=scope,
                now=datetime.now(tz=UTC),
            )
            held = (row.principal, f"{row.role}@{row.scope}")
    except AccessError as error:
        fail(error.render(lang), lang=lang)
    echo(text("adm_granted", lang, principal=held[0], grant=held[1]))


@app.command("revoke")
def revoke_command(
    principal: PrincipalArgument,
    role: RoleArgument,
    scope: ScopeArgument,
    by: Annotated[str, typer.Option("--by", help="Who takes the grant away (recorded).")],
) -> None:
    """Take a grant away; the principal's API tokens keep their own role and scope (revoke
    them with `yiyun tokens revoke`)."""
    from inventory.access import AccessError, Actor, Grant
    from inventory.db import session_scope
    from inventory.grants import revoke_access

    lang = cli_lang()
    _needs_by(by, lang)
    engine = open_ledger(lang)
    try:
        with session_scope(engine) as session:
            revoke_access(
                session=session,
                actor=Actor.local(by),
                principal=principal,
                role=role,
                scope=scope,
                now=datetime.now(tz=UTC),
            )
        grant = str(Grant.parse(role, scope))
    except AccessError as error:
        fail(error.render(lang), lang=lang)
    echo(text("adm_revoked", lang, principal=principal.strip(), grant=grant))


@app.command("list")
def list_command(
    principal: Annotated[
        str | None, typer.Option("--principal", help="Only this principal's grants.")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List the grants held in the ledger, by principal (grants mapped from the identity
    provider's claims are not stored, so not listed)."""
    from inventory.access import Actor
    from inventory.db import session_scope
    from inventory.grants import list_access

    lang = cli_lang()
    engine = open_ledger(lang)
    with session_scope(engine) as session:
        grants, _total = list_access(session=session, actor=Actor.local(), principal=principal)
        rows = [
            {
                "principal": g.principal,
                "role": g.role,
                "scope": g.scope,
                "granted_by": g.granted_by,
                "granted_at": _moment(g.granted_at),
            }
            for g in grants
        ]
    people = fmt in (Format.table, Format.md)
    render_rows(
        rows,
        GRANT_COLUMNS,
        fmt,
        title=text("adm_grants_title", lang),
        lang=lang if people else None,
        headings=_headings(GRANT_COLUMNS, lang) if people else None,
    )


@app.command("audit")
def audit_command(
    principal: Annotated[
        str | None, typer.Option("--principal", help="Only this principal.")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action (advance: migration.advance).")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Only this target (a system code, a token id).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=500, help="How many entries, newest first.")
    ] = 50,
    fmt: FormatOption = Format.table,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Read the audit log, newest first: every write, by whom as proved, with before and after."""
    from inventory.access import Actor
    from inventory.audit import audit_entries
    from inventory.db import session_scope

    lang = cli_lang()
    engine = open_ledger(lang)
    disclosure = disclosure_for(include_classified)
    with session_scope(engine) as session:
        entries, _total = audit_entries(
            session=session,
            actor=Actor.local(),
            limit=limit,
            principal=principal,
            action=action,
            target=target,
            disclosure=disclosure,
        )
        rows: list[dict[str, Any]] = [
            {
                "id": e.id,
                "at": _moment(e.at),
                "principal": e.principal,
                "principal_kind": e.principal_kind,
                "by": e.by,
                "request_id": e.request_id,
                "action": e.action,
                "target": e.target,
                "before": e.before,
                "after": e.after,
            }
            for e in entries
        ]
    if fmt is not Format.json:
        # One cell each: the values as JSON text, not Python's repr of a dict.
        for row in rows:
            for side in ("before", "after"):
                if row[side] is not None:
                    row[side] = json.dumps(row[side], ensure_ascii=False, sort_keys=True)
    columns = AUDIT_TABLE_COLUMNS if fmt is Format.table else AUDIT_COLUMNS
    people = fmt in (Format.table, Format.md)
    render_rows(
        rows,
        columns,
        fmt,
        title=text("adm_audit_title", lang),
        lang=lang if people else None,
        headings=_headings(columns, lang) if people else None,
    )
    note_withheld(disclosure, lang)
