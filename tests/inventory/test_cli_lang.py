"""`--lang zh|en` on the command line's human output; JSON and CSV stay the same in both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from typer.testing import CliRunner, Result

from cli import app
from inventory.collectors.base import ResourceRow, Scope, ScopeFailed, ScopeStats
from inventory.models import Node
from inventory.settings import Settings, set_settings
from tests.reporting.estate import seed_report_estate

runner = CliRunner()


def invoke(*args: str) -> Result:
    result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def estate(settings: Settings, engine: sa.Engine) -> Iterator[Settings]:
    """The report estate: KPI systems, scan runs, a frozen node's violations, a plan in waves."""
    with Session(engine) as session:
        seed_report_estate(session, settings.today())
    yield settings
    # The root --lang is a global setting, like --db: never let it reach the next test.
    set_settings(None)


# --- report adoption ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "expected", "absent"),
    [
        (
            "zh",
            ["非涉密系统上云率：", "系统状态分布", "已上云", "无证据", "各设区市上云率", "地市"],
            ["Systems by status", "Adoption by city"],
        ),
        (
            "en",
            ["Cloud-adoption rate", "Systems by status", "on cloud", "no evidence",
             "Adoption by city", "City"],
            ["系统状态分布", "各设区市上云率"],
        ),
    ],
)  # fmt: skip
def test_adoption_table_speaks_the_chosen_language(
    estate: Settings, lang: str, expected: list[str], absent: list[str]
) -> None:
    for args in (
        ["--lang", lang, "report", "adoption", "--by", "city"],  # the root option
        ["report", "adoption", "--by", "city", "--lang", lang],  # the command's own
    ):
        result = invoke(*args)

        assert result.exit_code == 0, result.output
        for wording in expected:
            assert wording in result.stdout, (args, wording)
        for wording in absent:
            assert wording not in result.stdout, (args, wording)


def test_adoption_markdown_headers_are_translated_and_numbers_kept(estate: Settings) -> None:
    zh = invoke("report", "adoption", "--by", "city", "--format", "md", "--lang", "zh").stdout
    en = invoke("report", "adoption", "--by", "city", "--format", "md", "--lang", "en").stdout

    assert "| 地市 | 上云率 |" in zh and "| 南京市 | 42.86 % | 3 | 7 |" in zh
    assert "| City | Adoption rate |" in en and "| 南京市 | 42.86 % | 3 | 7 |" in en


def test_command_option_overrides_the_root_option(estate: Settings) -> None:
    result = invoke("--lang", "en", "report", "adoption", "--lang", "zh")

    assert result.exit_code == 0
    assert "系统状态分布" in result.stdout and "Systems by status" not in result.stdout


def test_yiyun_lang_sets_the_default(
    estate: Settings, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    monkeypatch.setenv("YIYUN_LANG", "zh")
    set_settings(Settings(database_url=db_url))

    assert "系统状态分布" in invoke("report", "adoption").stdout
    assert "Systems by status" in invoke("--lang", "en", "report", "adoption").stdout


# --- machine formats do not change ---------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("report", "adoption", "--by", "department", "--format", "json"),
        ("report", "adoption", "--by", "city", "--format", "csv"),
        ("report", "adoption", "--history", "--format", "json"),
        ("report", "violations", "--format", "json"),
        ("report", "violations", "--details", "--format", "csv"),
        ("report", "scans", "--format", "json"),
        ("registry", "list", "--format", "json"),
        ("nodes", "list", "--format", "csv"),
        ("migrate", "status", "--format", "json"),
        ("migrate", "status", "--by", "department", "--format", "csv"),
    ],
)
def test_json_and_csv_are_identical_in_both_languages(
    estate: Settings, args: tuple[str, ...]
) -> None:
    zh = invoke("--lang", "zh", *args)
    en = invoke("--lang", "en", *args)

    assert zh.exit_code == en.exit_code
    # as_of moves with the clock between the two runs; everything else must be equal.
    assert _without_clock(zh.stdout) == _without_clock(en.stdout)
    assert zh.stdout.strip()


