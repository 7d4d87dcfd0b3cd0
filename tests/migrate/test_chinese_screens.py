"""A Chinese screen of `yiyun migrate …` reads no English sentence: codes, ids and commands only."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from inventory.i18n import label
from inventory.settings import Settings, set_settings

DATA = Path(__file__).parent.parent / "data" / "migrate"
runner = CliRunner()

# Three or more English words in a row: a sentence (or a piece of one) left in English.
_SENTENCE = re.compile(r"\b[A-Za-z][a-z]+(?:[ ,;:]+[A-Za-z][a-z]+){2,}\b")
# What a Chinese sentence may quote: `commands`, --options, codes like JS-EDU-005 or R6.
_QUOTED = re.compile(r"`[^`]*`|--[a-z][a-z-]*|\b[A-Za-z0-9]+(?:[-_/.][A-Za-z0-9]+)+\b")


def english_sentences(screen: str) -> list[str]:
    return _SENTENCE.findall(_QUOTED.sub(" ", screen))


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "400"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.stdout + result.stderr


@pytest.fixture
def reset_lang(estate: Settings) -> Iterator[Settings]:
    yield estate
    set_settings(None)  # the root --lang is a global setting


def screens(lang: str) -> dict[str, str]:
    run = ("--lang", lang, "migrate")
    out = {
        "deps import": invoke(*run, "deps", "import", str(DATA / "dependencies.csv")),
        "assess": invoke(*run, "assess"),
        "assess -f md": invoke(*run, "assess", "-f", "md"),
        "assess show": invoke(*run, "assess", "show", "A01"),
        "plan create": invoke(
            *run,
            "plan",
            "create",
            "--source",
            "edu-dc",
            "--source",
            "room",
            "--target",
            "core",
            "--name",
            f"p-{lang}",
            "--max-systems-per-wave",
            "2",
            "--by",
            "planner",
        ),
        "deps list": invoke(*run, "deps", "list"),
        "transitions": invoke(*run, "transitions"),
    }
    out["plan show"] = invoke(*run, "plan", "show", f"p-{lang}")
    return out


def test_zh_screens_have_no_english_sentence(reset_lang: Settings) -> None:
    found = {name: english_sentences(s) for name, s in screens("zh").items()}

    assert {name: hits for name, hits in found.items() if hits} == {}


def test_the_check_finds_english_on_english_screens(reset_lang: Settings) -> None:
    # The same screens in English must trip the check, or it proves nothing about zh.
    found = {name: english_sentences(s) for name, s in screens("en").items()}

    assert found["assess show"] and found["plan show"] and found["plan create"]


def import_screens(lang: str, tmp_path: Path) -> dict[str, str]:
    """`plan import` and `deps import` of files with every kind of problem, in `lang`."""
    run = ("--lang", lang, "migrate")
    invoke(*run, "deps", "import", str(DATA / "dependencies.csv"))
    invoke(*run, "plan", "create", "--source", "edu-dc", "--source", "room", "--target", "core",
           "--name", "p1", "--max-systems-per-wave", "2", "--by", "planner")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(invoke(*run, "plan", "export", "p1"))))
    # A03 cannot move, A12 leaves its group and runs before A01 which it calls, A14 is no
    # number, NOPE is no system, the second row comes twice and one row has no code.
    edits = {"A03": "1", "A01": "4", "A12": "1", "A13": "3", "A14": "two", "A02": "9999"}
    for row in rows:
        row["wave"] = edits.get(row["system_code"], row["wave"])
    rows += [{**rows[0], "system_code": "NOPE"}, {**rows[1]}, {**rows[2], "system_code": ""}]
    bad = tmp_path / f"plan-{lang}.csv"
    with bad.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # Out of the plan entirely: the wave-number warning and the "not in the file" warning.
    short = tmp_path / f"short-{lang}.csv"
    short.write_text("system_code,wave\nA07,5\n", encoding="utf-8")
    empty = tmp_path / f"empty-{lang}.csv"
    empty.write_text("\n", encoding="utf-8")
    headless = tmp_path / f"headless-{lang}.csv"
    headless.write_text("system_code,wave,wave\nA07,1,1\n", encoding="utf-8")
    garbled = tmp_path / f"garbled-{lang}.csv"
    garbled.write_bytes(b"system_code,wave\n\x81\x30\xff\xff,1\n")
    by = ("--by", "王工")
    return {
        "plan import": invoke(*run, "plan", "import", "p1", str(bad), *by),
        "plan import, dry run": invoke(*run, "plan", "import", "p1", str(short), *by, "--dry-run"),
        "plan import, no --by": invoke(*run, "plan", "import", "p1", str(short), "--by", " "),
        "empty file": invoke(*run, "plan", "import", "p1", str(empty), *by),
        "column twice": invoke(*run, "plan", "import", "p1", str(headless), *by),
        "not text": invoke(*run, "plan", "import", "p1", str(garbled), *by),
        "no such file": invoke(*run, "plan", "import", "p1", str(tmp_path / "none.csv"), *by),
        "not a sheet": invoke(*run, "plan", "import", "p1", str(tmp_path), *by),
        "wrong kind": invoke(*run, "deps", "import", str(Path(__file__)), *by[:0]),
        "deps import": invoke(*run, "deps", "import", str(DATA / "dependencies_bad.csv")),
    }


# What each screen must show, so an empty or crashed screen cannot pass the English check.
SEEN = {
    "plan import": ["A03", "A12", "A01", "'two'", "'NOPE'", "'9999'"],
    "plan import, dry run": ["A07"],
    "deps import": ["'NOPE'", "'telepathy'", "'maybe'"],
}


def test_zh_import_problems_have_no_english_sentence(reset_lang: Settings, tmp_path: Path) -> None:
    screens = import_screens("zh", tmp_path)
    found = {name: english_sentences(s) for name, s in screens.items()}

    assert {name: hits for name, hits in found.items() if hits} == {}
    for name, words in SEEN.items():
        assert all(w in screens[name] for w in words), screens[name]
    assert screens["plan import"].count("第 ") >= 7  # one line per problem, each with its row
    assert "A03 排在第 1 批，但不能迁移（迁移就绪度为" in screens["plan import"]
    assert "迁移组 A12 须整体排在同一批" in screens["plan import"]
    assert "第 4 行，to 'A02'：系统不能依赖自身" in screens["deps import"]


def test_the_import_check_finds_english_on_english_screens(
    reset_lang: Settings, tmp_path: Path
) -> None:
    screens = import_screens("en", tmp_path)
    found = {name: english_sentences(s) for name, s in screens.items()}

    assert all(found[name] for name in screens), found


def test_assess_show_lists_each_rule_s_facts_on_one_line(reset_lang: Settings) -> None:
    invoke("migrate", "assess")
    zh = invoke("--lang", "zh", "migrate", "assess", "show", "A01", "-f", "md")
    en = invoke("--lang", "en", "migrate", "assess", "show", "A01", "-f", "md")

    rules = [line for line in zh.splitlines() if line.startswith("| R1 ")]
    assert len(rules) == 1 and "系统等保级别：" in rules[0] and "平台等保级别：" in rules[0]
    assert "␊" not in zh + en and "{" not in zh + en
    assert "platform\\_mlps\\_level=" in en  # Markdown escapes the underscores


def test_an_override_names_readiness_and_strategy_in_the_reader_s_language(
    reset_lang: Settings,
) -> None:
    invoke("migrate", "assess")
    # A01 is ready to rehost by the rules; the override holds it back.
    args = ("migrate", "assess", "override", "A01", "--readiness", "needs_work", "--strategy",
            "retain", "--by", "王工", "--rationale", "等待整改")  # fmt: skip

    zh = invoke("--lang", "zh", *args)
    en = invoke("--lang", "en", *args)

    named = [label("readiness", "needs_work", "zh"), label("strategy", "retain", "zh")]
    named += [label("readiness", "ready", "zh"), label("strategy", "rehost", "zh")]
    assert all(name in zh for name in named), zh
    assert not re.search("needs_work|retain|ready|rehost", zh)
    assert "readiness needs_work, strategy retain (rules said ready, rehost" in en
