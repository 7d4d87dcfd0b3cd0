"""The portal's admin pages: the register upload with its preview, access grants and API tokens."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from inventory.access import ROLES, AccessDenied
from inventory.audit import audit_entries
from inventory.grants import (
    create_token,
    grant_access,
    list_access,
    list_tokens,
    parse_lifetime,
    revoke_access,
    revoke_token,
    token_status,
)
from inventory.i18n import Wording, label, text
from inventory.registry import (
    COLUMNS_BY_FIELD,
    CSV_SUFFIXES,
    XLSX_SUFFIXES,
    ImportReport,
    diff_value,
    register_import,
)
from service.context import service
from service.portal.web import Listed, ReadingViewer, Viewer, WritingViewer, is_htmx, render
from service.routes.register import MAX_UPLOAD_MIB, RegisterUploadRefused

router = APIRouter(include_in_schema=False)
MAX_LIMIT = 100
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
# What the forms send: plain text, as the API's models take it.
Principal = Annotated[str, Form(max_length=200)]
RoleField = Annotated[str, Form(max_length=40)]
ScopeField = Annotated[str, Form(max_length=200)]
LIFETIMES = ("30d", "90d", "180d", "366d")
# Flash words after a redirect: only these keys are ever shown (never text from the URL).
DONE = frozenset({"granted", "revoked", "token_revoked", "applied"})

# An uploaded register waits here between its preview and its apply: a directory per upload
# under a random name, readable by this process only, gone after the apply or UPLOAD_TTL.
# Kept on the server (not resent by the browser) so the apply writes exactly the bytes
# previewed, checked by their SHA-256; a register holds no secrets, only the session's
# binding is stored, as a digest.
UPLOADS = Path(tempfile.gettempdir()) / "yiyun-portal-register"
UPLOAD_TTL = 30 * 60
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class UploadGone(Wording):
    """The previewed upload is no longer kept (applied, expired or another session's)."""


def require_admin(viewer: Viewer) -> None:
    if not (viewer.may("register") or viewer.may("access")):
        raise AccessDenied(
            "access_denied", principal=viewer.actor.principal, action="access", target="province"
        )


def done_key(done: str) -> str | None:
    return f"portal_admin_done_{done}" if done in DONE else None


@router.get("/admin")
def overview(request: Request, viewer: ReadingViewer) -> HTMLResponse:
    require_admin(viewer)
    return render(request, "admin/index.html", viewer=viewer)


# --- the register ----------------------------------------------------------------------------


def _owner(viewer: Viewer) -> str:
    # The session's binding: a digest of its CSRF token, which is the session's own secret.
    return hashlib.sha256(viewer.csrf.encode()).hexdigest()


def _sweep_uploads(now: float) -> None:
    """Remove uploads older than UPLOAD_TTL (their previews were never applied)."""
    if not UPLOADS.is_dir():
        return
    for folder in UPLOADS.iterdir():
        try:
            if now - folder.stat().st_mtime > UPLOAD_TTL:
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:  # another request removed it meanwhile
            continue


def _keep_upload(upload: UploadFile, viewer: Viewer) -> tuple[str, Path, str] | None:
    """The upload kept for its apply: (id, path, SHA-256), or None when past the size cap."""
    name = Path(upload.filename or "register").name
    suffix = Path(name).suffix.lower()
    if suffix not in CSV_SUFFIXES + XLSX_SUFFIXES:
        raise RegisterUploadRefused("register_upload_kind", file=name)
    _sweep_uploads(time.time())
    UPLOADS.mkdir(mode=0o700, exist_ok=True)
    upload_id = secrets.token_hex(16)
    folder = UPLOADS / upload_id
    folder.mkdir(mode=0o700)
    target = folder / f"register{suffix}"
    digest = hashlib.sha256()
    written = 0
    with target.open("wb") as stream:
        while chunk := upload.file.read(_CHUNK):
            written += len(chunk)
            if written > MAX_UPLOAD_MIB << 20:
                stream.close()
                shutil.rmtree(folder, ignore_errors=True)
                return None
            digest.update(chunk)
            stream.write(chunk)
    meta = {
        "owner": _owner(viewer),
        "name": name,
        "file": target.name,
        "sha256": digest.hexdigest(),
    }
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return upload_id, target, digest.hexdigest()


def _kept_upload(upload_id: str, sha256: str, viewer: Viewer) -> tuple[Path, str, Path]:
    """The kept upload's (path, file name, folder), when it is this session's, not expired and
    still the bytes previewed; UploadGone otherwise."""
    if not _UPLOAD_ID.match(upload_id) or not _SHA256.match(sha256):
        raise UploadGone("portal_admin_upload_gone")
    folder = UPLOADS / upload_id
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        fresh = time.time() - folder.stat().st_mtime <= UPLOAD_TTL
    except (FileNotFoundError, ValueError):
        raise UploadGone("portal_admin_upload_gone") from None
    path = folder / str(meta.get("file", ""))
    if not fresh or meta.get("owner") != _owner(viewer) or meta.get("sha256") != sha256:
        raise UploadGone("portal_admin_upload_gone")
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise UploadGone("portal_admin_upload_gone")
    return path, str(meta["name"]), folder


def diff_digest(report: ImportReport) -> str:
    """What a preview showed, as a digest: the apply refuses to write a different diff."""
    shown = {
        "added": [(s.code, s.name, s.department_code, s.city) for s in report.added],
        "changed": [
            (s.code, [(c.field, repr(c.before), repr(c.after)) for c in s.changes])
            for s in report.changed
        ],
        "counts": (report.withheld, report.departments_created, report.departments_updated),
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def _worded(note: str | Wording, lang: str) -> str:
    return note.render(lang) if isinstance(note, Wording) else note


def preview_view(report: ImportReport, lang: str) -> dict[str, Any]:
    """The dry run's diff and problems as the preview's tables show them."""
    chinese = lang == "zh"
    return {
        "rows": report.rows,
        "source": report.source,
        "added": report.added,
        "changed": [
            {
                "code": s.code,
                "name": s.name,
                "department_code": s.department_code,
                "changes": [
                    {
                        "column": COLUMNS_BY_FIELD[c.field].label(chinese),
                        "before": diff_value(c.before, lang),
                        "after": diff_value(c.after, lang),
                    }
                    for c in s.changes
                ],
            }
            for s in report.changed
        ],
        "unchanged": report.unchanged,
        "withheld": report.withheld,
        "departments_created": report.departments_created,
        "departments_updated": report.departments_updated,
        "not_in_file": report.not_in_file,
        "problems": [
            {
                "row": p.row,
                "column": p.column,
                "value": p.value,
                "reason": _worded(p.reason, lang),
            }
            for p in report.problems
        ],
        "warnings": [_worded(w, lang) for w in report.warnings],
        "changes": bool(
            report.added
            or report.changed
            or report.withheld
            or report.departments_created
            or report.departments_updated
        ),
    }


def _recent_imports(session: Session, viewer: Viewer) -> list[Any]:
    if not viewer.may("audit"):
        return []
    rows, _total = audit_entries(
        session=session, actor=viewer.actor, limit=5, action="register.import"
    )
    return rows


@router.get("/admin/register")
def register_page(request: Request, viewer: ReadingViewer, done: str = "") -> HTMLResponse:
    viewer.actor.require("register")
    with service(request).session() as session:
        recent = _recent_imports(session, viewer)
    return render(
        request,
        "admin/register.html",
        viewer=viewer,
        recent=recent,
        done=done_key(done),
        limit_mib=MAX_UPLOAD_MIB,
        error=None,
    )


def _preview(
    request: Request,
    viewer: Viewer,
    *,
    upload_id: str,
    name: str,
    sha256: str,
    report: ImportReport,
    note: str | None = None,
    status: int | None = None,
) -> HTMLResponse:
    shown = preview_view(report, viewer.lang)
    return render(
        request,
        "admin/register_preview.html",
        viewer=viewer,
        status=status or (422 if shown["problems"] else 200),
        upload_id=upload_id,
        file_name=name,
        sha256=sha256,
        diff=diff_digest(report),
        preview=shown,
        note=note,
    )


def _register_error(request: Request, viewer: Viewer, message: str, status: int) -> HTMLResponse:
    with service(request).session() as session:
        recent = _recent_imports(session, viewer)
    return render(
        request,
        "admin/register.html",
        viewer=viewer,
        status=status,
        recent=recent,
        done=None,
        limit_mib=MAX_UPLOAD_MIB,
        error=message,
    )


@router.post("/admin/register/preview")
def register_preview(request: Request, viewer: WritingViewer, file: UploadFile) -> HTMLResponse:
    viewer.actor.require("register")
    try:
        kept = _keep_upload(file, viewer)
    except Wording as refused:
        return _register_error(request, viewer, refused.render(viewer.lang), 422)
    name = Path(file.filename or "register").name
    if kept is None:
        worded = text("register_upload_too_large", viewer.lang, file=name, limit=MAX_UPLOAD_MIB)
        return _register_error(request, viewer, worded, 413)
    upload_id, path, sha256 = kept
    with service(request).session() as session:
        report = register_import(
            session=session, actor=viewer.actor, path=path, dry_run=True, file_name=name
        )
    if report.problems:
        # A file with problems is never applied: nothing of it is kept.
        shutil.rmtree(path.parent, ignore_errors=True)
        upload_id = ""
    return _preview(request, viewer, upload_id=upload_id, name=name, sha256=sha256, report=report)


@router.post("/admin/register/apply", response_model=None)
def register_apply(
    request: Request,
    viewer: WritingViewer,
    upload_id: Annotated[str, Form(max_length=64)],
    sha256: Annotated[str, Form(max_length=64)],
    diff: Annotated[str, Form(max_length=64)],
) -> Response:
    viewer.actor.require("register")
    try:
        path, name, folder = _kept_upload(upload_id, sha256, viewer)
    except UploadGone as gone:
        return _register_error(request, viewer, gone.render(viewer.lang), 409)
    with service(request).session() as session:
        # The ledger may have changed since the preview: apply only the diff that was shown.
        check = register_import(
            session=session, actor=viewer.actor, path=path, dry_run=True, file_name=name
        )
        if check.problems or diff_digest(check) != diff:
            note = text("portal_admin_register_changed_since", viewer.lang)
            return _preview(
                request,
                viewer,
                upload_id=upload_id if not check.problems else "",
                name=name,
                sha256=sha256,
                report=check,
                note=note,
                status=409,
            )
        register_import(
            session=session, actor=viewer.actor, path=path, dry_run=False, file_name=name
        )
    shutil.rmtree(folder, ignore_errors=True)
    return RedirectResponse("/admin/register?done=applied", status_code=303)


# --- access grants ---------------------------------------------------------------------------


def _grants_page(
    request: Request,
    viewer: Viewer,
    *,
    principal: str,
    offset: int,
    limit: int,
    done: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with service(request).session() as session:
        rows, total = list_access(
            session=session,
            actor=viewer.actor,
            principal=principal or None,
            offset=offset,
            limit=limit,
        )
        items = [
            {
                "principal": r.principal,
                "role": r.role,
                "scope": r.scope,
                "granted_by": r.granted_by,
                "granted_at": r.granted_at,
            }
            for r in rows
        ]
    return render(
        request,
        "admin/access.html",
        viewer=viewer,
        status=status,
        page=Listed(items, total, offset, limit),
        principal=principal,
        roles=ROLES,
        done=done,
        error=error,
        form=form or {"principal": "", "role": "viewer", "scope": ""},
    )


@router.get("/admin/access")
def access_page(
    request: Request,
    viewer: ReadingViewer,
    principal: Annotated[str, Query(max_length=200)] = "",
    offset: Offset = 0,
    limit: Limit = 50,
    done: str = "",
) -> HTMLResponse:
    return _grants_page(
        request, viewer, principal=principal, offset=offset, limit=limit, done=done_key(done)
    )


@router.post("/admin/access/grant", response_model=None)
def grant(
    request: Request,
    viewer: WritingViewer,
    principal: Principal,
    role: RoleField,
    scope: ScopeField,
) -> Response:
    try:
        with service(request).session() as session:
            grant_access(
                session=session,
                actor=viewer.actor,
                principal=principal,
                role=role,
                scope=scope,
                now=datetime.now(tz=UTC),
            )
    except Wording as refused:
        if isinstance(refused, AccessDenied):
            raise
        form = {"principal": principal, "role": role, "scope": scope}
        return _grants_page(
            request,
            viewer,
            principal="",
            offset=0,
            limit=50,
            error=refused.render(viewer.lang),
            form=form,
            status=409 if refused.key == "access_already_granted" else 422,
        )
    return RedirectResponse("/admin/access?done=granted", status_code=303)


@router.post("/admin/access/revoke", response_model=None)
def revoke(
    request: Request,
    viewer: WritingViewer,
    principal: Principal,
    role: RoleField,
    scope: ScopeField,
) -> Response:
    with service(request).session() as session:
        revoke_access(
            session=session,
            actor=viewer.actor,
            principal=principal,
            role=role,
            scope=scope,
            now=datetime.now(tz=UTC),
        )
    if is_htmx(request):
        return render(
            request, "admin/_revoked_row.html", viewer=viewer, principal=principal, columns=6
        )
    return RedirectResponse("/admin/access?done=revoked", status_code=303)


# --- API tokens ------------------------------------------------------------------------------


def _tokens_page(
    request: Request,
    viewer: Viewer,
    *,
    offset: int,
    limit: int,
    done: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = datetime.now(tz=UTC)
    with service(request).session() as session:
        rows, total = list_tokens(session=session, actor=viewer.actor, offset=offset, limit=limit)
        # Named columns only: the row also holds the secret's digest, which no page shows.
        items = [
            {
                "token_id": r.token_id,
                "principal": r.principal,
                "role": r.role,
                "scope": r.scope,
                "status": token_status(r, now),
                "status_label": label("token_status", token_status(r, now), viewer.lang),
                "created_by": r.created_by,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
                "revoked_at": r.revoked_at,
            }
            for r in rows
        ]
    return render(
        request,
        "admin/tokens.html",
        viewer=viewer,
        status=status,
        page=Listed(items, total, offset, limit),
        roles=ROLES,
        lifetimes=LIFETIMES,
        done=done,
        error=error,
        form=form or {"principal": "", "role": "viewer", "scope": "", "expires": "90d"},
    )


@router.get("/admin/tokens")
def tokens_page(
    request: Request,
    viewer: ReadingViewer,
    offset: Offset = 0,
    limit: Limit = 50,
    done: str = "",
) -> HTMLResponse:
    return _tokens_page(request, viewer, offset=offset, limit=limit, done=done_key(done))


@router.post("/admin/tokens", response_model=None)
def issue_token(
    request: Request,
    viewer: WritingViewer,
    principal: Principal,
    role: RoleField,
    scope: ScopeField,
    expires: Annotated[str, Form(max_length=10)] = "90d",
) -> Response:
    now = datetime.now(tz=UTC)
    try:
        with service(request).session() as session:
            issued = create_token(
                session=session,
                actor=viewer.actor,
                principal=principal,
                role=role,
                scope=scope,
                lifetime=parse_lifetime(expires),
                now=now,
            )
            row = issued.row
            shown = {
                "token_id": row.token_id,
                "principal": row.principal,
                "role": row.role,
                "scope": row.scope,
                "expires_at": row.expires_at,
            }
    except Wording as refused:
        if isinstance(refused, AccessDenied):
            raise
        form = {"principal": principal, "role": role, "scope": scope, "expires": expires}
        return _tokens_page(
            request,
            viewer,
            offset=0,
            limit=50,
            error=refused.render(viewer.lang),
            form=form,
            status=422,
        )
    # Not a redirect: this answer is the only place the token is ever shown (no-store).
    return render(
        request, "admin/token_issued.html", viewer=viewer, token=issued.token, issued=shown
    )


@router.post("/admin/tokens/{token_id}/revoke", response_model=None)
def withdraw_token(
    request: Request, viewer: WritingViewer, token_id: Annotated[str, PathParam(max_length=200)]
) -> Response:
    with service(request).session() as session:
        revoke_token(
            session=session, actor=viewer.actor, token_id=token_id, now=datetime.now(tz=UTC)
        )
    return RedirectResponse("/admin/tokens?done=token_revoked", status_code=303)
