"""Planner and import messages as catalog keys with fields: English text that words itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from inventory.i18n import label, text

# How a list of phrases is joined, per language: clauses ("a; b") and items ("a, b").
_SEPARATORS = {
    "clause": {"zh": "；", "en": "; "},
    "item": {"zh": "、", "en": ", "},
    "slash": {"zh": " / ", "en": " / "},
}


def _render(value: Any, lang: str) -> Any:
    render = getattr(value, "render", None)
    return render(lang) if callable(render) else value


class Phrase(str):
    """A message known by its catalog key and fields. As a str it is the English wording (what
    JSON, CSV and the stored explanation keep); render(lang) words it for a reader, and
    as_dict() keeps it, so a stored explanation can be worded again later."""

    key: str
    fields: dict[str, Any]

    def __new__(cls, key: str, /, **fields: Any) -> Phrase:
        english = text(key, "en", **{n: _render(v, "en") for n, v in fields.items()})
        phrase = super().__new__(cls, english)
        phrase.key, phrase.fields = key, fields
        return phrase

    def render(self, lang: str) -> str:
        return text(self.key, lang, **{n: _render(v, lang) for n, v in self.fields.items()})

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "fields": {n: _encode(v) for n, v in self.fields.items()}}


class Joined(str):
    """Phrases joined as clauses or items, in each language's punctuation."""

    items: tuple[Any, ...]
    kind: str

    def __new__(cls, items: Iterable[Any], kind: str = "clause") -> Joined:
        parts = tuple(items)
        joined = super().__new__(cls, _SEPARATORS[kind]["en"].join(str(p) for p in parts))
        joined.items, joined.kind = parts, kind
        return joined

    def render(self, lang: str) -> str:
        return _SEPARATORS[self.kind][lang].join(str(_render(p, lang)) for p in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"join": self.kind, "items": [_encode(p) for p in self.items]}


class Label(str):
    """A stored value (readiness, strategy, state, phase) named in the reader's language."""

    kind: str

    def __new__(cls, kind: str, value: str | None) -> Label:
        named = super().__new__(cls, value or "none")
        named.kind = kind
        return named

    def render(self, lang: str) -> str:
        return str(self) if lang == "en" else label(self.kind, str(self), lang)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.kind, "value": str(self)}


def _encode(value: Any) -> Any:
    as_dict = getattr(value, "as_dict", None)
    return as_dict() if callable(as_dict) else value


def decode(stored: Any) -> Any:
    """A Phrase, Joined or Label back from as_dict(); anything else as it is."""
    if not isinstance(stored, Mapping):
        return stored
    if "key" in stored:
        fields = {n: decode(v) for n, v in (stored.get("fields") or {}).items()}
        return Phrase(str(stored["key"]), **fields)
    if "join" in stored:
        return Joined((decode(p) for p in stored.get("items") or ()), str(stored["join"]))
    if "label" in stored:
        return Label(str(stored["label"]), stored.get("value"))
    if "fired" in stored:
        # Imported here: migrate.reasons words rules with the classes above.
        from migrate.reasons import FiredRule

        return FiredRule(stored["fired"], stored.get("node"))
    return stored


def worded(stored_text: str, stored: Any, lang: str) -> str:
    """`stored_text` in `lang` from its kept wording; the stored text itself when there is no
    wording, it no longer decodes (a key renamed since), or it says something else (the text
    was changed without it)."""
    if stored is None:
        return stored_text
    try:
        phrase = decode(stored)
        if str(phrase) != stored_text:
            return stored_text
        return str(_render(phrase, lang))
    except (KeyError, IndexError, ValueError, TypeError):
        return stored_text
