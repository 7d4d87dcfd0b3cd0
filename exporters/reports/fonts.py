"""The CJK face yiyun ships, used by every report: the charts' font and the pages' @font-face."""

from __future__ import annotations

import base64
import html
import io
import string
from functools import cache, lru_cache
from pathlib import Path

from markupsafe import Markup

# The face of the shipped collection that reports draw Chinese with.
SC_FAMILY = "Noto Sans CJK SC"
# What charts and pages ask for. No system font carries this name, so a desktop's own
# Noto CJK (another version, another file) can never stand in for the shipped face.
SHIPPED_FAMILY = "yiyun Noto Sans CJK SC"
# Drawn with the shipped face too, whatever the page says: digits, Latin, punctuation.
ALWAYS = frozenset(string.printable) - frozenset(string.whitespace) | {" "}
# What a template renders as {{ font_face }}, replaced afterwards by the rule, so the page
# is rendered once. Autoescaping turns any "<" in user data into "&lt;": only the template
# itself can put this text in the page.
FONT_FACE_SLOT = Markup("<yiyun-font-face>")


@cache
def cjk_font_path() -> Path:
    """The Noto Sans CJK collection that the noto-cjk-sans-otc package ships."""
    from noto_cjk_sans_otc import FONT_PATH

    return Path(str(FONT_PATH))


@cache
def sc_face_index() -> int:
    """Where the SC face sits in the collection (it holds JP/KR/SC/TC/HK and mono faces)."""
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(cjk_font_path()), lazy=True)
    for index, face in enumerate(collection.fonts):
        if face["name"].getDebugName(1) == SC_FAMILY:
            return index
    raise LookupError(f"{cjk_font_path()} has no {SC_FAMILY} face")


def register_chart_font() -> None:
    """Make SHIPPED_FAMILY name the shipped SC face in matplotlib's font manager."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    # Checked on every chart, not once: matplotlib rebuilds its list if a cached font file
    # vanished, and the entry would go with it.
    if any(entry.name == SHIPPED_FAMILY for entry in manager.ttflist):
        return
    manager.ttflist.append(
        font_manager.FontEntry(
            fname=str(cjk_font_path()),
            index=sc_face_index(),
            name=SHIPPED_FAMILY,
            style="normal",
            variant="normal",
            weight=400,
            stretch="normal",
            size="scalable",
        )
    )


# The web font format every browser a province's desktops run reads; Brotli (a dependency)
# makes it about a third smaller than WOFF.
WEB_FONT_FORMAT = "woff2"


def _web_font(characters: str) -> tuple[str, bytes]:
    """(format, bytes) of the SC face cut down to `characters`, as WOFF2: far smaller than
    the 19 MB collection."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    flavor = WEB_FONT_FORMAT
    options = subset.Options()
    options.hinting = False  # smaller, and 11–48 px text reads the same without (screenshots)
    options.desubroutinize = True  # compresses better than the CFF subroutines it undoes
    options.notdef_outline = True
    # Horizontal text needs only kerning; locl/vert/aalt would pull in ~60 % more glyphs
    # (vertical and regional forms) that a page never shows, and take longer to cut.
    options.layout_features = ["kern"]
    # The shipped face's own timestamp, not now: the same page gives the same bytes.
    face = TTFont(
        str(cjk_font_path()), fontNumber=sc_face_index(), lazy=True, recalcTimestamp=False
    )
    cutter = subset.Subsetter(options)
    # Characters the face lacks are left out here and fall back to the page's font stack.
    cutter.populate(unicodes=[ord(character) for character in characters])
    cutter.subset(face)
    face.flavor = flavor
    buffer = io.BytesIO()
    face.save(buffer)
    return flavor, buffer.getvalue()


@lru_cache(maxsize=16)
def font_face_rule(characters: str) -> Markup:
    """A CSS @font-face carrying the shipped face for `characters` as a data: URL."""
    flavor, data = _web_font(characters)
    url = f"data:font/{flavor};base64," + base64.b64encode(data).decode("ascii")
    # Only the regular weight ships: bold text is the browser's synthetic bold of this face,
    # not a system font's bold.
    return Markup(
        f'@font-face {{ font-family: "{SHIPPED_FAMILY}"; src: url({url}) format("{flavor}");'
        " font-weight: normal; font-style: normal; font-display: block; }"
    )


def page_characters(page: str) -> str:
    """Every character a page can show, sorted: its text, entities decoded, plus ASCII."""
    return "".join(sorted(set(html.unescape(page)) - set(string.whitespace) | ALWAYS))


def embed_font(page: str) -> str:
    """Put the @font-face where the template left FONT_FACE_SLOT, carrying the shipped face
    cut down to exactly the characters the page shows."""
    if page.count(FONT_FACE_SLOT) != 1:
        raise ValueError("the page's <style> needs {{ font_face }} exactly once")
    rule = font_face_rule(page_characters(page.replace(FONT_FACE_SLOT, "")))
    return page.replace(FONT_FACE_SLOT, rule, 1)
