"""--help in the reader's language: the tree's help texts and Typer's headings from the catalogs."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import typer.rich_utils
from rich.text import Text
from typer.core import TyperGroup
from typer.main import _click

from inventory.i18n import argv_lang, help_text, text

Command = _click.Command
Parameter = _click.Parameter

# Typer's own wording, read from rich_utils' module globals each time a help page or a usage
# error is drawn: setting them is the only hook Typer offers (it calls gettext with no
# catalog of its own). Each maps to a message of the cli domain.
_TYPER_WORDING = {
    "ARGUMENTS_PANEL_TITLE": "cli_help_arguments",
    "OPTIONS_PANEL_TITLE": "cli_help_options",
    "COMMANDS_PANEL_TITLE": "cli_help_commands",
    "ERRORS_PANEL_TITLE": "cli_help_error",
    "ABORTED_TEXT": "cli_help_aborted",
    "RICH_HELP": "cli_help_try",
    "DEFAULT_STRING": "cli_help_default",
    "ENVVAR_STRING": "cli_help_envvar",
    "REQUIRED_LONG_STRING": "cli_help_required",
    "DEPRECATED_STRING": "cli_help_deprecated",
}
# The English originals, to put back when the next run is in English (tests run many).
_TYPER_ENGLISH = {name: getattr(typer.rich_utils, name) for name in _TYPER_WORDING}


# The usage line's placeholders (`yiyun [OPTIONS] COMMAND [ARGS]...`).
_METAVARS = {
    "options_metavar": "cli_help_options_metavar",
    "subcommand_metavar": "cli_help_subcommand_metavar",
}
_DEFAULT_METAVARS = {"options_metavar": "[OPTIONS]", "subcommand_metavar": "COMMAND [ARGS]..."}


class _FoldingHighlighter(typer.rich_utils.OptionHighlighter):
    """Typer's highlighter, and help text that folds at the column's edge.

    Rich breaks lines only at spaces and cuts a longer "word" with an ellipsis; a Chinese
    sentence has no spaces, so its help was cut off. Folding breaks it between characters,
    which is where Chinese breaks anyway; English words never reach the fold.
    """

    def highlight(self, text: Text) -> None:
        super().highlight(text)
        text.overflow = "fold"


class _LocalizedFormatter(_click.HelpFormatter):
    """Click's formatter with the usage line's "Usage:" in the reader's language."""

    usage_prefix = "Usage: "

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, self.usage_prefix if prefix is None else prefix)


def _context_class(lang: str) -> type[_click.Context]:
    formatter = type(
        "LocalizedFormatter", (_LocalizedFormatter,), {"usage_prefix": text("cli_help_usage", lang)}
    )
    return type("LocalizedContext", (_click.Context,), {"formatter_class": formatter})


def commands(root: Command) -> Iterator[tuple[str, Command]]:
    """Every command of the tree with its path (`yiyun migrate plan create`), root first."""
    stack: list[tuple[str, Command]] = [(root.name or "yiyun", root)]
    while stack:
        path, command = stack.pop(0)
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            stack.append((f"{path} {name}", sub))


def parameters(command: Command) -> list[Parameter]:
    """The command's parameters, --help included (Click makes that one on first use)."""
    help_option = command.get_help_option(command.context_class(command))
    return [*command.params, *([help_option] if help_option else [])]


def _english(thing: object, attribute: str) -> str | None:
    """The English text of `thing.attribute`, as the code wrote it before any translation."""
    originals: dict[str, str | None] = thing.__dict__.setdefault("_yiyun_english", {})
    if attribute not in originals:
        originals[attribute] = getattr(thing, attribute, None)
    return originals[attribute]


def help_texts(root: Command) -> Iterator[tuple[str, str]]:
    """Every English help text of the tree, with where it is (for the catalog test)."""
    for path, command in commands(root):
        for attribute in ("help", "short_help", "epilog"):
            english = _english(command, attribute)
            if english:
                yield path, english
        for parameter in parameters(command):
            english = _english(parameter, "help")
            if english:
                yield f"{path} {parameter.name}", english


def localize(root: Command, lang: str) -> None:
    """Put every help text of the tree and Typer's headings into `lang`."""
    context_class = _context_class(lang)
    for _path, command in commands(root):
        command.context_class = context_class
        for attribute, key in _METAVARS.items():
            english = _english(command, attribute)
            # Only Click's own placeholders: a metavar the code chose is a name, kept as is.
            if english == _DEFAULT_METAVARS[attribute]:
                setattr(command, attribute, english if lang == "en" else text(key, lang))
        for attribute in ("help", "short_help", "epilog"):
            english = _english(command, attribute)
            if english:
                setattr(command, attribute, help_text(english, lang))
        for parameter in parameters(command):
            english = _english(parameter, "help")
            if english:
                parameter.help = help_text(english, lang)  # type: ignore[attr-defined]
    # Typer calls this module global on every help text it draws: the only hook for overflow.
    typer.rich_utils.highlighter = _FoldingHighlighter()
    for name, key in _TYPER_WORDING.items():
        wording = _TYPER_ENGLISH[name] if lang == "en" else text(key, lang)
        setattr(typer.rich_utils, name, wording)


