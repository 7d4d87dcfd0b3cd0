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


def test_unknown_codes_show_as_stored() -> None:
    assert i18n.state_label("paused_by_lead", "zh") == "paused_by_lead"
    assert i18n.state_label(None, "en") == "—"
    assert i18n.zone_label(None, "zh") == "未填报"
