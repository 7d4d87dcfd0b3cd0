"""A command option typed as a stored code or as its Chinese or English name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from inventory.i18n import LANGS, label, text


def _lang() -> str:
    # The reader's language as the command resolves it; a bad setting is reported elsewhere.
    from commands.lang import cli_lang

    try:
        return cli_lang()
    except click.exceptions.Exit:  # pragma: no cover - an unknown YIYUN_LANG
        return "en"


def _folded(value: str) -> str:
    return value.strip().casefold().replace("-", "_").replace(" ", "_")


class LabelledChoice(click.ParamType):
    """One of `values` (stored codes such as `accepted`), also accepted as its name in the
    catalog (`state.accepted` → 已验收, accepted): `--to 已验收` and `--to accepted` mean the
    same. The value passed on is always the code; help and errors list the choices."""

    def __init__(self, kind: str, values: Sequence[str]) -> None:
        self.kind = kind
        self.values = tuple(values)
        self.name = kind

    def aliases(self) -> dict[str, str]:
        """Every spelling a person may type (folded) → its code."""
        found: dict[str, str] = {}
        for value in self.values:
            found[_folded(value)] = value
            for lang in LANGS:
                found.setdefault(_folded(label(self.kind, value, lang)), value)
        return found

    def choices_text(self, lang: str) -> str:
        """The choices as a reader sees them: codes, with their names in Chinese."""
        if lang == "en":
            return ", ".join(self.values)
        return "、".join(
            f"{value}（{label(self.kind, value, lang)}）"
            if label(self.kind, value, lang) != value
            else value
            for value in self.values
        )

    @property
    def metavar(self) -> str:
        return "[" + "|".join(self.values) + "]"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.metavar

    def parse(self, value: Any) -> str:
        """As a Typer `parser=`: the code, or a ValueError naming the choices (which click
        turns into a usage error for the option)."""
        try:
            return self.convert(value, None, None)
        except click.BadParameter as error:
            raise ValueError(error.message) from None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value in self.values:
            return str(value)
        code = self.aliases().get(_folded(str(value)))
        if code is not None:
            return code
        lang = _lang()
        self.fail(
            text("choice_invalid", lang, value=value, choices=self.choices_text(lang)), param, ctx
        )

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(v) for v in self.values if v.startswith(incomplete)]

    def __repr__(self) -> str:
        return f"LabelledChoice({self.kind!r}, {self.values!r})"
