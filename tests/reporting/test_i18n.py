"""Report wording: language resolution and complete translations."""

from __future__ import annotations

import pytest

from inventory.adoption import STATUSES
from inventory.reporting import i18n


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


def test_every_wording_exists_in_both_languages() -> None:
    tables = [i18n.TEXTS, i18n.STATUS_LABELS, i18n.STATE_LABELS, i18n.ZONE_LABELS]
    for table in tables:
        for key, (zh, en) in table.items():
            assert zh and en, key
    assert set(STATUSES) <= set(i18n.STATUS_LABELS)


def test_placeholders_match_across_languages() -> None:
    import string

    def fields(wording: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(wording) if name}

    for key, (zh, en) in i18n.TEXTS.items():
        assert fields(zh) == fields(en), key


def test_placeholders_are_filled_alike_in_both_languages() -> None:
    import string

    def fields(wording: str) -> set[tuple[str, str | None, str]]:
        # name, conversion (!r) and format spec: {value!r} in one language and {value} in the
        # other would quote a value in one and not the other.
        return {
            (name, conversion, spec or "")
            for _, name, spec, conversion in string.Formatter().parse(wording)
            if name is not None
        }

    for key, (zh, en) in i18n.TEXTS.items():
        assert isinstance(zh, str) and isinstance(en, str), key
        assert zh.strip() and en.strip(), key
        assert fields(zh) == fields(en), key


def test_no_key_is_written_twice() -> None:
    import ast
    from collections import Counter
    from pathlib import Path

    # A repeated key in the dict literal silently replaces the first wording.
    tree = ast.parse(Path(i18n.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
            keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            assert [k for k, n in Counter(keys).items() if n > 1] == []


def test_unknown_language_names_the_value() -> None:
    with pytest.raises(i18n.UnknownLanguage) as caught:
        i18n.resolve_lang("fr", None, {})
    assert caught.value.value == "fr"
    assert str(caught.value) == "unknown language 'fr': use zh or en"


def test_unknown_codes_show_as_stored() -> None:
    assert i18n.state_label("paused_by_lead", "zh") == "paused_by_lead"
    assert i18n.state_label(None, "en") == "—"
    assert i18n.zone_label(None, "zh") == "未填报"
