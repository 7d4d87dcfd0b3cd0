"""What a secret looks like, for the node file's check and the labels and tags a scan stores."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from itertools import pairwise
from typing import Any

# A key names a secret when, lowercased with "_", "-" and "." removed, it contains one of these.
SECRET_KEY_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "bearer",
    "accesskey",
    "privatekey",
    "apikey",
)
AWS_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:[^\s/@]*@")
# What a secret is replaced by wherever it would otherwise be kept or echoed.
REDACTED = "<redacted>"

# A key word followed by what it names: "password=…", "api_key: …", "Bearer …".
_ASSIGNED = re.compile(
    r"(?i)(?:pass(?:word|wd)|secret|token|credential|access[_-]?key|private[_-]?key|api[_-]?key)"
    r"\s*[:=]\s*\S|bearer\s+\S{8,}"
)
# Candidate tokens: runs of the base64 / base64url alphabet. Dots, colons and @ split them,
# so host names, ARNs and versions are looked at piece by piece. Shorter than 20 characters
# (ids and hashes left out), a name such as EduPortal2024Phase2 is as random as a key.
_MIN_LENGTH = 20
_TOKEN = re.compile(rf"[A-Za-z0-9+/=_-]{{{_MIN_LENGTH},}}")
# A piece between separators in one case with digits: a UUID part, a hash, an id, a suffix
# CloudFormation makes unique (MyStack-MyRole-1ABCDEFGHIJKL). Random, but no secret.
_ID_PIECE = re.compile(
    r"(?<![A-Za-z0-9])(?:(?=[a-z]*[0-9])[a-z0-9]{4,}|(?=[A-Z]*[0-9])[A-Z0-9]{4,})(?![A-Za-z0-9])"
)
# Measured on random base62/base64 tokens of 20–40 characters against ordinary label and tag
# values (names, versions, UUIDs, hashes, ids, dates, CamelCase words with digits): a random
# token keeps ≥ 0.8 of the entropy its length allows and changes character class (lower,
# upper, digit) between ≥ 0.42 of its neighbouring letters and digits; CamelCase names with
# digits change class less often (≤ 0.40), and ids, hashes and UUIDs are not mixed-case.
# Caught this way (3,000 random base62/base64 tokens per length): ~90–95 % at 20 characters,
# ~94–96 % at 24, ~97 % at 32, > 99 % at 40. A token without a digit is never caught: pinyin
# names such as JiangSuZhengWuYun look just like one. Shorter secrets are caught only by
# their key's name (db_password=…): the shape cannot tell them from names.
_MIN_ENTROPY_RATIO = 0.8
_MIN_CLASS_CHANGES = 0.42


def names_a_secret(key: str) -> bool:
    """Whether a key (a node-file key, a label or tag name) says it holds a credential."""
    squashed = re.sub(r"[-_.]", "", key.lower())
    return any(word in squashed for word in SECRET_KEY_WORDS)


def _class(character: str) -> int:
    if character.islower():
        return 0
    return 1 if character.isupper() else 2


def looks_random(token: str) -> bool:
    """Whether a token has the shape of a generated key: mixed case with digits, nearly as
    much entropy as its length allows, and no words in it."""
    # Joined to a name ("stack/MyStack/1e2d3c4b-5a6f…") an id would make it look random.
    token = _ID_PIECE.sub("", token)
    length = len(token)
    if length < _MIN_LENGTH or not (
        any(c.islower() for c in token)
        and any(c.isupper() for c in token)
        and any(c.isdigit() for c in token)
    ):
        return False
    counts = Counter(token).values()
    entropy = -sum(n / length * math.log2(n / length) for n in counts)
    ratio = entropy / math.log2(length)
    # Separators (- _ / + =) join words in names ("Standard_D16ads_v5"): only the letters
    # and digits between them say how often a token changes class.
    letters = [_class(c) for c in token if c.isalnum()]
    changes = sum(a != b for a, b in pairwise(letters))
    return ratio >= _MIN_ENTROPY_RATIO and changes / (len(letters) - 1) >= _MIN_CLASS_CHANGES


# An estate repeats a few label and tag pairs (app=nginx, env=production) on most of its rows,
# and a row's labels are checked twice (its tags and its raw): remember the answers.
@lru_cache(maxsize=65536)
def secret_shaped(key: str, value: str) -> bool:
    """Whether a label or tag value must not be stored: its key names a credential, or the
    value holds an access key id, a URL with a password, a key word with what it names, or a
    token as random as a generated key."""
    if not value:
        return False
    if names_a_secret(key) or AWS_ACCESS_KEY_ID.search(value):
        return True
    # The slower patterns only where what they look for can be.
    if "@" in value and URL_WITH_PASSWORD.search(value):
        return True
    if any(mark in value for mark in "=: \t") and _ASSIGNED.search(value):
        return True
    return any(looks_random(token) for token in _TOKEN.findall(value))


def redacted(key: str, value: str, *, keep: str | None = None) -> str:
    """The value as it may be stored: REDACTED when secret-shaped, unless `key` is `keep`
    (the system tag, which attribution reads)."""
    return REDACTED if key != keep and secret_shaped(key, value) else value


def redact_labels(labels: Mapping[str, Any], *, keep: str | None = None) -> dict[str, Any]:
    """The labels (or tags) with every secret-shaped value replaced by REDACTED."""
    return {
        key: redacted(key, value, keep=keep) if isinstance(value, str) else value
        for key, value in labels.items()
    }
