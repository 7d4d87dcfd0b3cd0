"""The portal's CJK web font: the shipped SC face cut to GB 2312 and the catalogs' characters."""

from __future__ import annotations

import logging
import string
import threading
from pathlib import Path

from exporters.reports.fonts import _web_font
from inventory.i18n import LANGS, messages

log = logging.getLogger(__name__)
FONT_FILE = Path(__file__).parent / "static" / "font" / "yiyun-sc.woff2"
# Punctuation a Chinese page uses beside the characters of GB 2312's two levels.
PUNCTUATION = "，。、；：？！“”‘’（）《》【】—…·％～￥〔〕「」"
_building = threading.Lock()


def portal_characters() -> str:
    """GB 2312's 6,763 characters (what names of departments and systems are written in),
    every character of the catalogs, ASCII and Chinese punctuation. A rarer character in a
    system's name falls back to the desktop's own font (the page's font stack)."""
    chars = set(string.printable) - set(string.whitespace) | {" "} | set(PUNCTUATION)
    for code in range(0x4E00, 0x9FA6):
        character = chr(code)
        try:
            character.encode("gb2312")
        except UnicodeEncodeError:
            continue
        chars.add(character)
    for lang in LANGS:
        for wording in messages(lang).values():
            chars.update(wording)
    return "".join(sorted(c for c in chars if c.isprintable()))


def build_portal_font(target: Path = FONT_FILE) -> Path:
    """Write the font (about 1 MB; cutting it takes ~20 s, so it is a build step)."""
    _flavor, data = _web_font(portal_characters())
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def ensure_portal_font() -> None:
    """Build the font in the background when an install skipped the build step; until it is
    there, pages fall back to the desktop's fonts."""
    if FONT_FILE.exists() or not _building.acquire(blocking=False):
        return

    def build() -> None:
        try:
            build_portal_font()
        except Exception:
            log.exception("could not build the portal font %s", FONT_FILE)
        finally:
            _building.release()

    threading.Thread(target=build, name="portal-font", daemon=True).start()


if __name__ == "__main__":
    if not FONT_FILE.exists():
        print(build_portal_font())
