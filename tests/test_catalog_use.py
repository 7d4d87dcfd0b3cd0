"""No command module shows a person a string literal: what a reader sees goes through text()."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND_MODULES = sorted(
    {
        ROOT / "cli.py",
        # Every layer's commands live in commands/, beside cli.py (DESIGN.md, Layout).
        *(ROOT / "commands").glob("*.py"),
    }
)

# Calls whose positional arguments a person reads.
SHOWN_BY_NAME = {"print", "fail", "warn", "report_error", "_say", "echo", "secho", "SystemExit"}
SHOWN_BY_METHOD = {"print", "echo", "secho", "confirm", "prompt", "add_column", "BadParameter"}
# Keyword arguments a person reads, whatever the call (rich Table/Panel titles, column headers).
SHOWN_KEYWORDS = {"title", "caption", "header", "footer", "message", "prompt", "text"}
# Calls that fetch wording from the catalogs: what they return is already translated (and
# whatever a module imports from i18n, under any name).
CATALOG_CALLS = re.compile(r"text|help_text|.*_label|label|render")
# Calls that only wrap what they are given for display: what is inside them is shown.
WRAPPERS = {
    "message_text",
    "as_text",
    "visible",
    "Text",
    "assemble",
    "from_markup",
    "Panel",
    "Padding",
    "escape",
}

# Text a reader sees but that is no language: rich markup around translated text, URLs,
# separators, units of a format. Language means two Latin letters in a row or one Han character.
MARKUP = re.compile(r"\[/?[a-z][a-z0-9 _.#,=-]*\]")
NOT_LANGUAGE = (
    re.compile(r"https?://\S+"),  # a URL is an address, not a sentence
    re.compile(r"\b[\w.-]+\.(?:html|xlsx|csv|json|md|yaml)\b"),  # file names we write
    # A command line to type is code: `yiyun report scans` reads the same in every language
    # (up to a `#` comment, which is prose).
    re.compile(r"^\s*(?:[A-Z_]+=\S*\s+)*yiyun\b[^#\n]*", flags=re.MULTILINE),
)
WORDS = re.compile(r"[A-Za-z]{2,}|[\u4e00-\u9fff]")


def _has_words(literal: str) -> bool:
    stripped = MARKUP.sub("", literal)
    for pattern in NOT_LANGUAGE:
        stripped = pattern.sub("", stripped)
    return bool(WORDS.search(stripped))


def _literals(node: ast.expr) -> Iterator[ast.AST]:
    """The string literals that end up in what `node` shows: constants, the text of
    f-strings (not their {fields} or format specs), both sides of + and % and "…".format()."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if _has_words(node.value):
            yield node
    elif isinstance(node, ast.JoinedStr):
        words = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        if _has_words(str(words)):
            yield node
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        yield from _literals(node.left)
        if isinstance(node.op, ast.Add):
            yield from _literals(node.right)
    elif isinstance(node, ast.IfExp):
        yield from _literals(node.body)
        yield from _literals(node.orelse)
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _literals(element)
    elif isinstance(node, ast.Call):
        name, method = _name(node.func)
        if method == "format" and isinstance(node.func, ast.Attribute):
            yield from _literals(node.func.value)  # "Wrote {path}".format(...)
        elif method == "assemble":
            for argument in node.args:
                # Text.assemble(("yiyun demo", "bold"), …): a part's second element is a style.
                if isinstance(argument, ast.Tuple) and argument.elts:
                    argument = argument.elts[0]
                yield from _literals(argument)
        elif (name or method) in WRAPPERS and node.args:
            yield from _literals(node.args[0])  # message_text(message, "red"): then a style


def _name(function: ast.expr) -> tuple[str | None, str | None]:
    if isinstance(function, ast.Name):
        return function.id, None
    if isinstance(function, ast.Attribute):
        return None, function.attr
    return None, None


def bypasses(path: Path) -> list[str]:
    """file:line: literal, for every literal shown to a person without the catalog."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    catalog_names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "inventory.i18n"
        for alias in node.names
    }
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name, method = _name(node.func)
        if name in catalog_names or any(
            called and CATALOG_CALLS.fullmatch(called) for called in (name, method)
        ):
            continue
        shown: list[ast.expr] = []
        if name in SHOWN_BY_NAME or method in SHOWN_BY_METHOD:
            shown += node.args
        shown += [k.value for k in node.keywords if k.arg in SHOWN_KEYWORDS]
        for argument in shown:
            for literal in _literals(argument):
                where = f"{path.relative_to(ROOT)}:{literal.lineno}"  # type: ignore[attr-defined]
                found.append(f"{where}: {ast.unparse(literal)}")  # type: ignore[arg-type]
    return found


@pytest.mark.parametrize("path", COMMAND_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_user_facing_literal_bypasses_the_catalog(path: Path) -> None:
    assert bypasses(path) == [], "move these to a catalog (cli domain: cli_…) and call text()"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('console.print("Wrote the report")', 1),
        ('err_console.print(f"{count} systems imported")', 1),
        ('fail("no such plan: " + name, lang=lang)', 1),
        ('typer.echo("Fertig")', 1),
        ('warn("扫描失败", lang)', 1),
        ('raise typer.BadParameter("must be a date")', 1),
        ('Table(title="Systems")', 1),
        ('table.add_column("Code")', 1),
        ('console.print(message_text(f"{count} rows written"))', 1),
        ('console.print(Text.assemble(("Total", "bold"), ": ", value))', 1),
        ('console.print(Text.assemble(("yiyun demo", "bold"), ": ", intro))', 0),
        ('echo(f"  yiyun --db {url} report scans")', 0),
        ('echo(f"  AWS_PROFILE={p} yiyun --db {url} scan")', 0),
        ('err_console.print(message_text(text("node_busy", lang), "yellow"))', 0),
        ('echo(f"  yiyun exporter serve   # then curl {address}")', 1),
        ('from inventory.i18n import text as say\necho(say("k", lang))', 0),
        ('console.print("Done {n}".format(n=n))', 1),
        ('console.print(text("written", lang, path=path))', 0),
        ("console.print(f\"[bold]{text('kpi', lang)}[/bold]: {rate:.1%}\")", 0),
        ("console.print(json.dumps(rows, indent=2))", 0),
        ('console.print(", ".join(codes))', 0),
        ('console.print(f"{name} — {state_label(state, lang)}")', 0),
        ('console.print(table, style="bold red")', 0),
        ('console.print("https://grafana.example/d/yiyun")', 0),
        ('Table(title=text("systems", lang))', 0),
        ('console.print(f"  {code}: {value:>8.2f}")', 0),
    ],
)
def test_the_check_tells_shown_literals_from_the_rest(
    tmp_path: Path, source: str, expected: int
) -> None:
    # The check itself must be able to fail: each shape a bypass takes is caught, and what is
    # not language (markup, separators, URLs, format specs, catalog calls) passes.
    module = ROOT / "tests" / f"_catalog_probe_{tmp_path.name}.py"
    module.write_text(source + "\n", encoding="utf-8")
    try:
        assert len(bypasses(module)) == expected, bypasses(module)
    finally:
        module.unlink()
