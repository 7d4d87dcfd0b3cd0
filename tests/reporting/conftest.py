"""Fixtures of the report tests: the seeded report estate on both databases."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from inventory.settings import Settings
from tests.reporting.estate import seed_report_estate

# What the stand-in system font can draw: enough for the labels the tests look at.
SYSTEM_FONT_TEXT = "非涉密系统上云率各设区市部门业务专网南京江苏省教育厅目标" + string.printable


@pytest.fixture
def report_estate(settings: Settings, engine: sa.Engine) -> Settings:
    """Settings whose database holds the report estate (KPI estate, scans, snapshots, waves)."""
    with Session(engine) as session:
        seed_report_estate(session, settings.today())
    return settings


@pytest.fixture(scope="session")
def system_noto_cjk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a stand-in for a desktop's own Noto Sans CJK SC (fonts-noto-cjk).

    It is the shipped SC face cut down to a few characters and saved as another file, its
    family name unchanged: glyphs keep their shapes but get other glyph numbers, so a chart
    or page drawn from it instead of the shipped face is told apart by those numbers.
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont

    from exporters.reports.fonts import SC_FAMILY, cjk_font_path, sc_face_index

    folder = tmp_path_factory.mktemp("share") / "fonts"
    folder.mkdir()
    face = TTFont(str(cjk_font_path()), fontNumber=sc_face_index(), lazy=True)
    cutter = subset.Subsetter(subset.Options(notdef_outline=True))
    cutter.populate(text=SYSTEM_FONT_TEXT)
    cutter.subset(face)
    face.save(str(folder / "NotoSansCJKsc-Regular.otf"))
    assert TTFont(str(folder / "NotoSansCJKsc-Regular.otf"))["name"].getDebugName(1) == SC_FAMILY
    return folder
