"""A Chinese screen of `yiyun migrate …` reads no English sentence: codes, ids and commands only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
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


@pytest.mark.xfail(reason="unfinished: plan import and deps import problems are still English")
def test_zh_import_problems_have_no_english_sentence(reset_lang: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "plan.csv"
    invoke("migrate", "plan", "create", "--source", "edu-dc", "--source", "room", "--target",
           "core", "--name", "p1", "--by", "planner")  # fmt: skip
    export = invoke("migrate", "plan", "export", "p1")
    lines = export.splitlines()
    bad.write_text("\n".join([lines[0], lines[1].replace(",", ",9999", 1), *lines[2:]]) + "\n")
    screen = invoke("migrate", "plan", "import", "p1", str(bad), "--by", "王工")
    screen += invoke("migrate", "deps", "import", str(DATA / "dependencies_bad.csv"))

    assert english_sentences(screen) == []
