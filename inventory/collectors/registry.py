"""The explicit registry of collectors: source kind → module with `plan_scopes`."""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Protocol

from inventory.collectors.base import Scope

# Modules are imported on first use so `yiyun --help` never loads boto3 or kubernetes.
COLLECTORS: dict[str, str] = {
    "aws": "inventory.collectors.aws",
    "kubernetes": "inventory.collectors.kubernetes",
    "vsphere": "inventory.collectors.vsphere",
    "openstack": "inventory.collectors.openstack",
}


class Collector(Protocol):
    def plan_scopes(
        self, *, node_id: str, source: dict[str, Any], system_tag: str
    ) -> list[Scope]: ...


class UnknownCollector(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_collector(kind: str) -> Collector:
    """The collector for a source kind; an unknown kind fails with a did-you-mean hint."""
    if kind not in COLLECTORS:
        close = difflib.get_close_matches(kind, COLLECTORS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownCollector(
            f"no collector for source kind {kind!r}{hint} (known: {', '.join(sorted(COLLECTORS))})"
        )
    module: Any = importlib.import_module(COLLECTORS[kind])
    return module
