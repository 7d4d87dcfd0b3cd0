"""A register that fails to read says why; UTF-16 and title rows above the headers are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.registry import parse_register

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "register" / "systems_gb18030.csv"


def sample_text() -> str:
    return SAMPLE.read_bytes().decode("gb18030")


def rendered(items: list, lang: str) -> list[str]:
    return [item.render(lang) if hasattr(item, "render") else str(item) for item in items]


@pytest.mark.parametrize("tabs", [True, False], ids=["unicode-text", "comma"])
def test_utf16_with_bom_is_detected_and_read(tmp_path: Path, tabs: bool) -> None:
    text = sample_text().replace(",", "\t") if tabs else sample_text()
    path = tmp_path / "register.csv"
    path.write_bytes(text.encode("utf-16"))
    parsed = parse_register(path)
    assert parsed.problems == []
    assert parsed.source == "UTF-16 text"
    assert [row.code for row in parsed.rows] == [row.code for row in parse_register(SAMPLE).rows]


def test_an_undecodable_file_names_the_encodings_tried(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_bytes(sample_text().encode("utf-8")[:40] + b"\xff\xff\xff" + b"\n")
    (problem,) = parse_register(path).problems
    assert "UTF-8 and GB18030" in problem.render("en")
    assert "UTF-8 和 GB18030" in problem.render("zh")


def test_title_rows_above_the_headers_are_skipped_and_said(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    title = "江苏省政务信息系统目录（2024 年）,,,\n填报日期：2024-03-01\n\n"
    path.write_text(title + sample_text(), encoding="utf-8")
    parsed = parse_register(path)
    assert parsed.problems == []
    assert len(parsed.rows) == len(parse_register(SAMPLE).rows)
    assert rendered(parsed.warnings, "zh") == ["表头在第 4 行，已跳过其上方的 2 行标题"]
    assert rendered(parsed.warnings, "en") == [
        "the headers are on row 4: skipped the 2 title row(s) above them"
    ]
    # The rows are numbered as the spreadsheet shows them.
    assert parsed.rows[0].row == 5


def test_a_file_without_headers_still_says_so(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    (problem,) = parse_register(path).problems
    assert "none of the register's headers" in str(problem)
