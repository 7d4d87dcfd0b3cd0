"""`yiyun migrate …` for people in Chinese and English; machines get the same JSON either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from inventory.settings import Settings, set_settings

DATA = Path(__file__).parent.parent / "data" / "migrate"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    """Run `yiyun …` on a wide terminal, so that table headings are never folded."""
    result = runner.invoke(app, list(args), env={"COLUMNS": "300"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def moving(planned: Settings) -> Iterator[Settings]:
    """Plan p1 with dependencies, an assessment and one system moved on."""
    for args in (
        ("migrate", "deps", "import", str(DATA / "dependencies.csv")),
        ("migrate", "assess"),
        ("migrate", "advance", "A01", "--to", "provisioning", "--by", "王工"),
    ):
        code, out, err = invoke(*args)
        assert code == 0, out + err
    yield planned
    set_settings(None)  # the root --lang is a global setting


@pytest.mark.parametrize(
    ("lang", "expected", "absent"),
    [
        ("zh", ["迁移进度（按波次）", "迁移计划", "波次", "系统数", "已验收或完成", "进度",
                "资源开通中", "已定方案"], ["progress by wave", "Accepted or done"]),
        ("en", ["progress by wave", "Plan", "Wave", "Systems", "Accepted or done", "Progress",
                "provisioning", "planned"], ["迁移进度", "已验收或完成"]),
    ],
)  # fmt: skip
def test_status_table_in_each_language(
    moving: Settings, lang: str, expected: list[str], absent: list[str]
) -> None:
    code, out, err = invoke("--lang", lang, "migrate", "status")

    assert code == 0, out + err
    for wording in expected:
        assert wording in out, wording
    for wording in absent:
        assert wording not in out, wording


def test_status_messages_in_each_language(moving: Settings) -> None:
    _, zh, _ = invoke("--lang", "zh", "migrate", "status", "--by", "department")
    _, en, _ = invoke("--lang", "en", "migrate", "status", "--by", "department")

    assert "迁移进度（按部门）" in zh and "部门" in zh
    assert "progress by department" in en and "Department" in en
    no_gap = ("自报状态与清查结果没有不一致之处", "no discrepancies between claimed states")
    gap = ("自报状态与清查结果不一致之处", "discrepancies between claimed states")
    # Either there are discrepancies or there are none; each is said in the chosen language.
    assert any(wording in zh for wording in (no_gap[0], gap[0]))
    assert any(wording in en for wording in no_gap[1:] + gap[1:])


@pytest.mark.parametrize(
    "args",
    [
        ("migrate", "status", "--format", "json"),
        ("migrate", "status", "--format", "csv"),
        ("migrate", "plan", "list", "--format", "json"),
        ("migrate", "plan", "show", "p1", "--format", "json"),
        ("migrate", "plan", "export", "p1", "--format", "csv"),
        ("migrate", "deps", "list", "--format", "csv"),
        ("migrate", "history", "A01", "--format", "json"),
        ("migrate", "assess", "show", "A01", "--format", "json"),
    ],
)
def test_machine_output_is_the_same_in_both_languages(
    moving: Settings, args: tuple[str, ...]
) -> None:
    zh = invoke("--lang", "zh", *args)
    en = invoke("--lang", "en", *args)

    assert zh[0] == en[0] == 0
    assert zh[1] == en[1] and zh[1].strip()


# Every human table and message of `migrate`: in Chinese each has a heading for every column
# (a missing translation would fail here, not in front of a department).
HUMAN = [
    ("migrate", "status"),
    ("migrate", "status", "--by", "department", "--format", "md"),
    ("migrate", "plan", "list"),
    ("migrate", "plan", "list", "--format", "md"),
    ("migrate", "plan", "show", "p1"),
    ("migrate", "plan", "show", "p1", "--format", "md"),
    ("migrate", "deps", "list"),
    ("migrate", "deps", "list", "--format", "md"),
    ("migrate", "deps", "infer"),
    ("migrate", "assess"),
    ("migrate", "assess", "--format", "md"),
    ("migrate", "assess", "show", "A01"),
    ("migrate", "assess", "show", "A01", "--format", "md"),
    ("migrate", "history", "A01"),
    ("migrate", "history", "A01", "--format", "md"),
    ("migrate", "transitions"),
]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_human_view_renders(moving: Settings, lang: str) -> None:
    for args in HUMAN:
        code, out, err = invoke("--lang", lang, *args)

        assert code == 0, (args, out + err)
        assert out.strip(), args


def test_messages_and_errors_in_each_language(moving: Settings) -> None:
    zh = invoke("--lang", "zh", "migrate", "advance", "A01", "--to", "migrating", "--by", "x")
    en = invoke("--lang", "en", "migrate", "advance", "A01", "--to", "migrating", "--by", "x")
    unknown_zh = invoke("--lang", "zh", "migrate", "assess", "show", "NOPE")
    unknown_en = invoke("--lang", "en", "migrate", "assess", "show", "NOPE")
    gates_zh = invoke("--lang", "zh", "migrate", "transitions")[1]

    assert zh[0] == 0 and "A01：资源开通中 → 迁移中（操作人 x）" in zh[1]
    assert en[0] == 1 and "refused:" in en[2]  # already migrating: a second move is refused
    assert unknown_zh[0] == 2 and "错误：" in unknown_zh[2] and "未知系统 'NOPE'" in unknown_zh[2]
    assert unknown_en[0] == 2 and "unknown system 'NOPE'" in unknown_en[2]
    assert "关口：" in gates_zh and "（终态）" in gates_zh
