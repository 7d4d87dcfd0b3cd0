"""Ctrl-C while yiyun starts: one line and exit 130, never a traceback from an import."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

# The README's exit-code table: 130 is a command stopped with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _argv_lang(argv: list[str]) -> str | None:
    """The --lang given on the command line, read before the options are parsed."""
    for index, arg in enumerate(argv):
        if arg == "--lang" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return None


def interrupted_line(argv: list[str]) -> str:
    """ "Interrupted" in the language the command line asks for (else YIYUN_LANG, the locale)."""
    from inventory.reporting.i18n import UnknownLanguage, resolve_lang, text

    try:
        lang = resolve_lang(_argv_lang(argv), os.environ.get("YIYUN_LANG"))
    except UnknownLanguage:
        lang = resolve_lang(None, None)
    prefix = text("error_prefix", lang)
    # A full-width colon carries its own space, as in every other error line.
    gap = "" if prefix.endswith("：") else " "
    return prefix + gap + text("err_interrupted", lang)


def say_interrupted() -> None:
    os.write(2, f"\n{_LINE}\n".encode())


def _leave(_signum: int, _frame: FrameType | None) -> None:
    say_interrupted()
    os._exit(EXIT_INTERRUPTED)


def started() -> None:
    """Start-up is over: Ctrl-C is a KeyboardInterrupt again, so a command cleans up (a scan
    closes its run) and `cli.main` says it in one line."""
    if _previous is not None:
        signal.signal(signal.SIGINT, _previous)


# Imported first by cli.py: until `started()`, Ctrl-C ends the process with one line and exit
# 130. While modules are being imported a KeyboardInterrupt would unwind through them with a
# traceback; nothing has been written yet, so leaving at once loses nothing.
_LINE = interrupted_line(sys.argv[1:])
_previous = (
    signal.signal(signal.SIGINT, _leave)
    if threading.current_thread() is threading.main_thread()
    else None
)
