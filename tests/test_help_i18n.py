"""Every --help in the chosen language: each help text translated, and Chinese by default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from click.testing import Result
from typer.testing import CliRunner

from cli import app
from commands.localize import commands, help_lang, help_texts, localize
from inventory import i18n

runner = CliRunner()
CJK = re.compile(r"[\u4e00-\u9fff]")
HELP_PO = i18n.LOCALE_DIR / "zh" / "LC_MESSAGES" / "help.po"


def _tree() -> typer.main.TyperGroup:
    return typer.main.get_command(app)  # type: ignore[return-value]


def _command_paths() -> list[list[str]]:
    return [path.split()[1:] for path, _command in commands(_tree())]


def _help_msgids() -> set[str]:
    from babel.messages.pofile import read_po

    with HELP_PO.open("rb") as handle:
        return {str(message.id) for message in read_po(handle) if message.id}


def test_every_help_text_has_a_chinese_translation() -> None:
    # A new command, argument or option whose help is not in help.po fails here, with where it is.
    zh = i18n.messages("zh")
    missing = sorted(
        {(where, english) for where, english in help_texts(_tree()) if english not in zh}
    )
    assert missing == [], "add these to inventory/locale/zh/LC_MESSAGES/help.po"


def test_every_translation_is_chinese_and_still_used() -> None:
    # A help text edited in English leaves its old translation behind: that entry is dead.
    used = {english for _where, english in help_texts(_tree())}
    assert sorted(_help_msgids() - used) == [], "help.po entries no command uses any more"
    zh = i18n.messages("zh")
    assert [english for english in used if not CJK.search(zh[english])] == []


def _plain(output: str) -> str:
    # Rich folds lines and draws panel borders; compare the words alone.
    return re.sub(r"[\s│╭╮╰╯─]+", "", output)


def _help(args: list[str], env: dict[str, str | None]) -> Result:
    result = runner.invoke(app, [*args, "--help"], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


CHINESE_READER = {"YIYUN_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": "C.UTF-8"}


@pytest.mark.parametrize("path", _command_paths(), ids=lambda path: " ".join(path) or "yiyun")
def test_every_help_page_is_chinese_by_default_and_english_on_request(path: list[str]) -> None:
    command = _tree()
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    english = command.help or ""

    chinese = _plain(_help(path, CHINESE_READER).output)
    assert "用法：" in chinese
    assert "Usage:" not in chinese and "Options" not in chinese
    if english:
        assert _plain(i18n.help_text(english, "zh"))[:12] in chinese
        assert _plain(english)[:12] not in chinese

    for args, env in (
        (["--lang", "en", *path], CHINESE_READER),
        (path, {**CHINESE_READER, "YIYUN_LANG": "en"}),
        (path, {**CHINESE_READER, "LANG": "en_US.UTF-8"}),
    ):
        shown = _plain(_help(args, env).output)
        assert "Usage:" in shown and "用法" not in shown
        if english:
            assert _plain(english)[:12] in shown


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--lang", "en", "report", "adoption"], "en"),
        (["--lang=en", "report", "adoption"], "en"),
        (["report", "adoption", "--lang", "en"], "en"),  # the command's own --lang
        (["--lang", "zh", "report", "adoption"], "zh"),
        (["--lang", "fr"], "zh"),  # Click refuses fr itself; help stays in the locale's language
        (["--", "--lang", "en"], "zh"),
        (["report", "adoption"], "zh"),
    ],
)
def test_help_language_comes_from_the_arguments_first(args: list[str], expected: str) -> None:
    assert help_lang(args, {"LANG": "C.UTF-8"}) == expected


def test_yiyun_lang_and_locale_decide_when_no_option_does() -> None:
    assert help_lang([], {"YIYUN_LANG": "en", "LANG": "zh_CN.UTF-8"}) == "en"
    assert help_lang(["--lang", "zh"], {"YIYUN_LANG": "en"}) == "zh"
    assert help_lang([], {"LANG": "en_GB.UTF-8"}) == "en"
    assert help_lang([], {}) == "zh"


def test_translating_back_to_english_restores_every_text() -> None:
    # One process may draw help in both languages (tests do): English is the code's own text.
    root = _tree()
    before = sorted(help_texts(root))
    shown_before = [(c.help, c.options_metavar) for _p, c in commands(root)]
    localize(root, "zh")
    assert [c.help for _p, c in commands(root)] != [help for help, _m in shown_before]
    localize(root, "en")
    assert sorted(help_texts(root)) == before
    assert [(c.help, c.options_metavar) for _p, c in commands(root)] == shown_before


def test_a_usage_error_is_explained_in_chinese() -> None:
    result = runner.invoke(app, ["migrate", "plan", "create"], env=CHINESE_READER)
    assert result.exit_code == 2
    shown = _plain(result.output)
    assert "错误" in shown and "请运行" in shown and "用法：" in shown
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "chinese", "english"),
    [
        (["migrate", "plan", "create"], "缺少选项 '--source'", "Missing option '--source'"),
        (["nodes", "validate"], "没有 'validate' 这个命令", "No such command 'validate'"),
        (["report", "adoption", "--bogus"], "没有 --bogus 这个选项", "No such option: --bogus"),
        (["report", "adoption", "--by", "x"], "'x' 不在可选值之中", "'x' is not one of"),
        (["scan", "one", "two"], "多余的参数（one two）", "unexpected extra argument"),
    ],
)
def test_click_usage_errors_are_worded_in_the_readers_language(
    args: list[str], chinese: str, english: str
) -> None:
    # Typer's bundled Click words these in English f-strings; localize rewords them.
    zh = runner.invoke(app, args, env=CHINESE_READER)
    en = runner.invoke(app, ["--lang", "en", *args], env=CHINESE_READER)
    assert zh.exit_code == en.exit_code == 2
    assert _plain(chinese) in _plain(zh.output)
    # No English sentence left in the Chinese error panel.
    panel = zh.output.split("错误")[-1]
    assert not re.search(r"[A-Za-z]+ [a-z]+ [a-z]+", panel), panel
    assert _plain(english) in _plain(en.output)


def test_the_installed_command_draws_chinese_help(tmp_path: Path) -> None:
    # The real entry point, in a fresh process with no language set anywhere.
    env = {k: v for k, v in os.environ.items() if k not in ("YIYUN_LANG", "LC_ALL", "LANGUAGE")}
    env.update(LANG="C.UTF-8", COLUMNS="80")
    yiyun = Path(sys.executable).with_name("yiyun")
    done = subprocess.run(
        [str(yiyun), "migrate", "plan", "create", "--help"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    shown = _plain(done.stdout)
    assert "用法：yiyunmigrateplancreate[选项]" in shown
    assert "源节点编号" in shown and "[必填]" in shown and "Source node id" not in shown
