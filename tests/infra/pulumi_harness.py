"""Pulumi's mock runtime for the infra tests: every registration recorded with its parent."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import missing_peer


def require_pulumi() -> ModuleType:
    """Import pulumi or skip the module with the reason (fail under YIYUN_REQUIRE_PEERS=1)."""
    try:
        for name in ("pulumi_kubernetes", "pulumi_aws"):
            importlib.import_module(name)
        return importlib.import_module("pulumi")
    except ImportError as error:
        try:
            missing_peer(f"Pulumi SDKs not importable ({error}); pip install -e '.[infra]'")
        except pytest.skip.Exception as skipped:
            # missing_peer skips a test; at import time the whole module must be skipped.
            raise pytest.skip.Exception(skipped.msg, allow_module_level=True) from None
        raise


pulumi = require_pulumi()
from pulumi.runtime.mocks import MockMonitor  # noqa: E402


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    urn: str = ""
    parent: str = ""
    provider: str = ""


class RecordingMocks(pulumi.runtime.Mocks):  # type: ignore[misc]
    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], Registered] = {}

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        self.by_key[(args.typ, args.name)] = Registered(
            args.typ, args.name, args.inputs, bool(args.custom), provider=args.provider or ""
        )
        # A bucket's id is its name, as on S3; everything else gets a recognisable fake id.
        resource_id = args.inputs.get("bucket") if args.typ == "aws:s3/bucket:Bucket" else None
        return resource_id or f"{args.name}-id", dict(args.inputs)

    def call(self, args: Any) -> dict[str, Any]:
        return {}


class RecordingMonitor(MockMonitor):  # type: ignore[misc]
    """Keeps the parent URN of each registration, which MockResourceArgs does not carry."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.parents: dict[tuple[str, str], tuple[str, str]] = {}
        self.duplicates: list[str] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        key = (request.type, request.name)
        if key in self.parents:
            self.duplicates.append(response.urn)
        self.parents[key] = (response.urn, request.parent)
        return response


@dataclass
class Recording:
    resources: list[Registered] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def in_namespace(self, type_token: str, namespace: str) -> list[Registered]:
        return [
            r
            for r in self.of_type(type_token)
            if r.inputs["metadata"].get("namespace") == namespace
        ]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)


def run_program(body: Callable[[], object], *, stack: str = "test") -> Recording:
    """Run `body` (which builds resources) on fresh mocks and return what it registered."""
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="yiyun", stack=stack, preview=False, monitor=monitor)

    @pulumi.runtime.test
    def program() -> None:
        body()

    program()
    recording = Recording(duplicates=monitor.duplicates)
    for key, registered in mocks.by_key.items():
        registered.urn, registered.parent = monitor.parents[key]
        recording.resources.append(registered)
    return recording
