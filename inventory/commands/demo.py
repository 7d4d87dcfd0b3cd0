"""`yiyun demo`: (being built)."""

from __future__ import annotations


def demo() -> None:
    """Run the demo (being built)."""
    raise SystemExit("not built yet")
