"""What a report page says, for tests that look for a word in it or make sure one is absent."""

from __future__ import annotations

import base64
import re

DATA_URL = re.compile(r"data:([\w/+.-]+);base64,([A-Za-z0-9+/=]+)")


def readable(page: str) -> str:
    """The page with each base64 data: URL replaced by what it carries: a chart's SVG as
    text (its labels are words the page shows), an embedded font by nothing. Base64 is
    random letters and digits, so a short code like "S09" can turn up inside it by chance,
    and a word inside a chart would not be found in its base64 at all."""

    def decoded(found: re.Match[str]) -> str:
        if found.group(1).startswith("image/svg"):
            return base64.b64decode(found.group(2)).decode("utf-8")
        return f"data:{found.group(1)};base64,…"

    return DATA_URL.sub(decoded, page)
