"""On an 80-column terminal a command is never broken across lines, and `report scans` reads."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from inventory.i18n import messages
from inventory.output import Commands, message_text

COMMAND = re.compile(r"`[^`\n]+`")


def printed(renderable: object, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def _commands_whole(message: str, shown: str, width: int = 80) -> None:
    lines = shown.splitlines()
    for command in COMMAND.findall(message):
        if cell_len(command) <= width:
            assert any(command in line for line in lines), (command, shown)
    # Nothing lost or added but line breaks and the spaces at them.
    assert "".join(shown.split()) == "".join(message.split())


def test_every_catalog_command_prints_whole_at_80_columns() -> None:
    for lang in ("zh", "en"):
        for wording in messages(lang).values():
            if "`yiyun " not in wording:
                continue
            # Long values in every field, as a real path or node list would be.
            filled = re.sub(r"\{[a-z_]+\}", "js-nanjing-backbone-01", wording)
            _commands_whole(filled, printed(message_text(filled)))


words = st.text(alphabet="abcdefghij江苏省教育厅节点，。", min_size=1, max_size=12)


@given(
    before=st.lists(words, max_size=12),
    command=st.lists(st.text(alphabet="abcdef-", min_size=1, max_size=10), min_size=1, max_size=6),
    after=st.lists(words, max_size=8),
    width=st.integers(min_value=30, max_value=120),
)
def test_a_command_in_any_message_stays_on_one_line(
    before: list[str], command: list[str], after: list[str], width: int
) -> None:
    typed = "`yiyun " + " ".join(command) + "`"
    message = " ".join(before) + typed + " ".join(after)
    shown = printed(message_text(message), width)
    _commands_whole(message, shown, width)
    if cell_len(typed) > width:
        # Too wide for any line: broken between its words only, each piece whole.
        pieces = [line for line in shown.splitlines() if line.strip()]
        assert any(line.lstrip().startswith("`yiyun") for line in pieces), shown


def test_commands_fit_80_columns_or_continue_with_a_backslash() -> None:
    long = (
        "yiyun --db sqlite:////srv/yiyun/a-rather-long-folder/.demo/yiyun.db"
        " report adoption --format json"
    )
    shown = printed(
        Commands(
            [
                (
                    "yiyun --db sqlite:///.demo/yiyun.db exporter serve",
                    "then curl 127.0.0.1:9464/metrics",
                ),
                (long, None),
            ]
        )
    )
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines), shown
    assert "curl 127.0.0.1:9464/metrics" in shown
    # The continued command is the same command once its continuations are joined.
    joined = " ".join(line.strip().removesuffix("\\").strip() for line in lines[-2:])
    assert joined == long
    assert lines[-2].endswith(" \\")
