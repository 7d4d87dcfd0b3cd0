"""Ctrl-C while yiyun starts: one line and exit 130, never a traceback from an import."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

# The README's exit-code table: 130 is a command stopped with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def interrupted_line(argv: list[str]) -> str:
    """ "Interrupted" in the language the command line asks for (else YIYUN_LANG, the locale)."""
    from inventory.i18n import argv_lang, text

    lang = argv_lang(argv)
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
