"""The language of a command's human output, resolved the same way for every command."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from inventory.i18n import UnknownLanguage, resolve_lang, text
from inventory.settings import get_settings


class Lang(StrEnum):
    zh = "zh"
    en = "en"


LangOption = Annotated[
    Lang | None,
    typer.Option(
        "--lang",
        help="Language of the output (default: the global --lang, YIYUN_LANG, else the locale).",
    ),
]


def cli_lang(option: Lang | None = None) -> str:
    """zh or en: the command's --lang, else the global --lang or YIYUN_LANG, else the locale.

    A YIYUN_LANG that is neither ends the command with a usage error.
    """
    from commands.common import fail

    try:
        return resolve_lang(option.value if option else None, get_settings().lang)
    except UnknownLanguage as error:
        # The setting is what is wrong, so say so in the locale's language.
        fallback = resolve_lang(None, None)
        fail(text("unknown_lang_setting", fallback, value=error.value), lang=fallback)


def lang_or_locale() -> str:
    """The language in force, never failing: a wrong YIYUN_LANG falls back to the locale."""
    try:
        return resolve_lang(None, get_settings().lang)
    except UnknownLanguage:
        return resolve_lang(None, None)
