"""The HTML report and scorecard carry the shipped CJK face, cut down to what they show."""

from __future__ import annotations

import base64
import io
import re
import string
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from typer.testing import CliRunner

from cli import app
from exporters.reports import fonts
from exporters.reports.fonts import FONT_FACE_SLOT, embed_font
from exporters.reports.html import environment
from inventory.settings import Settings

runner = CliRunner()
FACE = re.compile(
    r'@font-face \{ font-family: "([^"]+)"; src: url\(data:font/(woff2?);base64,([A-Za-z0-9+/=]+)\)'
)
PAGES = {
    "report": ["report", "html"],
    "scorecard": ["report", "scorecard", "--department", "JS-EDU", "--format", "html"],
}


class ShownText(HTMLParser):
    """The text a browser shows: character data outside <style>, <script> and <title>."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.hidden += tag in ("style", "script", "title")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("style", "script", "title")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def shown(page: str) -> str:
    parser = ShownText()
    parser.feed(page)
    return "".join(parser.parts)


def render(tmp_path: Path, kind: str, lang: str) -> str:
    target = tmp_path / f"{kind}-{lang}.html"
    result = runner.invoke(app, [*PAGES[kind], "-o", str(target), "--lang", lang])
    assert result.exit_code == 0, result.output
    return target.read_text(encoding="utf-8")


def embedded_face(page: str) -> tuple[str, bytes]:
    found = FACE.findall(page)
    assert len(found) == 1, "one @font-face"
    family, flavor, data = found[0]
    assert family == fonts.SHIPPED_FAMILY
    # WOFF2 always (brotli is a dependency), never a silent fallback to the larger WOFF.
    assert flavor == "woff2"
    font = base64.b64decode(data)
    assert font[:4] == b"wOF2"
    return family, font


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("kind", sorted(PAGES))
def test_every_character_shown_is_in_the_embedded_face(
    report_estate: Settings, tmp_path: Path, kind: str, lang: str
) -> None:
    page = render(tmp_path, kind, lang)

    _, data = embedded_face(page)
    face = TTFont(io.BytesIO(data))
    assert face["name"].getDebugName(1) == fonts.SC_FAMILY  # the shipped SC face, cut down
    covered = {chr(code) for code in face.getBestCmap()}
    text = shown(page)
    assert "江苏省教育厅" in text  # Chinese names are shown in both languages
    assert set(text) - set(string.whitespace) <= covered
    # The page asks for it first and its policy lets a data: font load.
    assert 'font-family: "yiyun Noto Sans CJK SC", "Noto Sans CJK SC"' in page
    assert "font-src data:" in page
    assert not re.search(r"url\((?!data:)", page)  # nothing fetched from anywhere


def test_the_face_is_cut_down_to_the_page(report_estate: Settings, tmp_path: Path) -> None:
    page = render(tmp_path, "report", "zh")

    _, data = embedded_face(page)
    face = TTFont(io.BytesIO(data))
    covered = {chr(code) for code in face.getBestCmap()}
    assert "龘" not in covered and "龘" not in page  # in the collection, not on the page
    assert "龘" in fonts.page_characters("龘") and "A" in covered
    # The 19 MB collection becomes a few hundred glyphs: a page that stays mailable.
    assert len(data) < 200_000 < fonts.cjk_font_path().stat().st_size
    # Same characters, same bytes: no time of rendering inside the font.
    shipped = TTFont(str(fonts.cjk_font_path()), fontNumber=fonts.sc_face_index(), lazy=True)
    assert face["head"].modified == shipped["head"].modified
    assert fonts._web_font(fonts.page_characters(page)) == fonts._web_font(
        fonts.page_characters(page)
    )


def test_user_data_cannot_take_the_font_face_slot() -> None:
    """A name from the register that spells the slot is escaped by the template, so the
    rule goes into the <style> and nowhere else."""
    template = environment().from_string(
        "<title>{{ name }}</title><style>{{ font_face }}</style><p>{{ name }}</p>"
    )
    page = embed_font(template.render(name=str(FONT_FACE_SLOT), font_face=FONT_FACE_SLOT))

    assert page.startswith("<title>&lt;yiyun-font-face&gt;</title><style>@font-face {")
    assert page.endswith("}</style><p>&lt;yiyun-font-face&gt;</p>")
    with pytest.raises(ValueError, match="font_face"):
        embed_font("<style></style>")