def _without_clock(output: str) -> str:
    import re

    return re.sub(r'"as_of": "[^"]*"', '"as_of": …', output)


# --- report violations and report scans ----------------------------------------------------


def test_violations_in_both_languages(estate: Settings) -> None:
    zh = invoke("report", "violations", "--lang", "zh")
    en = invoke("report", "violations", "--lang", "en")

    assert zh.exit_code == en.exit_code == 1  # the estate has a freeze-rule violation
    assert "策略违规" in zh.stdout and "资源标识" in zh.stdout and "冻结节点新建资源" in zh.stdout
    assert "冻结规则违规 " in zh.stderr and "未归属资源" in zh.stderr
    assert "policy violations" in en.stdout and "Resource id" in en.stdout
    assert "freeze-rule violation(s)" in en.stderr and "策略违规" not in en.stdout


def test_scans_in_both_languages(estate: Settings) -> None:
    zh = invoke("--lang", "zh", "report", "scans")
    en = invoke("--lang", "en", "report", "scans")

    assert zh.exit_code == en.exit_code == 0
    for wording in ("扫描批次", "数据源", "范围", "条目数", "错误码"):
        assert wording in zh.stdout, wording
    for wording in ("scan run", "Source", "Scope", "Items", "Error code"):
        assert wording in en.stdout, wording


def test_no_scan_yet_is_said_in_the_chosen_language(settings: Settings) -> None:
    assert "尚未运行过扫描" in invoke("--lang", "zh", "report", "scans").stderr
    assert "no scan has run yet" in invoke("--lang", "en", "report", "scans").stderr


# --- yiyun scan ------------------------------------------------------------------------------


def _vm(native_id: str) -> ResourceRow:
    return ResourceRow(
        kind="vm",
        native_id=native_id,
        scope="r1",
        name=native_id,
        state="running",
        system_code="S01",
        tags={"yiyun.io/system": "S01"},
        terminal=False,
    )  # type: ignore[call-arg]


