"""A failed scan reads in Chinese: scope statuses by name, each failure's kind and what to check
before the source's own words, and a run title that says whether anything listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from inventory.i18n import text
from inventory.scope_failures import failure_kind, failure_wording
from tests.inventory.conftest import registered_estate
from tests.inventory.source_estate import Yiyun, aws_source, node, write_nodes

UNSET = "YIYUN_TEST_NEVER_SET_PASSWORD"


@pytest.fixture
def yiyun(
    moto_server: str,
    db_url: str,
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Yiyun:
    monkeypatch.delenv(UNSET, raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    return registered_estate(moto_server, db_url, monkeypatch, tmp_path)


def vsphere_without_password(dead_endpoint: str) -> dict[str, object]:
    port = int(dead_endpoint.rsplit(":", 1)[1])
    return {
        "kind": "vsphere",
        "id": "vcenter",
        "host": "127.0.0.1",
        "port": port,
        "username": "administrator@vsphere.local",
        "password_env": UNSET,
        "datacenters": ["DC0"],
        "verify_tls": False,
    }


def flat(shown: str) -> str:
    return "".join(shown.split())


def test_a_failed_scan_reads_in_chinese(yiyun: Yiyun, dead_endpoint: str, tmp_path: Path) -> None:
    nodes = write_nodes(
        tmp_path / "nodes.yaml",
        node("edu-dc", aws_source(dead_endpoint), one_cloud=False),
        node("hrss-room", vsphere_without_password(dead_endpoint), one_cloud=False),
    )
    yiyun.ok("nodes", "apply", str(nodes))

    code, _, err = yiyun("--lang", "zh", "scan")

    assert code == 1, err
    said = flat(err)
    # The password variable: our own words, whole, with the variable to set.
    assert (
        flat(
            "被拒绝（missing_password），原有数据全部保留（失败前已列出 0 条）。"
            f"未设置密码环境变量 {UNSET}"
        )
        in said
    )
    # The dead endpoint: the kind and what to check, then the library's words as detail.
    assert (
        flat(
            "失败（EndpointConnectionError），原有数据全部保留（失败前已列出 0 条）。无法连接端点："
        )
        in said
    )
    assert "详情：" in said
    # Codes stay beside the status (what people search for); no English sentence around them.
    for english in ("denied", "environmentvariable", " error "):
        assert english not in said, english

    code, out, err = yiyun("--lang", "zh", "report", "scans")
    shown = flat(out)
    assert shown.startswith("扫描批次1：全部失败"), out
    assert "被拒绝条目0" in shown and "失败条目0" in shown
    assert flat(f"未设置密码环境变量 {UNSET}") in shown
    assert "…" not in out

    # JSON keeps the codes a machine reads.
    rows = json.loads(yiyun.ok("report", "scans", "-f", "json"))
    assert {row["status"] for row in rows} == {"denied", "error"}
    assert "missing_password" in {row["error_code"] for row in rows}


@pytest.mark.parametrize(
    ("lang", "partly", "wholly"),
    [("zh", "部分失败", "全部失败"), ("en", "partly failed", "every scope failed")],
)
def test_the_run_title_says_whether_anything_listed(
    yiyun: Yiyun,
    moto_server: str,
    dead_endpoint: str,
    tmp_path: Path,
    lang: str,
    partly: str,
    wholly: str,
) -> None:
    dead = node("edu-dc", aws_source(dead_endpoint), one_cloud=False)
    yiyun.ok("nodes", "apply", str(write_nodes(tmp_path / "dead.yaml", dead)))
    yiyun("scan")
    assert wholly in yiyun.ok("--lang", lang, "report", "scans").splitlines()[0]

    both = write_nodes(tmp_path / "both.yaml", node("js-core", aws_source(moto_server)), dead)
    yiyun.ok("nodes", "apply", str(both))
    yiyun("scan")
    # --failed lists only the failed scope; the title still knows one listed.
    title = yiyun.ok("--lang", lang, "report", "scans", "--failed").splitlines()[0]
    assert partly in title and wholly not in title


@pytest.mark.parametrize(
    ("status", "code", "message", "kind"),
    [
        (
            "denied",
            "missing_password",
            f"environment variable {UNSET} is not set",
            "missing_password",
        ),
        ("denied", "HTTP403", "Forbidden: namespaces is forbidden", "denied"),
        ("throttled", "HTTP429", "Too Many Requests", "throttled"),
        ("error", "TLSError", "SSL: CERTIFICATE_VERIFY_FAILED", "tls"),
        ("error", "ConnectionError", "NameResolutionError: Name or service not known", "dns"),
        ("error", "Timeout", "ReadTimeoutError: read timed out", "timeout"),
        ("error", "EndpointConnectionError", "Could not connect to the endpoint URL", "connection"),
        ("partial", "malformed_response", "not JSON (after a complete page)", "malformed"),
        ("held", "sweep_held", "the listing lacks 3 live rows of the scope", "sweep_held"),
        ("error", "HTTP503", "Service Unavailable", "server"),
        ("error", "ValueError", "odd", "other"),
    ],
)
def test_each_failure_kind_has_its_own_wording_in_both_languages(
    status: str, code: str, message: str, kind: str
) -> None:
    assert failure_kind(status, code, message) == kind
    row = {"node_id": "edu-dc", "held": 3}
    zh, en = (failure_wording(status, code, message, lang, row) for lang in ("zh", "en"))
    assert zh != en
    # Chinese text, no English sentence of ours in it: only the source's own detail.
    ours = zh.split("详情：")[0]
    assert not any(word in ours for word in ("the ", "is not", "check", "Listing")), zh
    if kind in ("missing_password", "sweep_held"):
        assert message not in zh  # worded by us, whole
    else:
        assert zh.startswith(text(f"sf_kind.{kind}", "zh")) and message in zh
