"""Refusals of the migration workflow as catalog keys, worded in the reader's language."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inventory.i18n import Wording, label


@dataclass(frozen=True)
class Labels:
    """Values of one kind (state, readiness, strategy) named in the reader's language."""

    kind: str
    values: tuple[str, ...]
    # With the stored value beside its name, so a reader knows what to type either way.
    with_codes: bool = True

    def render(self, lang: str) -> str:
        if lang == "en":
            # English readers see the codes they type.
            return ", ".join(self.values) or "-"
        names = [label(self.kind, v, lang) for v in self.values]
        if not self.with_codes:
            return "、".join(names) if lang != "en" else ", ".join(names)
        if lang == "en" or not names:
            return ", ".join(names) or "-"
        return "、".join(
            f"{n}（{v}）" if n != v else v for n, v in zip(names, self.values, strict=True)
        )


def labels(kind: str, values: Iterable[str]) -> Labels:
    return Labels(kind, tuple(values))


def one(kind: str, value: str | None) -> Labels:
    return Labels(kind, (value or "-",), with_codes=False)


class Refusal(Wording):
    """A request the migration rules refuse: a catalog key and its fields (Labels among them),
    worded in the reader's language by render(lang); str() is the English wording."""