# Typer's bundled Click words its usage errors in English f-strings, with no gettext hook:
# the messages a person meets are matched here and worded by the catalog (cli domain). A
# message not listed stays English, never wrong.
_USAGE_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), key)
    for pattern, key in (
        (
            r"Missing option (?P<name>'[^']+'(?: / '[^']+')*)\.(?P<rest>.*)",
            "cli_err_missing_option",
        ),
        (r"Missing argument (?P<name>'[^']+')\.(?P<rest>.*)", "cli_err_missing_argument"),
        (r"Missing parameter: (?P<name>\S+)", "cli_err_missing_parameter"),
        (r"Missing command\.", "cli_err_missing_command"),
        (r"No such command (?P<name>'[^']+')\.(?P<rest>.*)", "cli_err_no_command"),
        (r"No such option: (?P<name>\S+)(?P<rest>.*)", "cli_err_no_option"),
        (r"No such option (?P<name>'[^']+')\.(?P<rest>.*)", "cli_err_no_option"),
        (r"Option (?P<name>'[^']+') requires an argument\.", "cli_err_needs_value"),
        (r"Option (?P<name>'[^']+') requires (?P<count>\d+) arguments\.", "cli_err_needs_values"),
        (r"Option (?P<name>'[^']+') does not take a value\.", "cli_err_takes_no_value"),
        (r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)", "cli_err_extra_arguments"),
        (
            r"Invalid value for (?P<name>'[^']+'(?: / '[^']+')*): (?P<detail>.*)",
            "cli_err_invalid_value",
        ),
        (r"Invalid value: (?P<detail>.*)", "cli_err_invalid"),
    )
)
# The detail inside "Invalid value for …: DETAIL" (Click's type checks).
_VALUE_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), key)
    for pattern, key in (
        (r"(?P<value>'.*') is not one of (?P<choices>.*)\.", "cli_err_not_one_of"),
        (r"(?P<value>'.*') is not (?P<choices>'[^']*')\.", "cli_err_not_one_of"),
        (r"(?P<value>'.*') is not a valid integer( range)?\.", "cli_err_not_integer"),
        (r"(?P<value>'.*') is not a valid float( range)?\.", "cli_err_not_number"),
        (r"(?P<value>'.*') is not a valid boolean.*", "cli_err_not_boolean"),
        (r"(?P<value>'.*') does not match the formats? (?P<formats>.*)\.", "cli_err_not_date"),
        (r"(?P<value>\S+) is not in the range (?P<range>.*)\.", "cli_err_out_of_range"),
        (r"(?P<what>File|Path|Directory) (?P<value>'.*') does not exist\.", "cli_err_no_file"),
        (r"(?P<what>File|Path|Directory) (?P<value>'.*') is a directory\.", "cli_err_is_dir"),
    )
)
_SUGGESTION = re.compile(
    r"\s*(?:\(Possible options: (?P<many>[^)]*)\)|Did you mean (?P<one>[^?]+)\?)\s*"
)


def usage_error_text(message: str, lang: str) -> str:
    """A usage error of Click's in `lang`: the message as worded by the catalog, else as is."""
    if lang == "en":
        return message
    for pattern, key in _USAGE_ERRORS:
        match = pattern.fullmatch(message.strip())
        if match is None:
            continue
        fields = {name: value or "" for name, value in match.groupdict().items()}
        rest = fields.pop("rest", "")
        if "detail" in fields:
            fields["detail"] = _value_error_text(fields["detail"], lang)
        worded = text(key, lang, **fields)
        suggestion = _SUGGESTION.fullmatch(rest) if rest.strip() else None
        if suggestion is not None:
            names = suggestion.group("many") or suggestion.group("one") or ""
            worded += text("did_you_mean", lang, names=names)
        elif rest.strip():
            worded += " " + rest.strip()
        return worded
    return message


def _value_error_text(detail: str, lang: str) -> str:
    # Typer's enum check reports through pydantic-style "Value error, …".
    detail = detail.removeprefix("Value error, ")
    for pattern, key in _VALUE_ERRORS:
        match = pattern.fullmatch(detail.strip())
        if match is not None:
            fields = {name: value or "" for name, value in match.groupdict().items()}
            fields.pop("what", None)
            return text(key, lang, **fields)
    return detail


_rich_format_error = typer.rich_utils.rich_format_error


def _install_usage_errors(lang: str) -> None:
    """Route Typer's error panel through usage_error_text for this run's language."""

    def rich_format_error(error: Any) -> None:
        english = error.format_message()
        worded = usage_error_text(english, lang)
        if worded != english:
            error.format_message = lambda: worded
        _rich_format_error(error)

    # Typer imports rich_utils and calls this attribute when a usage error ends the run.
    typer.rich_utils.rich_format_error = rich_format_error  # type: ignore[assignment]


def help_lang(args: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The language --help is drawn in: i18n.argv_lang, before Click has parsed anything."""
    return argv_lang(args, environ)


class LocalizedGroup(TyperGroup):
    """The root group: translates the tree once per run, before Click parses the arguments."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        lang = help_lang(argv)
        localize(self, lang)
        _install_usage_errors(lang)
        return super().main(argv, *rest, **extra)
