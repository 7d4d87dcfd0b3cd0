"""One spelling of the output format across the report and list commands: -f/--format."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from cli import app


# Typer may carry a click of its own: commands are looked at by what they have, not by class.
def _command(path: tuple[str, ...]) -> Any:
    command = typer.main.get_command(app)
    for name in path:
        assert hasattr(command, "commands"), path
        command = command.commands[name]
    return command


def _subcommands(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [(*path, name) for name in sorted(_command(path).commands)]


def _option(command: Any, name: str) -> Any:
    return next(
        (p for p in command.params if p.param_type_name == "option" and name in p.opts), None
    )


def _every_command(path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not hasattr(_command(path), "commands"):
        return [path]
    return [found for sub in _subcommands(path) for found in _every_command(sub)]


REPORTS = _subcommands(("report",))
# Every command that prints rows in a choice of formats: the list commands of nodes,
# registry and migrate among them.
FORMATTED = [path for path in _every_command() if _option(_command(path), "--format")]


def test_every_report_command_is_checked() -> None:
    names = {path[-1] for path in REPORTS}
    assert {"adoption", "violations", "scans", "html", "xlsx", "scorecard"} <= names
    assert {("nodes", "list"), ("registry", "list"), ("migrate", "plan", "list")} <= set(FORMATTED)


@pytest.mark.parametrize("path", sorted(set(REPORTS) | set(FORMATTED)), ids=" ".join)
def test_format_is_spelled_f_and_format(path: tuple[str, ...]) -> None:
    command = _command(path)
    short, long = _option(command, "-f"), _option(command, "--format")
    assert long is not None, f"yiyun {' '.join(path)} has no --format"
    assert short is long, f"yiyun {' '.join(path)}: -f is not --format"


@pytest.mark.parametrize("path", [p for p in REPORTS if p[-1] in ("html", "xlsx", "scorecard")])
def test_reports_that_write_files_take_o_for_output(path: tuple[str, ...]) -> None:
    command = _command(path)
    short, long = _option(command, "-o"), _option(command, "--output")
    assert long is not None and short is long
