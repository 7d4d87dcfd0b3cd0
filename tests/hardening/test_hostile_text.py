"""Data is text, never markup: names from the register and words from a source print as
themselves in every format, never as Rich markup, Markdown, HTML or terminal control."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import os
import pty
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from select import select as readable
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from sqlmodel import Session, col, select

from inventory.collectors.base import OK, ResourceRow, Scope, ScopeStats
from inventory.models import Node, Resource, ScanRun, ScopeResult
from inventory.output import Format, md_cell, render_rows, unescape_formula, visible
from inventory.scan import Scanner, ScopeOutcome
from inventory.sim import aws as sim_aws
from inventory.sim import k8s as sim_k8s
from inventory.sim.faults import FaultProxy
from tests.hardening.conftest import FUZZ_EXAMPLES, YIYUN, Cli, isolated_env
from tests.hardening.rig import SYSTEM_TAG, k8s_status

# What people type into a register and what a source puts in a name: Rich markup, Markdown
# and HTML, an escape sequence that clears the screen, a line break, an RTL override.
NAMES = {
    "JS-T1": "系统[/bold]",
    "JS-T2": "<script>alert(1)</script>",
    "JS-T3": "第一行\n第二行",
    "JS-T4": "清屏\x1b[2J :warning: a|b `c` # d",
    "JS-T5": "\u202e名称倒置 [link=https://evil.example]点此[/link]",
}
CLEAR_SCREEN = "\x1b[2J"
# Every character a terminal or a Markdown viewer obeys rather than shows (a tab is neither).
OBEYED = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Rich's own colours under a terminal: the only escape sequences output may carry.
SGR = re.compile(r"\x1b\[[0-9;]*m")
CSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


# --- reading what the formats printed ----------------------------------------------------


def md_cells(line: str) -> list[str]:
    """A Markdown table row split the way a GFM viewer splits it (a backslash escapes the next
    character, an unescaped pipe ends a cell), each cell read back to the text it shows."""
    assert line.startswith("| ") and line.endswith(" |"), line
    cells, current, escaped = [], "", False
    for char in line[2:-2]:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == "|":
            cells.append(current)
            current = ""
        else:
            # Anything a viewer would read as markup must have come escaped.
            assert char not in "<>`*_[]~", f"unescaped {char!r} in {line!r}"
            current += char
    assert not escaped, line
    cells.append(current)
    # " | " separates cells: the spaces are the row's, not the cell's.
    shown = [cells[0]] + [cell[1:] for cell in cells[1:]]
    shown = [cell[:-1] for cell in shown[:-1]] + [shown[-1]]
    return [html.unescape(cell) for cell in shown]


def md_table(text: str, columns: int) -> list[list[str]]:
    """The data rows of a Markdown table: one line per row, each with `columns` cells."""
    lines = text.split("\n")
    assert lines[-1] == "", "the table ends with a line break"
    lines = lines[:-1]
    assert lines[1] == "|" + "---|" * columns
    rows = [md_cells(line) for line in [lines[0], *lines[2:]]]
    assert all(len(row) == columns for row in rows), rows
    return rows[1:]


def csv_rows(text: str) -> list[dict[str, str]]:
    return [
        {key: unescape_formula(value) for key, value in row.items()}
        for row in csv.DictReader(io.StringIO(text, newline=""))
    ]


def terminal_text(text: str) -> str:
    """What a table printed under a terminal shows, without Rich's own colours."""
    plain = SGR.sub("", text)
    assert "\x1b" not in plain, "an escape sequence from the data reached the terminal"
    assert not OBEYED.search(plain.replace("\n", "")), "a control character reached the terminal"
    return plain


# --- the register: registry list ---------------------------------------------------------


def write_register(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["system_code", "name", "department_code", "department", "city", "classified",
             "mlps_level"]
        )  # fmt: skip
        for code, name in NAMES.items():
            writer.writerow([code, name, "JS-D", "省数据局", "南京", "no", "2"])
    return path


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich believes it writes to a wide terminal (it parses and colours as on a TTY)."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


def test_register_names_print_as_themselves_in_every_format(
    cli: Cli, engine: sa.Engine, db_url: str, tmp_path: Path, terminal: None
) -> None:
    register = write_register(tmp_path / "register.csv")
    code, out, err = cli("--db", db_url, "registry", "import", str(register))
    assert code == 0, out + err

    outputs = {}
    for fmt in Format:
        code, out, err = cli("--db", db_url, "--lang", "en", "registry", "list", "--format", fmt)
        assert code == 0, err
        outputs[fmt] = out

    # Machines get the data unchanged.
    assert {r["code"]: r["name"] for r in json.loads(outputs[Format.json])} == NAMES
    assert {r["code"]: r["name"] for r in csv_rows(outputs[Format.csv])} == NAMES
    # People see it literally: markup unparsed, the escape sequence and line break shown.
    table = terminal_text(outputs[Format.table])
    for name in NAMES.values():
        assert visible(name) in table, (name, table)
    assert "␛[2J" in table and "第一行␊第二行" in table and "\\u202e" in table
    # Markdown: one line per system, every name read back as written (its controls shown),
    # no HTML a viewer would run.
    md = outputs[Format.md]
    assert "<script>" not in md and CLEAR_SCREEN not in md
    rows = md_table(md, columns=7)
    assert {row[0]: row[1] for row in rows} == {c: visible(n) for c, n in NAMES.items()}


