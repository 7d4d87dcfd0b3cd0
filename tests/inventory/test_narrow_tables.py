"""Tables at 80 columns: no value cut to "…"; a table too wide folds its cells or shows one
record per block, and every cell's full text is there (modulo line folds)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from inventory.output import Format, column_widths, render_rows, unbroken_width

words = st.text(
    alphabet="abcdefgh-0123江苏省教育厅冻结节点新建资源（）：；", min_size=1, max_size=40
)
values = st.lists(words, min_size=0, max_size=4).map(" ".join)
COLUMNS = ("rule", "node", "kind", "native_id", "name", "basis")


def rendered(rows: list[dict[str, Any]], width: int) -> str:
    stdout = io.StringIO()
    console = Console(file=stdout, width=width, color_system=None)
    with contextlib.redirect_stdout(stdout):
        render_rows(
            rows,
            COLUMNS,
            Format.table,
            title="策略违规",
            console=console,
            lang="zh",
            headings={"name": "资源名称"},
        )
    return stdout.getvalue()


def flat(value: str) -> str:
    return "".join(value.split())


def table_columns(shown: str) -> list[str] | None:
    """Each column's text, top to bottom, without spaces; None when not a table."""
    body = [line for line in shown.splitlines() if line.startswith("│")]
    if not body:
        return None
    return [
        "".join(flat(part) for part in column)
        for column in zip(*(line.split("│")[1:-1] for line in body), strict=True)
    ]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.fixed_dictionaries({c: values for c in COLUMNS}), min_size=1, max_size=5),
    width=st.sampled_from([80, 120]),
)
def test_every_cell_is_shown_whole_at_80_and_120_columns(
    rows: list[dict[str, Any]], width: int
) -> None:
    shown = rendered(rows, width)
    assert "…" not in shown
    assert all(len(line) <= width for line in shown.splitlines())
    columns = table_columns(shown)
    if columns is not None:
        assert columns == ["".join(flat(row[c]) for row in rows) for c in COLUMNS], shown
    else:  # one record per block: each value whole, the blocks in order
        said = flat(shown)
        at = 0
        for row in rows:
            for c in COLUMNS:
                if flat(row[c]):
                    found = said.find(flat(row[c]), at)
                    assert found >= 0, (row[c], shown)
                    at = found


def test_a_table_that_fits_is_a_table_and_one_that_cannot_is_blocks() -> None:
    row = {"rule": "冻结节点新建资源", "node": "hlth-dc", "kind": "deployment",
           "native_id": "18a71ab3-1549-4991-aaa8-baea19a879f9", "name": "js-hlth-005",
           "basis": "资源自身创建时间"}  # fmt: skip
    assert table_columns(rendered([row], 200)) is not None
    narrow = rendered([row], 80)
    assert table_columns(narrow) is None
    assert "资源标识  18a71ab3-1549-4991-aaa8-baea19a879f9" in narrow


def test_columns_fold_between_words_never_inside_one() -> None:
    headings = ["规则", "判定依据"]
    cells = [
        [
            "冻结节点新建资源",
            "等保四级系统部署在三级平台 js-core（R1）；该平台没有四级专用资源池（R2）",
        ]
    ]
    widths, needed = column_widths(headings, cells, 60)
    assert widths is not None and sum(widths) + 7 <= 60
    assert widths[1] >= unbroken_width(cells[0][1])
    assert column_widths(headings, cells, needed - 1)[0] is None
