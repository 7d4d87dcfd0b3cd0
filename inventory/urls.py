"""URLs as yiyun may show them: passwords and credential-shaped query parameters masked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus

MASK = "***"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# One host with an optional port ([IPv6] or a name), as the authority of a URL holds it; libpq
# lists several (h1:5432,h2:5433).
_HOST_PORT = r"(?:\[[^\]/?#@\s]*\]|[^/?#@:,\[\]\s]*)(?::[0-9]*)?"
_HOSTS = re.compile(rf"{_HOST_PORT}(?:,{_HOST_PORT})*(?=[/?#]|$)")
# A URL inside free text (a log line, a driver's error): up to a space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")

# A query parameter is a credential when its name, lowercased without "-", "_" and ".",
# contains one of these words (X-Amz-Security-Token, access_token, sslpassword, X-Amz-Signature,
# X-Amz-Credential, AWSAccessKeyId, client_secret, …) or is one of the short names after them.
_SECRET_PARAMETER_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "signature",
    "credential",
    "apikey",
    "accesskey",
    "privatekey",
    "sessionkey",
    "authorization",
)
_SECRET_PARAMETER_NAMES = frozenset({"key", "sig", "pass", "pw", "auth"})


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter of this name carries a credential."""
    squashed = re.sub(r"[-_.\s]", "", unquote_plus(name).lower())
    return squashed in _SECRET_PARAMETER_NAMES or any(
        word in squashed for word in _SECRET_PARAMETER_WORDS
    )


@dataclass(frozen=True)
class _Parts:
    """Where the pieces of a URL sit: each a (start, end) span of the text, or None."""

    user: tuple[int, int] | None
    password: tuple[int, int] | None
    # From the host on: host, port, path, query and fragment.
    rest_start: int


class _Unparsable(ValueError):
    """A URL whose user part cannot be told from its host: masked whole, never shown."""


def _userinfo_end(url: str, start: int) -> int | None:
    """Where the "@" that ends the user name and password is, or None for a URL without one.

    A host never holds "@", a password may hold any character unencoded ("@", "/", "?", "#":
    SQLAlchemy reads all of them as part of it). So the user part ends at the last "@" that a
    host follows, unless what precedes that "@" reads as a query (?name=…@…). Choosing the
    last one may mask a path holding "@" along with the password; it never shows a password.
    """
    rest = url[start:]
    for match in reversed(list(re.finditer("@", rest))):
        before = rest[: match.start()]
        question = before.find("?")
        if question >= 0 and "=" in before[question:]:
            continue
        if _HOSTS.match(rest, match.end()):
            return start + match.start()
    if _HOSTS.fullmatch(re.split(r"[/?#]", rest, maxsplit=1)[0]):
        return None
    # No host and port where they belong ("u:pa?x=y@h", "h:port?"): what is where is a guess.
    raise _Unparsable(url)