# --- a source's names: report violations --------------------------------------------------

VM_NAME = "[/bold]"
# EC2 answers in XML, which cannot carry an escape character: the scan test sends one.
ORPHAN_NAME = "<script>alert(1)</script>\n第二行 `x` |y|"


def write_frozen_node(path: Path, endpoint: str) -> Path:
    node = {
        "id": "edu-dc",
        "name": "省教育厅部门云",
        "level": "department_cloud",
        "one_cloud": False,
        "owner_department": "JS-D",
        "frozen_since": "2020-01-01",
        "sources": [
            {"id": "aws", "kind": "aws", "endpoint_url": endpoint, "regions": ["us-east-1"]}
        ],
    }
    path.write_text(yaml.safe_dump({"nodes": [node]}, allow_unicode=True), encoding="utf-8")
    return path


def test_resource_names_from_a_source_print_as_themselves_in_every_format(
    cli: Cli, engine: sa.Engine, db_url: str, moto: str, tmp_path: Path, terminal: None
) -> None:
    # VMs launched after the freeze, named by their Name tag; one of them unattributed.
    sim_aws.seed_instances(moto, "us-east-1", tags={"Name": VM_NAME, SYSTEM_TAG: "JS-T1"})
    sim_aws.seed_instances(moto, "us-east-1", tags={"Name": ORPHAN_NAME})
    node_file = write_frozen_node(tmp_path / "nodes.yaml", moto)
    code, out, err = cli("--db", db_url, "--config", str(node_file), "scan")
    assert code == 0, out + err

    for details in ([], ["--details"]):
        outputs = {}
        for fmt in Format:
            args = ["report", "violations", "--lang", "en", "--format", fmt, *details]
            code, out, err = cli("--db", db_url, *args)
            assert code == 1, err  # a freeze-rule violation exists
            outputs[fmt] = out
        # Both were launched after the freeze; --details lists the unattributed one again.
        names = {VM_NAME, ORPHAN_NAME}
        assert {r["name"] for r in json.loads(outputs[Format.json]) if r["name"]} == names
        assert {r["name"] for r in csv_rows(outputs[Format.csv]) if r["name"]} == names
        table = terminal_text(outputs[Format.table])
        assert all(visible(name) in table for name in names), table
        rows = md_table(outputs[Format.md], columns=9)
        assert {row[4] for row in rows if row[4]} == {visible(name) for name in names}
        assert "<script>" not in outputs[Format.md]

    # A name typed on the command line is data too: the error shows it, never parses it.
    code, _, err = cli("--db", db_url, "scan", "--node", "edu[/bold]")
    assert code == 2 and "edu[/bold]" in err


# --- a source's error message: yiyun scan under a terminal ----------------------------------

ERROR_REASON = "[/red]"
ERROR_MESSAGE = "[/red]" + CLEAR_SCREEN + "[bold]denied"