@pytest.fixture
def fixed_scopes(settings: Settings, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nodes whose scopes list fixed pages: `dc` lists one VM, `room` fails."""
    import inventory.scan

    with Session(engine) as session:
        for node_id in ("dc", "room"):
            session.add(
                Node(
                    id=node_id,
                    name=node_id,
                    level="department_cloud",
                    one_cloud=False,
                    sources=[{"name": "aws", "kind": "aws"}],
                )
            )
        session.commit()

    def pages(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
        stats.pages += 1
        yield [_vm("i-1")]

    def denied(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
        raise ScopeFailed("denied", "AccessDenied", "not allowed")
        yield []

    def planner(node: Node) -> tuple[list[Scope], list[object]]:
        listing = pages if node.id == "dc" else denied
        return [Scope(node_id=node.id, source="aws", kind="vm", scope="r1", pages=listing)], []

    real = inventory.scan.Scanner

    class FixedScanner(real):  # type: ignore[misc, valid-type]
        def __init__(self, engine: sa.Engine, **options: object) -> None:
            super().__init__(engine, planner=planner, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(inventory.scan, "Scanner", FixedScanner)


def test_scan_summary_in_both_languages(fixed_scopes: None) -> None:
    zh = invoke("--lang", "zh", "scan", "--node", "dc")
    en = invoke("--lang", "en", "scan", "--node", "dc")

    assert zh.exit_code == en.exit_code == 0, zh.output + en.output
    for wording in ("扫描批次", "节点", "范围数", "失败", "条目数", "新增", "变更", "消失"):
        assert wording in zh.stdout, wording
    assert "dc/aws/vm/r1：成功，1 条" in zh.stderr
    for wording in ("scan run", "Node", "Scopes", "Failed", "Items", "New", "Changed", "Gone"):
        assert wording in en.stdout, wording
    assert "dc/aws/vm/r1: ok, 1 items" in en.stderr


def test_failed_scan_is_reported_in_both_languages(fixed_scopes: None) -> None:
    zh = invoke("--lang", "zh", "scan", "--node", "room")
    en = invoke("--lang", "en", "scan", "--node", "room")

    assert zh.exit_code == en.exit_code == 1
    assert (
        "room/aws/vm/r1：被拒绝（AccessDenied），原有数据全部保留（失败前已列出 0 条）。"
        in zh.stderr
    )
    assert "。访问被拒绝：" in zh.stderr
    assert "详情：not allowed" in zh.stderr
    assert "1 个范围扫描失败，其原有数据保持不变" in zh.stderr
    assert (
        "room/aws/vm/r1: denied AccessDenied; kept every row it had (0 listed before it failed)"
        in en.stderr
    )
    assert "Access denied: check" in en.stderr and "Detail: not allowed" in en.stderr
    assert "1 scope(s) failed; their rows were kept as they were" in en.stderr


def test_fixed_error_messages_are_translated(settings: Settings) -> None:
    zh = invoke("--lang", "zh", "scan")
    en = invoke("--lang", "en", "scan")

    assert zh.exit_code == en.exit_code == 2
    assert "错误：" in zh.stderr and "尚未定义节点" in zh.stderr
    assert "error:" in en.stderr and "no nodes defined yet" in en.stderr


# --- registry, nodes ----------------------------------------------------------------------


def test_registry_and_nodes_tables_in_both_languages(estate: Settings) -> None:
    zh_systems = invoke("--lang", "zh", "registry", "list").stdout
    en_systems = invoke("--lang", "en", "registry", "list").stdout
    zh_nodes = invoke("--lang", "zh", "nodes", "list").stdout
    en_nodes = invoke("--lang", "en", "nodes", "list", "--format", "md").stdout

    assert "已登记系统" in zh_systems and "系统编码" in zh_systems and "生命周期" in zh_systems
    assert "registered systems" in en_systems and "System code" in en_systems
    assert "云节点" in zh_nodes and "节点类型" in zh_nodes and "属一朵云" in zh_nodes
    assert "| Node | Node name | Node level | Unified cloud |" in en_nodes


# --- the language itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--lang", "fr", "report", "adoption"),
        ("report", "adoption", "--lang", "fr"),
        ("report", "violations", "--lang", "de"),
        ("report", "html", "--lang", "jp"),
    ],
)
def test_unknown_lang_option_is_refused(settings: Settings, args: tuple[str, ...]) -> None:
    result = invoke(*args)

    assert result.exit_code == 2
    # The language asked for is unknown, so the refusal is in the locale's (here zh).
    assert "'--lang' 的取值无效" in result.output
    assert "'zh'" in result.output and "'en'" in result.output
    assert "'zh'" in result.output and "'en'" in result.output


@pytest.mark.parametrize(
    ("locale", "message"),
    [
        ("en_US.UTF-8", "YIYUN_LANG is wrong: unknown language 'fr', use zh or en"),
        ("zh_CN.UTF-8", "YIYUN_LANG 设置有误：未知语言 'fr'，请使用 zh 或 en"),
    ],
)
def test_unknown_yiyun_lang_is_refused_in_the_locale_language(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, db_url: str, locale: str, message: str
) -> None:
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", locale)
    monkeypatch.setenv("YIYUN_LANG", "fr")
    set_settings(Settings(database_url=db_url))

    for args in (("report", "adoption"), ("scan",), ("migrate", "status")):
        result = invoke(*args)

        assert result.exit_code == 2, args
        assert message in result.stderr, args
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("lang", "expected", "absent"),
    [
        ("zh", ["部门云", "在用"], ["department_cloud", "active"]),
        ("en", ["department cloud", "active"], []),
    ],
)
def test_node_levels_and_lifecycles_read_as_words_in_tables(
    estate: Settings, lang: str, expected: list[str], absent: list[str]
) -> None:
    # Codes are for JSON and CSV; a table shows a node's level and a system's lifecycle by name.
    shown = (
        invoke("--lang", lang, "nodes", "list").output
        + invoke("--lang", lang, "registry", "list").output
    )
    for words in expected:
        assert words in shown, words
    for code in absent:
        assert code not in shown, code
    machine = invoke("nodes", "list", "-f", "json").output
    assert "department_cloud" in machine