def _parts(url: str) -> _Parts | None:
    """The URL's pieces, or None for text that is no URL (no scheme)."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None
    start = scheme.end()
    if not url.startswith("//", start):
        if "@" in url:
            raise _Unparsable(url)  # "postgres:pw@host/db", the "//" forgotten
        return _Parts(None, None, start)  # sqlite:relative.db
    start += 2
    at = _userinfo_end(url, start)
    if at is None:
        return _Parts(None, None, start)
    colon = url.find(":", start, at)
    if colon < 0:
        return _Parts((start, at), None, at + 1)
    return _Parts((start, colon), (colon + 1, at), at + 1)


def _query_spans(url: str, start: int) -> list[tuple[str, tuple[int, int]]]:
    """(name, span of the value) of each name=value in the query and the fragment."""
    question = url.find("?", start)
    hash_ = url.find("#", start)
    pieces = []
    if question >= 0 and (hash_ < 0 or question < hash_):
        pieces.append((question + 1, hash_ if hash_ >= 0 else len(url)))
    if hash_ >= 0:
        pieces.append((hash_ + 1, len(url)))  # #access_token=… of an OAuth redirect
    spans = []
    for begin, end in pieces:
        position = begin
        for pair in re.split(r"[&;]", url[begin:end]):
            name, equals, _ = pair.partition("=")
            if equals:
                value_start = position + len(name) + 1
                spans.append((name, (value_start, position + len(pair))))
            position += len(pair) + 1
    return spans


def _secret_spans(url: str, parts: _Parts) -> list[tuple[int, int]]:
    spans = [parts.password] if parts.password else []
    spans += [
        span for name, span in _query_spans(url, parts.rest_start) if is_secret_parameter(name)
    ]
    return spans


def mask_url(url: str) -> str:
    """The URL as it may be printed or logged: the password (also one holding an unencoded
    "@") and every credential-shaped query parameter replaced by ***, the user, host, port,
    path and other parameters kept. Text that is no URL is masked whole. Never raises."""
    try:
        parts = _parts(url)
        if parts is None:
            return MASK
        if not any(mark in url for mark in "@?#"):
            return url  # no user part, query or fragment: nothing to mask
        masked = url
        for start, end in sorted(_secret_spans(url, parts), reverse=True):
            masked = masked[:start] + MASK + masked[end:]
        return masked
    except Exception:  # the edge: a URL that defeats the parser is never printed
        return MASK


def encode_password_at(url: str) -> str:
    """The URL with each "@" of its password written %40: the same URL to a parser that takes
    the last "@" as the end of the password, and now also to one that takes the first."""
    try:
        parts = _parts(url)
    except _Unparsable:
        return url
    if parts is None or parts.password is None:
        return url
    start, end = parts.password
    return url[:start] + url[start:end].replace("@", "%40") + url[end:]


@dataclass(frozen=True)
class UrlCredentials:
    """The parts of a URL that carry credentials, named without their values."""

    user: bool = False
    password: bool = False
    # Names of the query (or fragment) parameters that carry one, in order.
    parameters: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.user or self.password or bool(self.parameters)


def url_credentials(url: str) -> UrlCredentials:
    """Which parts of a URL carry credentials: a user name, a password, query parameters.
    A URL whose user part cannot be told from its host counts as carrying a password."""
    try:
        parts = _parts(url)
    except _Unparsable:
        # Without an "@" it has no user part, whatever else is wrong with it.
        return UrlCredentials(user=True, password=True) if "@" in url else UrlCredentials()
    if parts is None:
        return UrlCredentials()
    names = [
        unquote_plus(name)
        for name, _ in _query_spans(url, parts.rest_start)
        if is_secret_parameter(name)
    ]
    return UrlCredentials(
        user=parts.user is not None, password=parts.password is not None, parameters=tuple(names)
    )


def credentials_in_text(text: str) -> UrlCredentials:
    """Which credential-carrying parts the URLs in a piece of text have, all of them together."""
    found = [url_credentials(match.group()) for match in _URL_IN_TEXT.finditer(text)]
    return UrlCredentials(
        user=any(each.user for each in found),
        password=any(each.password for each in found),
        parameters=tuple(name for each in found for name in each.parameters),
    )


def url_secrets(url: str) -> list[str]:
    """The secret values a URL holds, as written and decoded: what must never be printed."""
    try:
        parts = _parts(url)
    except _Unparsable:
        return []
    if parts is None:
        return []
    found: set[str] = set()
    for start, end in _secret_spans(url, parts):
        value = url[start:end]
        found |= {value, unquote(value), unquote_plus(value), quote(unquote(value), safe="")}
    return sorted((value for value in found if value), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` (a driver's error, say) with every secret of `url` and the URL itself masked."""
    for secret in url_secrets(url):
        text = text.replace(secret, MASK)
    return mask_urls_in(text)


def mask_urls_in(text: str) -> str:
    """Free text with every URL in it masked as mask_url masks one."""
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group()), text)