def run_under_pty(command: list[str], env: dict[str, str], *, seconds: float = 240) -> bytes:
    """Run `command` with a pseudo-terminal as its stdin, stdout and stderr, as a user at a
    terminal does (Rich shows its live progress display only there); all it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        command, env=env, stdin=follower, stdout=follower, stderr=follower, close_fds=True
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = readable([leader], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=30)
    finally:
        process.kill()
        os.close(leader)
    return output + f"\n[exit {process.returncode}]".encode()


@pytest.fixture
def k8s_estate(tmp_path: Path) -> Iterator[tuple[sim_k8s.KubernetesSimulator, FaultProxy]]:
    with sim_k8s.KubernetesSimulator() as sim, FaultProxy(sim.url) as proxy:
        for namespace in ("a", "b"):
            sim.add("namespace", sim_k8s.make_namespace(namespace, system="JS-T1"))
            sim.add("deployment", sim_k8s.make_deployment(namespace, f"web-{namespace}"))
        yield sim, proxy


def test_a_node_file_problem_shows_control_characters_instead_of_obeying_them(
    engine: sa.Engine, db_url: str, cli: Cli, tmp_path: Path
) -> None:
    """`nodes apply` prints plain lines, not through Rich: an ESC in a key of the file is shown
    as ␛ in both languages, and nothing is applied."""
    path = tmp_path / "nodes.yaml"
    path.write_text(
        "nodes:\n  - id: edu-dc\n    name: x\n    level: department_cloud\n"
        '    one_cloud: false\n    "own\\e[2Jer": 1\n    sources: []\n',
        encoding="utf-8",
    )
    for lang in ("en", "zh"):
        code, out, err = cli("--db", db_url, "--lang", lang, "nodes", "apply", str(path))
        assert code == 1, out + err
        assert "\x1b" not in out + err
        assert "own␛[2Jer" in err
    code, out, _ = cli("--db", db_url, "nodes", "list", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_scan_under_a_terminal_shows_a_source_error_as_text_and_closes_its_run(
    engine: sa.Engine,
    db_url: str,
    tmp_path: Path,
    k8s_estate: tuple[sim_k8s.KubernetesSimulator, FaultProxy],
) -> None:
    _, proxy = k8s_estate
    # The last scope to list (one at a time) is refused with markup and an escape sequence in
    # the API's own Status: its line is what the progress display shows when it stops.
    proxy.respond(
        lambda request: request.path == "/api/v1/namespaces/b/resourcequotas",
        403,
        k8s_status(403, ERROR_REASON, ERROR_MESSAGE),
        headers={"Content-Type": "application/json"},
    )
    kubeconfig = sim_k8s.write_kubeconfig(tmp_path / "kubeconfig", server=proxy.url, context="k")
    source = {"id": "s", "kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": "k"}
    node = {"id": "k", "name": "k", "level": "department_cloud", "one_cloud": False,
            "sources": [{**source, "namespaces": ["a", "b"]}]}  # fmt: skip
    node_file = tmp_path / "nodes.yaml"
    node_file.write_text(yaml.safe_dump({"nodes": [node]}), encoding="utf-8")
    env = isolated_env(tmp_path, YIYUN_LANG="en", TERM="xterm-256color", COLUMNS="200")
    env.pop("NO_COLOR")
    command = [*YIYUN, "--db", db_url, "--config", str(node_file), "scan", "--concurrency", "1"]

    raw = run_under_pty(command, env)

    assert raw.endswith(b"[exit 1]"), raw[-2000:]  # a failed scope, as ever
    assert CLEAR_SCREEN.encode() not in raw, "the source's escape sequence reached the terminal"
    shown = CSI.sub(b"", raw).decode("utf-8", "replace")
    assert "Traceback" not in shown and "MarkupError" not in shown, shown
    # The code beside the status, the source's own words (markup and all, shown) as detail.
    assert "resource_quota/b: denied HTTP403;" in shown, shown
    said = "".join(f"Detail: {ERROR_REASON}: [/red]␛[2J[bold]denied".split())
    assert said in "".join(shown.split()), shown
    assert "scan run" in shown  # the summary table was printed after the display stopped
    with Session(engine) as session:
        run = session.exec(select(ScanRun).order_by(col(ScanRun.id).desc())).one()
        results = session.exec(select(ScopeResult).where(ScopeResult.run_id == run.id)).all()
        live = session.exec(select(Resource.name).where(col(Resource.kind) == "deployment"))
        assert (run.status, run.finished_at is not None) == ("failed", True)
        assert len(results) == len(run.planned or []) == 16
        failed = [r for r in results if r.status != OK]
        assert [(r.kind, r.scope, r.error_code) for r in failed] == [
            ("resource_quota", "b", "HTTP403")
        ]
        assert set(live) == {"web-a", "web-b"}  # every other scope listed


# --- the orchestrator: a display that fails costs nothing ---------------------------------


def test_a_progress_display_that_fails_costs_the_scan_nothing(engine: sa.Engine) -> None:
    node = Node(
        id="edu-dc", name="edu", level="department_cloud", one_cloud=False, sources=[{"id": "aws"}]
    )

    def pages(region: str) -> Any:
        def listing(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
            stats.pages += 1
            yield [ResourceRow(kind="vm", native_id=f"i-{region}", scope=region, name="[/b]")]

        return listing

    scopes = [
        Scope(node_id="edu-dc", source="aws", kind="vm", scope=f"r{n}", pages=pages(f"r{n}"))
        for n in range(3)
    ]
    shown: list[str] = []

    def display(outcome: ScopeOutcome) -> None:
        shown.append(outcome.scope)
        raise RuntimeError("the terminal went away")

    summary = Scanner(engine, on_scope_done=display, planner=lambda n: (scopes, [])).run([node])

    assert summary.ok and sorted(shown) == ["r0", "r1", "r2"]
    with Session(engine) as session:
        run = session.exec(select(ScanRun)).one()
        assert (run.status, run.finished_at is not None) == ("ok", True)


# --- every renderer, fuzzed ----------------------------------------------------------------

FUZZ = settings(
    max_examples=3 * FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOSTILE = [
    "[/bold]", "[bold]未闭合", "[link=https://evil.example]点此[/link]", ":warning: :smile:",
    "\x1b[2J\x1b[H", "\x1b]0;标题\x07", "\x9b31m", "a\rb", "第一行\n第二行", "\r\n| x | y |",
    "a|b", "a\\|b", "尾反斜杠\\", "<script>alert(1)</script>", "&lt;&amp;", "`code` **粗**",
    "# 标题", "- 列表", "---", "\u202e倒置\u202c", "\u2066隔离", "行\u2028分隔", "\x85NEL",
    "=1+1", "'=1+1", "''-2", "@SUM(A1)", "\t缩进", "𠀀𪚥", "👨‍👩‍👧 e\u0301", "  ",
]  # fmt: skip
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
    st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=4).map("".join),
    st.integers(min_value=100, max_value=3000).map(lambda n: "长" * n),
)
COLUMNS = ("system_code", "system_name", "count", "classified", "created")


@st.composite
def hostile_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [
        {
            "system_code": draw(hostile_text),
            "system_name": draw(hostile_text),
            "count": draw(st.integers(min_value=0, max_value=10**6)),
            "classified": draw(st.booleans()),
            "created": draw(st.none() | st.just(date(2024, 3, 5))),
        }
        for _ in range(draw(st.integers(min_value=1, max_value=3)))
    ]


def printed(fmt: Format, rows: list[dict[str, Any]], *, lang: str | None, width: int) -> str:
    stdout = io.StringIO()
    console = Console(file=stdout, force_terminal=True, width=width)
    with contextlib.redirect_stdout(stdout):
        render_rows(
            rows,
            COLUMNS,
            fmt,
            title=rows[0]["system_name"],
            console=console,
            lang=lang,
            # A heading that is data (a wave's or a plan's name) is escaped like a cell.
            headings={"system_name": rows[-1]["system_code"] or "-"},
        )
    return stdout.getvalue()


@FUZZ
@given(
    rows=hostile_rows(),
    lang=st.sampled_from([None, "zh", "en"]),
    width=st.sampled_from([20, 80, 250]),
)
def test_hostile_values_render_in_every_format(
    rows: list[dict[str, Any]], lang: str | None, width: int
) -> None:
    names = [(row["system_code"], row["system_name"]) for row in rows]

    machine = json.loads(printed(Format.json, rows, lang=lang, width=width))
    assert [(r["system_code"], r["system_name"]) for r in machine] == names
    spreadsheet = csv_rows(printed(Format.csv, rows, lang=lang, width=width))
    assert [(r["system_code"], r["system_name"]) for r in spreadsheet] == names

    table = terminal_text(printed(Format.table, rows, lang=lang, width=width))
    # Short as shown: a control character shows as its escape ("\u2028"), six cells wide.
    shown = (v for pair in names for v in pair)
    short = [n for n in shown if cell_len(visible(n)) <= 20 and n.strip()]
    if width == 250:  # wide enough that no short value wraps: each is there, literally
        for value in short:
            if "\t" not in value:
                assert visible(value).strip() in table, (value, table)

    md = printed(Format.md, rows, lang=lang, width=width)
    md_rows = md_table(md, columns=len(COLUMNS))
    assert [(row[0], row[1]) for row in md_rows] == [(visible(c), visible(n)) for c, n in names]


@FUZZ
@given(keys=st.lists(hostile_text, min_size=1, max_size=3), stale=hostile_text)
def test_hostile_group_keys_render_in_the_adoption_report(
    keys: list[str], stale: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commands.report import _print_md, print_adoption_table

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    counts = {
        "on_cloud": 1, "exempt": 0, "partial": 0, "off_cloud": 1, "no_evidence": 0,
        "classified_excluded": 0, "retired_excluded": 0,
    }  # fmt: skip
    group = {"numerator": 1, "denominator": 2, "rate": 0.5, "counts": counts}
    report = {
        "policy": "evidence-v2", "as_of": "2026-11-26T08:00:00Z", **group, "by": "department",
        "groups": [{"key": key, **group} for key in keys],
        "stale_nodes": [stale], "expired_scopes": [stale],
    }  # fmt: skip
    for lang in ("zh", "en"):
        table, md = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(table):
            print_adoption_table(report, lang)
        terminal_text(table.getvalue())
        with contextlib.redirect_stdout(md):
            _print_md(report, lang)
        lines = md.getvalue().split("\n")
        first = next(n for n, line in enumerate(lines) if line.startswith("| "))
        body = "\n".join(lines[first : first + 2 + len(keys)]) + "\n"
        assert [row[0] for row in md_table(body, columns=11)] == [visible(k) for k in keys]
        notes = "\n".join(lines[first + 2 + len(keys) :])
        assert notes.count("\n") == 4 and md_cell(stale) in notes
