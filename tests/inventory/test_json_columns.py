"""JSON columns: one serializer for the ORM and the bulk path, and values that come back whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from inventory.collectors.base import ResourceRow
from inventory.db import json_dumps
from inventory.models import Resource
from tests.inventory.test_scan_orchestrator import NODE, listing, scan_with


def test_json_dumps_writes_json_and_falls_back_for_what_orjson_refuses() -> None:
    value = {"名称": "教育厅", "n": 3, "nested": {"list": [1, 2.5, None, True]}}
    assert json.loads(json_dumps(value)) == value
    assert json_dumps({1: "a"}) == '{"1":"a"}'  # keys become strings, as json.dumps does
    huge = {"size": 2**70}
    assert json.loads(json_dumps(huge)) == huge  # beyond 64 bits: json.dumps takes it
    moment = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert json.loads(json_dumps({"at": moment})) == {"at": "2026-11-27T08:00:00+00:00"}


def test_tags_and_raw_come_back_whole_through_the_bulk_path(engine: sa.Engine) -> None:
    tags = {"yiyun.io/system": "S1", "部门": "省教育厅", "empty": ""}
    raw = {"spec": {"replicas": 3}, "size": 2**70, "名称": "部署", "list": [1, None, "x"]}
    row = ResourceRow(kind="vm", native_id="i-1", scope="edu-1", tags=tags, raw=raw)
    assert scan_with(engine, listing([row])).ok

    with Session(engine) as session:
        stored = session.exec(select(Resource)).one()
    assert stored.tags == tags
    assert stored.raw == raw
    assert stored.node_id == NODE.id
