"""Files answered for download, by the API and the portal alike."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Response


def attachment(content: bytes, media_type: str, filename: str) -> Response:
    # RFC 6266/5987: the name survives any code a department chose, and never breaks the header.
    disposition = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})
