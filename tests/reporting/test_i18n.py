"""Report wording: language resolution and complete translations."""

from __future__ import annotations

import ast
import functools
import gettext
import io
import re
import string
from collections import Counter
from pathlib import Path

import pytest

from inventory import i18n
from inventory.adoption import STATUSES


@pytest.mark.parametrize(
    ("explicit", "configured", "environ", "expected"),
    [
        ("en", "zh", {"LANG": "zh_CN.UTF-8"}, "en"),  # the option wins
        (None, "en", {"LANG": "zh_CN.UTF-8"}, "en"),  # then YIYUN_LANG
        (None, "zh-CN", {}, "zh"),
        (None, None, {"LANG": "en_US.UTF-8"}, "en"),  # then the locale
        (None, None, {"LC_ALL": "zh_CN.GB18030", "LANG": "en_US.UTF-8"}, "zh"),
        (None, None, {"LC_ALL": "C.UTF-8", "LANG": "en_GB.UTF-8"}, "en"),
        (None, None, {"LANG": "C"}, "zh"),  # the C locale says nothing: the province's language
        (None, None, {}, "zh"),
    ],
)
def test_language_comes_from_option_setting_then_locale(
    explicit: str | None, configured: str | None, environ: dict[str, str], expected: str
) -> None:
    assert i18n.resolve_lang(explicit, configured, environ) == expected


def test_unknown_language_is_refused() -> None:
    with pytest.raises(i18n.UnknownLanguage, match="use zh or en"):
        i18n.resolve_lang(None, "fr", {})


def _fields(wording: str) -> set[tuple[str, str | None, str]]:
    # name, conversion (!r) and format spec: {value!r} in one language and {value} in the
    # other would quote a value in one and not the other.
    return {
        (name, conversion, spec or "")
        for _, name, spec, conversion in string.Formatter().parse(wording)
        if name is not None
    }


def _domains(lang: str) -> set[str]:
    return {path.stem for path in i18n.catalog_sources(lang)}


def test_every_message_exists_in_both_languages() -> None:
    # A key catalog (msgid = key) must exist in both languages with the same keys; the help
    # domain's msgids are English already, so only its Chinese catalog exists.
    assert _domains("zh") - i18n.SOURCE_LANGUAGE_DOMAINS == _domains("en")
    zh, en = i18n.messages("zh"), i18n.messages("en")
    keyed = {key for key in zh if key in en or not _is_help(key)}
    assert sorted(keyed - set(en)) == [], "missing in English"
    assert sorted(set(en) - set(zh)) == [], "missing in Chinese"
    for key in keyed:
        assert zh[key].strip() and en[key].strip(), key
    assert {f"status.{status}" for status in STATUSES} <= set(zh)
    assert {f"state.{state}" for state in i18n.STATE_ORDER} <= set(zh)


def _is_help(msgid: str) -> bool:
    return msgid in _help_msgids()


@functools.cache
def _help_msgids() -> frozenset[str]:
    from babel.messages.pofile import read_po

    msgids: set[str] = set()
    for source in i18n.catalog_sources("zh"):
        if source.stem in i18n.SOURCE_LANGUAGE_DOMAINS:
            with source.open("rb") as handle:
                msgids |= {str(m.id) for m in read_po(handle) if m.id}
    return frozenset(msgids)


def test_placeholders_are_filled_alike_in_both_languages() -> None:
    zh, en = i18n.messages("zh"), i18n.messages("en")
    for key, wording in zh.items():
        source = en.get(key, key if _is_help(key) else None)
        assert source is not None, key
        assert _fields(wording) == _fields(source), key


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_no_catalog_entry_is_fuzzy_untranslated_or_written_twice(lang: str) -> None:
    from babel.messages.pofile import read_po

    for source in i18n.catalog_sources(lang):
        raw = source.read_text(encoding="utf-8")
        # read_po keeps the last of two equal msgids: count them in the text itself.
        ids = re.findall(r'^msgid "(.+)"$', raw, flags=re.MULTILINE)
        assert [k for k, n in Counter(ids).items() if n > 1] == [], source
        with source.open("rb") as handle:
            catalog = read_po(handle)
        for message in catalog:
            if not message.id:
                continue
            assert not message.fuzzy, (source.name, message.id)
            assert message.string, (source.name, message.id)


def test_no_message_is_defined_in_two_domains() -> None:
    for lang in i18n.LANGS:
        i18n.messages.cache_clear()
        i18n.messages(lang)  # raises CatalogError on a msgid in two domains


KEY = re.compile(r"[a-z][a-z0-9_.]*")


def test_every_key_the_code_asks_for_is_in_the_catalog() -> None:
    # text("key", …) with a literal key anywhere in the product: a typo is a KeyError at
    # the moment a user reaches that line, so find it here instead.
    root = Path(i18n.__file__).resolve().parents[2]
    asked: dict[str, str] = {}
    for package in ("inventory", "migrate", "exporters", "infra"):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name | ast.Attribute)
                    and (getattr(node.func, "id", None) or getattr(node.func, "attr", None))
                    == "text"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    # sqlalchemy's text("SELECT …") shares the name; keys are identifiers.
                    and KEY.fullmatch(node.args[0].value)
                ):
                    asked[node.args[0].value] = f"{path.relative_to(root)}:{node.lineno}"
    for lang in i18n.LANGS:
        missing = {key: where for key, where in asked.items() if key not in i18n.messages(lang)}
        assert missing == {}, lang


def test_compiled_catalogs_match_their_sources(tmp_path: Path) -> None:
    # What the build writes is what the sources say: compile each .po and read it back.
    for lang in i18n.LANGS:
        for source in i18n.catalog_sources(lang):
            translations = gettext.GNUTranslations(io.BytesIO(i18n.compile_catalog(source)))
            with source.open("rb") as handle:
                from babel.messages.pofile import read_po

                for message in read_po(handle):
                    if message.id:
                        assert translations.gettext(str(message.id)) == message.string


def test_text_fills_placeholders_and_refuses_unknown_keys() -> None:
    assert i18n.text("written", "zh", path="a.html") == "已写入 a.html"
    assert i18n.text("written", "en", path="a.html") == "written to a.html"
    assert i18n.state_label("accepted", "zh") == "已验收"
    assert i18n.state_label("made_up", "zh") == "made_up"
    with pytest.raises(KeyError):
        i18n.text("no_such_message", "zh")


def test_unknown_language_names_the_value() -> None:
    with pytest.raises(i18n.UnknownLanguage) as caught:
        i18n.resolve_lang("fr", None, {})
    assert caught.value.value == "fr"
    assert str(caught.value) == "unknown language 'fr': use zh or en"


def test_unknown_codes_show_as_stored() -> None:
    assert i18n.state_label("paused_by_lead", "zh") == "paused_by_lead"
    assert i18n.state_label(None, "en") == "—"
    assert i18n.zone_label(None, "zh") == "未填报"


def test_the_reports_know_the_states_in_the_trackers_order() -> None:
    # inventory/ cannot import migrate/, so the reports keep their own copy of the order.
    from migrate.tracking import STATES

    assert i18n.STATE_ORDER == STATES
