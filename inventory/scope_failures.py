"""What kind of failure a scope's error is, and how people read it: the kind and what to check."""

from __future__ import annotations

import re
from typing import Any

from inventory.i18n import label, text

# Failures yiyun words itself (their stored message is English for logs and JSON): people
# read them whole in their language, no stored detail after them.
OWN_CODES = frozenset({"missing_password", "sweep_held", "interrupted"})
_PASSWORD_VARIABLE = re.compile(r"environment variable (\S+) is not set")

# A library's message or code that says what went wrong below the HTTP answer.
_DNS = ("name or service not known", "name resolution", "nodename nor servname", "gaierror")
_TLS = ("certificate_verify_failed", "certificate verify failed", "sslerror", "ssl:")
_TIMEOUT = ("timed out", "timeout")
_CONNECTION = ("connection refused", "connectionerror", "failed to establish", "unreachable")


def scope_status_label(status: str, lang: str) -> str:
    """A scope's status (ok, partial, denied, …) in people's words; an unknown one as stored."""
    return label("scope_status", status, lang)


def failure_kind(status: str | None, code: str | None, message: str | None) -> str:
    """One of the kinds that have their own wording (`sf_kind.*`); `other` when none fits."""
    code = code or ""
    said = f"{code} {message or ''}".lower()
    if code in OWN_CODES:
        return code
    if code == "malformed_response":
        return "malformed"
    if code in ("cloud_config", "discovery_failed"):
        return "config"
    if status == "throttled" or code == "HTTP429":
        return "throttled"
    if status == "denied" or code in ("HTTP401", "HTTP403"):
        return "denied"
    # Name resolution and TLS first: their messages often carry "connection" too.
    if any(sign in said for sign in _DNS):
        return "dns"
    if code == "TLSError" or any(sign in said for sign in _TLS):
        return "tls"
    if any(sign in said for sign in _TIMEOUT):
        return "timeout"
    if any(sign in said for sign in _CONNECTION):
        return "connection"
    if code.startswith("HTTP5"):
        return "server"
    return "other"


def failure_wording(
    status: str | None,
    code: str | None,
    message: str | None,
    lang: str,
    row: dict[str, Any] | None = None,
) -> str:
    """A scope's failure as people read it: what kind of failure it is and what to check,
    then the source's own message as the detail (with its code when `code` is given; a
    table shows the code in a column of its own). Empty when the scope did not fail."""
    kind = failure_kind(status, code or (row or {}).get("error_code"), message)
    if not code and not message:
        return ""
    if kind == "missing_password":
        found = _PASSWORD_VARIABLE.search(message or "")
        return text("sf_missing_password", lang, variable=found.group(1) if found else "?")
    if kind == "sweep_held":
        held, node = (row or {}).get("held") or 0, (row or {}).get("node_id") or "?"
        return text("sf_sweep_held", lang, held=held, node=node)
    if kind == "interrupted":
        return text("sf_interrupted", lang)
    sentence = text(f"sf_kind.{kind}", lang)
    if not message:
        return sentence
    detail = text("sf_detail_code", lang, code=code, message=message) if code else message
    return text("sf_with_detail", lang, kind=sentence, detail=detail)
