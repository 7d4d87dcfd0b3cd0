"""Logging set-up that never lets a credential reach a log line."""

from __future__ import annotations

import logging
import re

from inventory.urls import mask_urls_in

# Values that look like credentials in URLs, headers or key=value text.
_SECRET_PATTERNS = [
    # After the URLs are masked whole: a password the URL match stopped short of (a quote in
    # it) up to the last "@" of the word; one already masked is left as it is.
    re.compile(r"(?i)(://[^:/@\s]+:)(?!\*\*\*@)(\S+)(@)"),
    # Before the key: value rule, which would take the scheme word of "Authorization: Bearer
    # <token>" for the secret and leave the token itself behind.
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9._~+/=-]+)"),
    re.compile(
        r"(?i)((?:password|passwd|secret|token|authorization|credential|aws_secret_access_key|"
        r"aws_session_token|x-amz-security-token|signature|api[_-]?key)[\"']?\s*[:=]\s*b?)"
        # A quoted value (libpq's password='a b') to its closing quote, else to a separator.
        r"(\"[^\"\n]*\"?|'[^'\n]*'?|[^\s,\"'&]+)"
    ),
]


def redact(text: str) -> str:
    """Replace anything that looks like a secret with ***: URLs masked as inventory.urls
    masks them, then credentials in headers and key=value text."""
    text = mask_urls_in(text)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(
            lambda m: m.group(1) + "***" + (m.group(3) if m.lastindex == 3 else ""), text
        )
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: int) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.DEBUG))
    # Library chatter stays at WARNING up to -vv and reaches INFO only at -vvv; never DEBUG,
    # whose wire dumps (botocore, urllib3) carry signed headers.
    for noisy in ("botocore", "boto3", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(
            logging.INFO if level < logging.DEBUG else logging.WARNING
        )
    # keystoneauth warns on every failed version discovery of an endpoint that is down; the
    # scope's own failure line says it once, so their warnings wait for -v.
    for chatty in ("keystoneauth", "openstack", "stevedore"):
        logging.getLogger(chatty).setLevel(
            logging.INFO if level < logging.DEBUG else
            logging.WARNING if level <= logging.INFO else logging.ERROR
        )  # fmt: skip
