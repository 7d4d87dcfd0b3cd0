"""Chinese and English wording from gettext catalogs; JSON and CSV keys never pass through here."""

from __future__ import annotations

import gettext
import io
import os
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from types import MappingProxyType

LANGS = ("zh", "en")
# The province's own language: what a report falls back to when nothing says otherwise.
DEFAULT_LANG = "zh"

# The catalogs: gettext .po sources under inventory/locale/<lang>/LC_MESSAGES/<domain>.po,
# compiled to .mo at build (`make venv`, `python -m inventory.i18n`). A msgid is a
# message key ("report_title", "state.accepted"); the help domain's msgids are the English
# help texts themselves, so only its Chinese catalog exists.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# Domains whose msgid is the English wording: English needs no catalog for them.
SOURCE_LANGUAGE_DOMAINS = frozenset({"help"})

# Migration states (DOMAIN.md, "Migration practice") in the order the sequence runs; the
# first ten are the main sequence, the rest are exits from it.
STATE_ORDER: tuple[str, ...] = (
    "surveyed",
    "assessed",
    "planned",
    "provisioning",
    "migrating",
    "testing",
    "cutover",
    "trial_run",
    "accepted",
    "decommissioned",
    "on_hold",
    "rolled_back",
    "exempted",
    "cancelled",
)


class CatalogError(RuntimeError):
    """A catalog is missing, unreadable or defines a message twice."""


def catalog_sources(lang: str) -> list[Path]:
    """The .po sources of `lang`, one per domain, in a stable order."""
    return sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po"))


def compile_catalog(source: Path) -> bytes:
    """The .mo bytes of one .po source; fuzzy entries are skipped as gettext does."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with source.open("rb") as handle:
        catalog = read_po(handle, domain=source.stem)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def compile_catalogs() -> list[Path]:
    """Write every stale or missing .mo beside its .po; the build step. Returns what it wrote."""
    written = []
    for lang in LANGS:
        for source in catalog_sources(lang):
            target = source.with_suffix(".mo")
            if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
                continue
            target.write_bytes(compile_catalog(source))
            written.append(target)
    return written


def _compiled(source: Path) -> bytes:
    target = source.with_suffix(".mo")
    try:
        if target.stat().st_mtime >= source.stat().st_mtime:
            return target.read_bytes()
    except FileNotFoundError:
        pass
    # A checkout edited since the build (or a read-only install without .mo): compile in
    # memory rather than show stale wording.
    return compile_catalog(source)


@cache
def messages(lang: str) -> Mapping[str, str]:
    """Every message of `lang`: msgid → wording, merged over the domains."""
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    for source in catalog_sources(lang):
        translations = gettext.GNUTranslations(io.BytesIO(_compiled(source)))
        # The catalog's own mapping (msgid → msgstr); "" is the header.
        for msgid, msgstr in translations._catalog.items():  # type: ignore[attr-defined]
            if not isinstance(msgid, str) or not msgid:
                continue
            if msgid in merged:
                raise CatalogError(
                    f"message {msgid!r} is in both {origin[msgid]} and {source.name} ({lang})"
                )
            merged[msgid] = msgstr
            origin[msgid] = source.name
    return merged


class UnknownLanguage(ValueError):
    """A language other than zh or en was asked for."""

    def __init__(self, value: str) -> None:
        super().__init__(text("unknown_lang", "en", value=value))
        self.value = value


def text(key: str, /, lang: str, **values: object) -> str:
    """The wording of `key` in `lang`, with `{placeholders}` filled in.

    An unknown key is a KeyError, never the key shown to a reader: the catalog test lists
    every key the code asks for.
    """
    wording = messages(lang)[key]
    return wording.format(**values) if values else wording


class Wording(ValueError):
    """A message known by its catalog key and fields, worded when someone shows it.

    Raised where the reader's language is unknown (a pydantic validator, a parser): its str()
    is English, for logs and for code that only has str(); `render(lang)` words it for a
    person. A field may itself be a Wording ("region" inside "must list at least one …").
    """

    # Facts a caller may need beside the words (the state a lost race left, for a 409).
    problem_fields: Mapping[str, object] = MappingProxyType({})

    def __init__(self, key: str, /, **fields: object) -> None:
        self.key = key
        self.fields = fields
        super().__init__(self.render("en"))

    def render(self, lang: str) -> str:
        # A field that words itself (a Wording, migrate's Labels) is worded in `lang` too.
        values: dict[str, object] = {}
        for name, value in self.fields.items():
            render = getattr(value, "render", None)
            values[name] = render(lang) if callable(render) else value
        return text(self.key, lang, **values)

    def translations(self) -> tuple[tuple[str, str], ...]:
        return tuple((lang, self.render(lang)) for lang in LANGS)


def has_text(key: str, lang: str) -> bool:
    return key in messages(lang)


def help_text(english: str, lang: str) -> str:
    """A --help text in `lang`: the help domain's msgid is the English text itself."""
    if lang == "en":
        return english
    return messages(lang).get(english) or english


def label(kind: str, value: str, lang: str) -> str:
    """A value's name in tables and reports (`state.accepted` → 已验收); unknown shows as stored."""
    return messages(lang).get(f"{kind}.{value}", value)


def status_label(status: str, lang: str) -> str:
    return label("status", status, lang)


def state_label(state: str | None, lang: str) -> str:
    return "—" if state is None else label("state", state, lang)


def zone_label(zone: str | None, lang: str) -> str:
    return label("zone", zone or "unknown", lang)


def readiness_label(readiness: str | None, lang: str) -> str:
    return "—" if readiness is None else label("readiness", readiness, lang)


def lifecycle_label(lifecycle: str, lang: str) -> str:
    return label("lifecycle", lifecycle, lang)


def node_level_label(level: str, lang: str) -> str:
    return label("node_level", level, lang)


def _locale_lang(environ: Mapping[str, str]) -> str | None:
    """zh or en from the POSIX locale variables, in their order of precedence."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable, "")
        if not value:
            continue
        language = value.split(".")[0].split("_")[0].lower()
        if language in ("c", "posix"):
            # The C locale says nothing about the reader; keep looking, then the default.
            continue
        return "zh" if language == "zh" else "en"
    return None


def resolve_lang(
    explicit: str | None, configured: str | None, environ: Mapping[str, str] | None = None
) -> str:
    """The language in force: the option, else YIYUN_LANG, else the locale, else Chinese."""
    for choice in (explicit, configured):
        if choice:
            lang = choice.strip().lower().replace("-", "_").split("_")[0]
            if lang not in LANGS:
                raise UnknownLanguage(choice)
            return lang
    return _locale_lang(os.environ if environ is None else environ) or DEFAULT_LANG


def argv_lang(args: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The language of a run before its options are parsed (--help, Ctrl-C at start-up): a
    --lang in the arguments (global or the command's own, the last one), else YIYUN_LANG, else
    the locale, else zh. An unknown --lang falls back to the locale: Click refuses it itself."""
    explicit = None
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--lang" and index + 1 < len(args):
            explicit = args[index + 1]
        elif arg.startswith("--lang="):
            explicit = arg.removeprefix("--lang=")
    environ = os.environ if environ is None else environ
    try:
        return resolve_lang(explicit, environ.get("YIYUN_LANG"), environ)
    except UnknownLanguage:
        return resolve_lang(None, None, environ)


if __name__ == "__main__":
    # The build step: compile every .po whose .mo is missing or older.
    for path in compile_catalogs():
        print(f"compiled {path}")
