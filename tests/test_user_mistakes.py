"""Every command given wrong arguments says what is wrong and exits as the README says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

import cli
from inventory.settings import Settings, set_settings

ROOT = Path(__file__).resolve().parents[1]
YIYUN = Path(sys.executable).with_name("yiyun")
runner = CliRunner()

# The README's exit codes: 1 the command ran and found a problem, 2 a usage or configuration
# error, 130 stopped with Ctrl-C.
PROBLEM, USAGE, INTERRUPTED = 1, 2, 130

IMPOSSIBLE_DATE_NODES = """\
nodes:
  - id: edu-dc
    name: 省教育厅部门云
    level: department_cloud
    one_cloud: false
    owner_department: JS-EDU
    frozen_since: 2022-02-30
    sources: [{kind: aws, endpoint_url: http://10.1.2.3:9000, regions: [edu-1]}]
"""

# One row (at least) per command of the tree: argv, exit code, words the output must hold.
# {missing} is a path that does not exist, {nodes} a node file with an impossible date.
MISTAKES: list[tuple[list[str], int, list[str]]] = [
    (["scan", "--concurrency", "0"], USAGE, ["--concurrency"]),
    (["--config", "{nodes}", "scan"], USAGE, ["2022-02-30", "line 7"]),
    (["demo", "--systems", "3"], USAGE, ["--systems"]),
    (["db", "upgrade", "extra"], USAGE, ["extra"]),
    (["registry", "import", "{missing}"], USAGE, ["{missing}"]),
    (["registry", "list", "--format", "nope"], USAGE, ["nope"]),
    (["nodes", "apply", "{missing}"], USAGE, ["{missing}"]),
    # A node file with errors is "a file had errors" (README): 1, every problem with its line.
    (["nodes", "apply", "{nodes}"], PROBLEM, ["2022-02-30", "line 7", "not a real date"]),
    (["nodes", "retire", "NOPE", "--by", "me", "--reason", "typo"], USAGE, ["NOPE"]),
    (["nodes", "list", "--format", "nope"], USAGE, ["nope"]),
    (["report", "adoption", "--policy", "nope"], USAGE, ["nope"]),
    (["report", "violations", "--format", "nope"], USAGE, ["nope"]),
    (["report", "scans", "--run", "abc"], USAGE, ["--run"]),
    (["report", "html", "--output", "{missing}/r.html"], USAGE, ["no-such-dir"]),
    (["report", "xlsx", "--format", "nope"], USAGE, ["nope"]),
    (["report", "scorecard", "--department", "NOPE"], USAGE, ["NOPE"]),
    (["exporter", "serve", "--refresh", "0"], USAGE, ["--refresh"]),
    # The demo login hands out tokens without the identity provider: this machine only.
    (["serve", "--demo-login", "--host", "0.0.0.0"], USAGE, ["0.0.0.0", "--demo-login"]),
    # A refused transition is "found a problem" (1), and names how to find the right code.
    (["migrate", "advance", "NOPE", "--to", "accepted", "--by", "me"], PROBLEM, ["NOPE"]),
    (["migrate", "advance", "NOPE", "--to", "nope", "--by", "me"], USAGE, ["nope"]),
    (["migrate", "status", "--plan", "NOPE"], USAGE, ["NOPE", "plan list"]),
    # Answers as for a code registered nowhere (README): an empty history, not an error.
    (["migrate", "history", "NOPE"], 0, []),
    (["migrate", "transitions", "--bogus"], USAGE, ["--bogus"]),
    (["migrate", "deps", "import", "{missing}"], USAGE, ["{missing}"]),
    (["migrate", "deps", "infer", "--bogus"], USAGE, ["--bogus"]),
    (["migrate", "deps", "list", "--format", "nope"], USAGE, ["nope"]),
    (
        ["migrate", "assess", "override", "NOPE", "--by", "me", "--rationale", "x",
         "--readiness", "nope"],
        USAGE,
        ["nope"],
    ),
    (["migrate", "assess", "show", "NOPE"], USAGE, ["NOPE"]),
    (["migrate", "plan", "create", "--source", "nope", "--target", "nope"], USAGE, ["nope"]),
    (["migrate", "plan", "list", "--format", "nope"], USAGE, ["nope"]),
    (["migrate", "plan", "show", "NOPE"], USAGE, ["NOPE", "plan list"]),
    (["migrate", "plan", "export", "NOPE"], USAGE, ["NOPE", "plan list"]),
    (["migrate", "plan", "import", "NOPE", "{missing}", "--by", "me"], USAGE, ["plan list"]),
    (["migrate", "plan", "archive", "NOPE", "--by", "me"], USAGE, ["NOPE", "plan list"]),
    (["infra", "import-spec", "--node", "NOPE"], USAGE, ["NOPE"]),
    (["infra", "check", "{missing}"], USAGE, ["{missing}"]),
    # A grant or token that cannot be is a mistake in what was asked: 2, naming what is wrong.
    (["access", "grant", "alice", "boss", "province", "--by", "me"], USAGE, ["boss", "viewer"]),
    (["access", "revoke", "alice", "viewer", "county:x", "--by", "me"], USAGE, ["county:x"]),
    (["access", "grant", "alice", "viewer", "province", "--by", " "], USAGE, ["--by"]),
    (["access", "list", "--format", "nope"], USAGE, ["nope"]),
    (["access", "audit", "--limit", "0"], USAGE, ["--limit"]),
    (["tokens", "create", "--principal", "ci", "--role", "admin", "--scope", "province",
      "--by", "me", "--expires", "2y"], USAGE, ["2y", "90d"]),
    (["tokens", "list", "--format", "nope"], USAGE, ["nope"]),
    (["tokens", "revoke", "nope", "--by", "me"], USAGE, ["nope"]),
    # An unknown system or dependency is a mistake in the command (2), named.
    (["migrate", "deps", "add", "NOPE", "A01", "--by", "me"], USAGE, ["NOPE"]),
    (["migrate", "deps", "delete", "999", "--by", "me"], USAGE, ["999"]),
    (["migrate", "assess", "list", "--readiness", "nope"], USAGE, ["nope"]),
]  # fmt: skip


def commands() -> set[tuple[str, ...]]:
    """Every leaf command of `yiyun`, walked from the click tree Typer builds."""
    found: set[tuple[str, ...]] = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found.add(path)

    walk(typer.main.get_command(cli.app), ())
    return found


def command_of(argv: list[str]) -> tuple[str, ...]:
    words = [word for word in argv if not word.startswith("-") and "{" not in word]
    tree = commands()
    for length in range(len(words), 0, -1):
        if tuple(words[:length]) in tree:
            return tuple(words[:length])
    return ()


def test_every_command_has_a_mistake_row() -> None:
    covered = {command_of(argv) for argv, _, _ in MISTAKES}
    missing = sorted(" ".join(path) for path in commands() - covered)
    assert not missing, f"commands without a row in MISTAKES: {missing}"


@pytest.fixture
def ledger(settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    """An upgraded, empty ledger (SQLite and PostgreSQL) and the files the rows name."""
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(IMPOSSIBLE_DATE_NODES, encoding="utf-8")
    yield {"missing": str(tmp_path / "no-such-dir" / "missing.csv"), "nodes": str(nodes)}
    set_settings(None)


def run(argv: list[str], **env: str) -> Result:
    return runner.invoke(cli.app, argv, env={"COLUMNS": "250", **env})


def assert_clean(result: Result, code: int, words: list[str]) -> None:
    shown = result.output
    assert "Traceback" not in shown, shown
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, shown
    flat = " ".join(shown.split())
    for word in words:
        assert word in flat, f"{word!r} not in: {shown}"


@pytest.mark.parametrize(
    ("argv", "code", "words"), MISTAKES, ids=[" ".join(argv) for argv, _, _ in MISTAKES]
)
def test_a_mistake_is_one_message_and_the_readme_exit_code(
    ledger: dict[str, str], argv: list[str], code: int, words: list[str]
) -> None:
    if not command_of(argv):
        pytest.skip(f"no such command (yet): {' '.join(argv)}")
    argv = [word.format(**ledger) for word in argv]
    words = [word.format(**ledger) for word in words]
    assert_clean(run(argv), code, words)


# --- the ledger's URL ------------------------------------------------------------------------

BAD_URLS = [
    ("mysql://user:secret@db.example/yiyun", ["mysql", "sqlite:///", "postgresql+psycopg://"]),
    ("postgresql+psycopg2://db.example/yiyun", ["postgresql+psycopg2", "postgresql+psycopg://"]),
    ("", ["empty", "sqlite:///"]),
    ("{tmp}/yiyun.db", ["sqlite:///{tmp}/yiyun.db"]),
    ("nosuch://x", ["nosuch", "sqlite:///"]),
]


@pytest.mark.parametrize(("url", "words"), BAD_URLS, ids=[url or "empty" for url, _ in BAD_URLS])
@pytest.mark.parametrize(
    "argv", [["registry", "list"], ["migrate", "status"], ["report", "adoption"], ["db", "upgrade"]]
)
def test_a_database_url_yiyun_cannot_use_is_named_with_the_fix(
    tmp_path: Path, url: str, words: list[str], argv: list[str]
) -> None:
    url = url.format(tmp=tmp_path)
    result = run(["--db", url, *argv])
    assert_clean(result, USAGE, [word.format(tmp=tmp_path) for word in words])
    assert "secret" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert list(tmp_path.iterdir()) == []


def test_the_url_message_is_chinese_by_default(tmp_path: Path) -> None:
    result = run(["--lang", "zh", "--db", "mysql://h/db", "registry", "list"])
    assert_clean(result, USAGE, ["错误：", "未安装", "sqlite:///、postgresql+psycopg://"])


@pytest.mark.parametrize(
    "argv",
    [["registry", "list"], ["migrate", "status"], ["report", "adoption"], ["nodes", "list"]],
)
def test_a_mistyped_sqlite_path_creates_no_database(tmp_path: Path, argv: list[str]) -> None:
    missing = tmp_path / "yiyun-typo.db"
    result = run(["--db", f"sqlite:///{missing}", *argv])
    assert_clean(result, USAGE, [str(missing), "yiyun db upgrade"])
    assert not missing.exists()
    zh = run(["--lang", "zh", "--db", f"sqlite:///{missing}", *argv])
    assert_clean(zh, USAGE, ["不存在", "yiyun db upgrade"])
    assert not missing.exists()


def test_db_upgrade_creates_the_database_the_others_then_open(tmp_path: Path) -> None:
    path = tmp_path / "yiyun.db"
    assert_clean(run(["--db", f"sqlite:///{path}", "db", "upgrade"]), 0, [])
    assert path.exists()
    assert_clean(run(["--db", f"sqlite:///{path}", "registry", "list"]), 0, [])


# --- Ctrl-C during start-up -----------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path: Path, lang: str) -> None:
    # -X importtime reports each module as it finishes loading: SIGINT is sent once the
    # interrupt guard is in and while the heavy modules load, so it lands in start-up.
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", str(YIYUN), "--lang", lang, "--db",
         f"sqlite:///{tmp_path}/y.db", "registry", "list"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "YIYUN_LANG": "en"},
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for raw in process.stderr:
        line = raw.decode()
        seen.append(line)
        if line.rstrip().endswith("commands.interrupt"):
            process.send_signal(signal.SIGINT)
            break
    rest_out, rest_err = process.communicate(timeout=120)
    errors = "".join(seen) + rest_err.decode()
    said = [line for line in errors.splitlines() if line.strip() and "import time:" not in line]
    assert "| cli\n" not in errors, "the signal came after start-up: the test proved nothing"
    assert process.returncode == INTERRUPTED, errors
    assert "Traceback" not in errors
    expected = "错误：已按 Ctrl-C 中断" if lang == "zh" else "error: interrupted (Ctrl-C)"
    assert said == [expected]
    assert rest_out == b""


# --- identity settings half set ----------------------------------------------------------------

HALF_SET_IDENTITY = [
    ({"YIYUN_OIDC_ISSUER": "http://127.0.0.1:9"}, ["YIYUN_OIDC_AUDIENCE", "YIYUN_OIDC_ISSUER"]),
    (
        {
            "YIYUN_OIDC_ISSUER": "http://127.0.0.1:9",
            "YIYUN_OIDC_AUDIENCE": "urn:yiyun:api",
            "YIYUN_OIDC_PORTAL_CLIENT_ID": "yiyun-portal",
        },
        ["YIYUN_OIDC_PORTAL_CLIENT_SECRET", "YIYUN_OIDC_PORTAL_CLIENT_ID"],
    ),
]


@pytest.mark.parametrize(("env", "words"), HALF_SET_IDENTITY, ids=["audience", "portal-secret"])
def test_serve_names_the_identity_setting_that_is_missing(
    ledger: dict[str, str], env: dict[str, str], words: list[str]
) -> None:
    result = run(["serve", "--port", "0"], **env)
    assert_clean(result, USAGE, ["identity settings are wrong", *words])
    assert len(result.output.strip().splitlines()) == 1, result.output
