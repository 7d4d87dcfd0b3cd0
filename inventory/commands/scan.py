"""`yiyun scan`: (being built)."""

from __future__ import annotations


def scan() -> None:
    """Scan the nodes (being built)."""
    raise SystemExit("not built yet")
