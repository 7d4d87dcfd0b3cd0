"""Node definitions: the node file's validation, `yiyun nodes apply` and `yiyun nodes list`."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

from cli import app
from inventory.models import Node
from inventory.nodes import (
    CITIES,
    AwsSource,
    KubernetesSource,
    NodeFileError,
    NodeSpec,
    Problem,
    apply_nodes,
    load_node_file,
    node_specs_from_db,
    parse_node_file,
    source_endpoint,
)
from inventory.settings import Settings

DATA = Path(__file__).parents[1] / "data" / "nodes"
DESIGN_EXAMPLE = DATA / "design_example.yaml"
MANY_PROBLEMS = DATA / "many_problems.yaml"
EXAMPLE = Path(__file__).parents[2] / "examples" / "nodes.yaml"

SECRET = "s3cr3t-Value-that-must-never-be-printed"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"

# Marks a key to remove from the base node or source in a test case.
DROP = object()

AWS_SOURCE: dict[str, Any] = {
    "kind": "aws",
    "endpoint_url": "http://10.1.2.3:9000",
    "regions": ["edu-1"],
}
KUBERNETES_SOURCE: dict[str, Any] = {"kind": "kubernetes", "context": "edu-dc-admin"}
BASE_NODE: dict[str, Any] = {
    "id": "edu-dc",
    "name": "省教育厅部门云",
    "level": "department_cloud",
    "one_cloud": False,
    "owner_department": "JS-EDU",
    "frozen_since": date(2022, 4, 4),
    "sources": [AWS_SOURCE],
}


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def node(**changes: Any) -> dict[str, Any]:
    return changed(BASE_NODE, **changes)


def aws(**changes: Any) -> dict[str, Any]:
    return changed(AWS_SOURCE, **changes)


def kubernetes(**changes: Any) -> dict[str, Any]:
    return changed(KUBERNETES_SOURCE, **changes)


def document(*nodes: dict[str, Any]) -> str:
    return yaml.safe_dump({"nodes": list(nodes)}, allow_unicode=True, sort_keys=False)


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(NodeFileError) as caught:
        parse_node_file(text)
    return caught.value.problems


def write(tmp_path: Path, text: str, name: str = "nodes.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", settings.database_url, *args])


def stored(engine: sa.Engine) -> dict[str, Node]:
    with Session(engine) as session:
        return {row.id: row for row in session.exec(select(Node)).all()}


# --- the node file: valid input -------------------------------------------------------------


def test_design_example_loads_with_defaults() -> None:
    core, edu = load_node_file(DESIGN_EXAMPLE)

    assert (core.id, core.level, core.one_cloud, core.city, core.mlps_level) == (
        "js-core",
        "province_core",
        True,
        "省级",
        3,
    )
    assert core.capacity is not None
    assert (core.capacity.vcpu, core.capacity.memory_gib, core.capacity.storage_gib) == (
        20000,
        80000,
        2000000,
    )
    s3, k8s = core.sources
    assert isinstance(s3, AwsSource) and isinstance(k8s, KubernetesSource)
    assert (s3.verify_tls, s3.addressing_style, s3.services, s3.max_attempts) == (
        True,
        "path",
        ["ec2", "ebs", "s3", "rds"],
        5,
    )
    assert (k8s.kubeconfig, k8s.context, k8s.namespaces) == ("~/.kube/config", "js-core-k8s", None)
    (edu_k8s,) = parse_node_file(document(node(sources=[kubernetes()])))[0].sources
    assert isinstance(edu_k8s, KubernetesSource)
    assert edu_k8s.kubeconfig is None  # the client's default: $KUBECONFIG, else ~/.kube/config
    assert (edu.frozen_since, edu.city, edu.system_tag, edu.dedicated_level4_pool) == (
        date(2022, 4, 4),
        None,
        "yiyun.io/system",
        False,
    )


def test_example_file_is_jiangsu_1_plus_13() -> None:
    specs = load_node_file(EXAMPLE)

    one_cloud = [spec for spec in specs if spec.one_cloud]
    assert {spec.level for spec in one_cloud} == {"province_core", "city_backbone"}
    assert {spec.city for spec in one_cloud if spec.level == "city_backbone"} == set(CITIES)
    assert len(one_cloud) == 14
    others = {(spec.id, spec.level) for spec in specs if not spec.one_cloud}
    assert {level for _, level in others} == {"department_cloud", "server_room"}
    assert len(others) == 5
    kinds = {source.kind for spec in specs for source in spec.sources}
    assert kinds == {"aws", "kubernetes", "vsphere", "openstack"}
    assert any(spec.frozen_since for spec in specs)


AWS_ID, KUBERNETES_ID = "aws-10-1-2-3-9000", "kubernetes-edu-dc-admin"
S3 = "https://s3.edu.example"


@pytest.mark.parametrize(
    ("sources", "ids"),
    [
        ([aws()], [AWS_ID]),
        ([kubernetes()], [KUBERNETES_ID]),
        ([aws(), kubernetes()], [AWS_ID, KUBERNETES_ID]),
        (
            [aws(), aws(endpoint_url=S3), kubernetes()],
            [AWS_ID, "aws-s3-edu-example", KUBERNETES_ID],
        ),
        ([aws(endpoint_url="https://s3.edu.example:443/")], ["aws-s3-edu-example"]),
        (
            [aws(endpoint_url="http://S3.Edu.Example:8080/api/v1")],
            ["aws-s3-edu-example-8080-api-v1"],
        ),
        ([aws(name="core-s3"), aws()], ["core-s3", AWS_ID]),
        ([aws(id="core-s3"), kubernetes(name="core-k8s")], ["core-s3", "core-k8s"]),
        ([aws(id="core-s3", name="core-s3")], ["core-s3"]),
        (
            [kubernetes(context="kubernetes-admin@kubernetes")],
            ["kubernetes-kubernetes-admin-kubernetes"],
        ),
    ],
)
def test_sources_get_stable_ids(sources: list[dict[str, Any]], ids: list[str]) -> None:
    (spec,) = parse_node_file(document(node(sources=sources)))

    assert [source.id for source in spec.sources] == ids
    # `name` is the older spelling of the id and is what Node.sources stores.
    assert [source.stored()["name"] for source in spec.sources] == ids
    assert all("id" not in source.stored() for source in spec.sources)


def ids_by_endpoint(sources: list[dict[str, Any]]) -> dict[str, str]:
    (spec,) = parse_node_file(document(node(sources=sources)))
    found = {}
    for source in spec.sources:
        endpoint = source_endpoint(source.stored())
        assert endpoint is not None
        found[endpoint.where] = source.id
    return found


def test_source_ids_never_depend_on_position() -> None:
    alone = ids_by_endpoint([aws()])
    added = ids_by_endpoint([aws(endpoint_url=S3), aws(), kubernetes()])
    reordered = ids_by_endpoint([kubernetes(), aws(), aws(endpoint_url=S3)])

    assert alone.items() <= added.items()
    assert reordered == added
    assert sorted(added.values()) == sorted([AWS_ID, "aws-s3-edu-example", KUBERNETES_ID])


def test_long_derived_id_is_cut_with_a_hash() -> None:
    host = "a" * 40 + ".b" * 20 + ".example"
    (spec,) = parse_node_file(document(node(sources=[aws(endpoint_url=f"https://{host}")])))
    (other,) = parse_node_file(document(node(sources=[aws(endpoint_url=f"https://{host}x")])))

    source_id = spec.sources[0].id
    assert len(source_id) == 63 and source_id.startswith("aws-aaaa")
    assert source_id != other.sources[0].id


@pytest.mark.parametrize(
    ("given", "expected"),
    [("南京", "南京市"), ("南京市", "南京市"), (" 连云港 ", "连云港市"), ("省级", "省级")],
)
def test_city_is_normalized(given: str, expected: str) -> None:
    (spec,) = parse_node_file(document(node(city=given)))

    assert spec.city == expected


def test_frozen_since_may_be_a_quoted_date() -> None:
    (spec,) = parse_node_file(document(node(frozen_since="2022-04-04")))

    assert spec.frozen_since == date(2022, 4, 4)


def test_file_with_utf8_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_bytes(DESIGN_EXAMPLE.read_text(encoding="utf-8").encode("utf-8-sig"))

    assert [spec.id for spec in load_node_file(path)] == ["js-core", "edu-dc"]


# --- the node file: every problem, each named with its node and field ------------------------

INVALID_NODES = [
    pytest.param(
        [node(level="provincial_core")],
        "level",
        ["unknown level 'provincial_core'", "did you mean 'province_core'"],
        id="unknown-level",
    ),
    pytest.param(
        [node(), node(name="again")],
        "id",
        ["duplicate id 'edu-dc'", "node #1"],
        id="duplicate-id",
    ),
    pytest.param(
        [node(sources=[aws(endpoint_url=DROP)])],
        "sources[0].endpoint_url",
        ["required key 'endpoint_url' is missing"],
        id="aws-without-endpoint",
    ),
    pytest.param(
        [node(sources=[aws(regions=DROP)])],
        "sources[0].regions",
        ["required key 'regions' is missing"],
        id="aws-without-regions",
    ),
    pytest.param(
        [node(sources=[aws(regions=[])])],
        "sources[0].regions",
        ["at least one region"],
        id="aws-empty-regions",
    ),
    pytest.param(
        [node(sources=[kubernetes(context=DROP)])],
        "sources[0].context",
        ["required key 'context' is missing"],
        id="kubernetes-without-context",
    ),
    pytest.param(
        [node(sources=[aws(kind="awss")])],
        "sources[0].kind",
        ["unknown source kind 'awss'", "did you mean 'aws'"],
        id="unknown-source-kind",
    ),
    pytest.param(
        [node(sources=[kubernetes(kind="k8s")])],
        "sources[0].kind",
        ["unknown source kind 'k8s'", "did you mean 'kubernetes'"],
        id="source-kind-synonym",
    ),
    pytest.param(
        [node(sources=[aws(kind=DROP)])],
        "sources[0]",
        ["needs `kind:`"],
        id="source-without-kind",
    ),
    pytest.param(
        [node(owner_dept="JS-EDU", owner_department=DROP)],
        "owner_dept",
        ["unknown key 'owner_dept'", "did you mean 'owner_department'"],
        id="unknown-node-key",
    ),
    pytest.param(
        [node(sources=[aws(verify_ssl=False)])],
        "sources[0].verify_ssl",
        ["unknown key 'verify_ssl'", "did you mean 'verify_tls'"],
        id="unknown-source-key",
    ),
    pytest.param(
        [node(sources=[kubernetes(namespace=["a"])])],
        "sources[0].namespace",
        ["unknown key 'namespace'", "did you mean 'namespaces'"],
        id="unknown-kubernetes-key",
    ),
    pytest.param(
        [node(capacity={"vcpus": 8})],
        "capacity.vcpus",
        ["unknown key 'vcpus'", "did you mean 'vcpu'"],
        id="unknown-capacity-key",
    ),
    pytest.param(
        [node(id="Edu_DC")],
        "id",
        ["lowercase slug"],
        id="id-not-a-slug",
    ),
    pytest.param(
        [node(city="苏洲")],
        "city",
        ["unknown city '苏洲'", "did you mean '苏州市'"],
        id="unknown-city",
    ),
    pytest.param(
        [node(mlps_level=6)],
        "mlps_level",
        ["must be at most 5"],
        id="mlps-level-above-5",
    ),
    pytest.param(
        [node(mlps_level=0)],
        "mlps_level",
        ["must be at least 1"],
        id="mlps-level-below-1",
    ),
    pytest.param(
        [node(capacity={"vcpu": 8, "storage_gib": -1})],
        "capacity.storage_gib",
        ["must be at least 0"],
        id="negative-capacity",
    ),
    pytest.param(
        [node(capacity={"vcpu": "lots"})],
        "capacity.vcpu",
        ["must be a number"],
        id="capacity-not-a-number",
    ),
    pytest.param(
        [node(sources=[aws(endpoint_url="ftp://10.1.2.3")])],
        "sources[0].endpoint_url",
        ["http:// or https:// URL"],
        id="endpoint-not-http",
    ),
    pytest.param(
        [node(sources=[aws(addressing_style="virtaul")])],
        "sources[0].addressing_style",
        ["unknown addressing_style 'virtaul'", "did you mean 'virtual'"],
        id="unknown-addressing-style",
    ),
    pytest.param(
        [node(sources=[aws(services=["ec2", "rdss"])])],
        "sources[0].services",
        ["unknown service 'rdss'", "did you mean 'rds'"],
        id="unknown-aws-service",
    ),
    pytest.param(
        [node(sources=[aws(max_attempts=0)])],
        "sources[0].max_attempts",
        ["must be at least 1"],
        id="max-attempts-zero",
    ),
    pytest.param(
        [node(sources=[aws(ca_bundle="/etc/ca.pem", verify_tls=False)])],
        "sources[0]",
        ["ca_bundle is set but verify_tls is false"],
        id="ca-bundle-without-verification",
    ),
    pytest.param(
        [node(sources=[kubernetes(namespaces=[])])],
        "sources[0].namespaces",
        ["nothing would be scanned"],
        id="empty-namespaces",
    ),
    pytest.param(
        [node(sources=[aws(name="main"), kubernetes(name="main")])],
        "sources",
        ["'main' is used twice"],
        id="duplicate-source-names",
    ),
    pytest.param(
        [node(sources=[aws(), aws(name="aws-10-1-2-3-9000", endpoint_url="http://other:1")])],
        "sources",
        ["'aws-10-1-2-3-9000' is used twice", "sources #1 and #2"],
        id="given-id-clashes-with-derived",
    ),
    pytest.param(
        [node(sources=[aws(), aws(regions=["edu-2"])])],
        "sources",
        ["'aws-10-1-2-3-9000' is used twice", "both derive it from their endpoint", "`id:`"],
        id="two-sources-derive-the-same-id",
    ),
    pytest.param(
        [node(sources=[aws(id="core-s3", name="core-oss")])],
        "sources[0]",
        ["`id: core-s3` and `name: core-oss` disagree"],
        id="source-id-and-name-disagree",
    ),
    pytest.param(
        [node(sources=[aws(id="Core_S3")])],
        "sources[0].id",
        ["lowercase slug"],
        id="source-id-not-a-slug",
    ),
    pytest.param(
        [node(sources=[aws(endpoint_url="http://10.1.2.3:port")])],
        "sources[0].endpoint_url",
        ["port that is not a number"],
        id="endpoint-port-not-a-number",
    ),
    pytest.param(
        [node(sources=[aws(name="Core S3")])],
        "sources[0].name",
        ["lowercase slug"],
        id="source-name-not-a-slug",
    ),
    pytest.param(
        [node(one_cloud=DROP)],
        "one_cloud",
        ["required key 'one_cloud' is missing"],
        id="one-cloud-missing",
    ),
    pytest.param(
        [node(name=DROP)],
        "name",
        ["required key 'name' is missing"],
        id="name-missing",
    ),
    pytest.param(
        [node(frozen_since=2022)],
        "frozen_since",
        ["calendar date"],
        id="frozen-since-a-number",
    ),
    pytest.param(
        [node(frozen_since="April 2022")],
        "frozen_since",
        ["calendar date"],
        id="frozen-since-free-text",
    ),
    pytest.param(
        [node(mlps_level=3, dedicated_level4_pool=True)],
        "",
        ["dedicated_level4_pool is true but mlps_level is 3"],
        id="level4-pool-on-level3-platform",
    ),
    pytest.param(
        [node(level="city_backbone", one_cloud=True, city="省级")],
        "",
        ["city_backbone node needs `city:`"],
        id="city-backbone-without-city",
    ),
    pytest.param(
        [node(system_tag="yiyun system")],
        "system_tag",
        ["without spaces"],
        id="system-tag-with-space",
    ),
    pytest.param(
        [node(), "edu-dc"],
        "",
        ["a node must be a mapping"],
        id="node-not-a-mapping",
    ),
]


@pytest.mark.parametrize(("nodes", "path", "fragments"), INVALID_NODES)
def test_each_problem_is_reported_with_node_and_field(
    nodes: list[Any], path: str, fragments: list[str]
) -> None:
    (problem,) = problems_of(document(*nodes))

    assert problem.path == path
    assert problem.position == len(nodes)
    for fragment in fragments:
        assert fragment in problem.message
    assert problem.line is not None
    assert str(problem).startswith(f"line {problem.line}: node #{len(nodes)}")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("", "found an empty file", id="empty-file"),
        pytest.param("# only a comment\n", "found an empty file", id="only-comments"),
        pytest.param("- id: edu-dc\n", "found a list", id="list-at-top"),
        pytest.param("node:\n  - id: edu-dc\n", "no top-level `nodes:` list", id="no-nodes-key"),
        pytest.param("nodes:\n", "non-empty list", id="nodes-empty"),
        pytest.param("nodes: []\n", "non-empty list", id="nodes-empty-list"),
        pytest.param("nodes: {id: edu-dc}\n", "non-empty list", id="nodes-not-a-list"),
    ],
)
def test_file_without_a_nodes_list_is_refused(text: str, fragment: str) -> None:
    problems = problems_of(text)

    assert any(fragment in problem.message for problem in problems)


def test_misspelled_top_level_key_gets_a_suggestion() -> None:
    problems = problems_of("node:\n  - id: edu-dc\n")

    assert "unknown top-level key 'node' (did you mean 'nodes'?)" in {p.message for p in problems}


def test_bad_yaml_is_reported_with_its_line() -> None:
    text = "nodes:\n  - id: edu-dc\n    name: 省教育厅部门云\n    regions: [edu-1\n  - id: b\n"

    (problem,) = problems_of(text)

    assert problem.message.startswith("not valid YAML")
    assert problem.line in (4, 5)  # PyYAML points where it noticed: the next line
    assert str(problem).startswith(f"line {problem.line}: not valid YAML")


def test_key_given_twice_is_reported_with_both_lines() -> None:
    text = (
        "nodes:\n"
        "  - id: edu-dc\n"
        "    name: 省教育厅部门云\n"
        "    level: department_cloud\n"
        "    one_cloud: false\n"
        "    one_cloud: true\n"
    )

    (problem,) = problems_of(text)

    assert (problem.position, problem.path, problem.line) == (1, "one_cloud", 6)
    assert "given twice (lines 5 and 6)" in problem.message


def test_problem_lines_point_at_the_field() -> None:
    text = DESIGN_EXAMPLE.read_text(encoding="utf-8").replace("regions: [edu-1]", "region: [edu-1]")

    problems = problems_of(text)

    assert {(p.node_id, p.path, p.line) for p in problems} == {
        ("edu-dc", "sources[0].region", 24),
        ("edu-dc", "sources[0].regions", 24),
    }


def test_several_problems_are_all_reported() -> None:
    problems = load_problems(MANY_PROBLEMS)

    assert {(p.position, p.path) for p in problems} == {
        (1, "level"),
        (1, "sources[0].endpoint_url"),
        (2, "sources[0].context"),
        (3, "id"),
        (3, "ownr_department"),
        (3, "sources[0].secret_key"),
    }
    assert [p.position for p in problems] == sorted(p.position or 0 for p in problems)


def load_problems(path: Path) -> list[Problem]:
    with pytest.raises(NodeFileError) as caught:
        load_node_file(path)
    assert caught.value.origin == str(path)
    return caught.value.problems


def test_unreadable_file_is_a_node_file_error(tmp_path: Path) -> None:
    (problem,) = load_problems(tmp_path / "missing.yaml")

    assert "cannot read the file" in problem.message


# --- secrets: refused, named, never echoed ----------------------------------------------------

SECRET_KEYS = [
    "access_key",
    "secret_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "session_token",
    "token",
    "password",
    "secret",
    "credentials",
    "bearer",
    "AWS_SECRET_ACCESS_KEY",
    "secretAccessKey",
    "client-secret",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_credential_key_in_an_aws_source_is_refused(key: str) -> None:
    text = document(node(sources=[kubernetes(), aws(**{key: SECRET})]))

    (problem,) = problems_of(text)

    assert (problem.node_id, problem.path) == ("edu-dc", f"sources[1].{key}")
    assert f"key {key!r} of source {AWS_ID!r}" in problem.message
    assert "standard AWS chain" in problem.message and "profile" in problem.message
    assert SECRET not in str(problem)


def test_credential_key_in_a_kubernetes_source_points_at_the_kubeconfig() -> None:
    text = document(node(sources=[kubernetes(name="edu-k8s", token=SECRET)]))

    (problem,) = problems_of(text)

    assert problem.path == "sources[0].token"
    assert "source 'edu-k8s'" in problem.message and "kubeconfig" in problem.message
    assert SECRET not in str(problem)


def test_credential_key_on_the_node_itself_is_refused() -> None:
    (problem,) = problems_of(document(node(password=SECRET)))

    assert (problem.node_id, problem.path) == ("edu-dc", "password")
    assert SECRET not in str(problem)


@pytest.mark.parametrize(
    ("source", "path", "fragment"),
    [
        pytest.param(
            aws(profile=ACCESS_KEY_ID),
            "sources[0].profile",
            "AWS access key id",
            id="access-key-id-as-profile",
        ),
        pytest.param(
            aws(endpoint_url=f"https://admin:{SECRET}@s3.edu.example"),
            "sources[0].endpoint_url",
            "user:password@",
            id="password-in-url",
        ),
        pytest.param(
            kubernetes(kubeconfig=f"/etc/kube/{ACCESS_KEY_ID}.yaml"),
            "sources[0].kubeconfig",
            "AWS access key id",
            id="access-key-id-inside-a-value",
        ),
    ],
)
def test_credential_looking_value_is_refused_without_echo(
    source: dict[str, Any], path: str, fragment: str
) -> None:
    (problem,) = problems_of(document(node(sources=[source])))

    assert (problem.node_id, problem.path) == ("edu-dc", path)
    assert fragment in problem.message
    assert SECRET not in str(problem) and ACCESS_KEY_ID not in str(problem)


def test_secret_refusal_on_the_command_line_never_prints_the_value(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    text = document(
        node(sources=[aws(secret_key=SECRET, profile=ACCESS_KEY_ID)]),
        node(id="edu-dc-2", password=SECRET),
    )

    result = invoke(settings, "nodes", "apply", str(write(tmp_path, text)))

    assert result.exit_code == 1
    assert "secret_key" in result.stderr and "password" in result.stderr
    assert "standard AWS chain" in result.stderr
    for shown in (result.stdout, result.stderr):
        assert SECRET not in shown and ACCESS_KEY_ID not in shown
    assert stored(engine) == {}


# --- apply: upsert by id, atomic, idempotent, never deleting ---------------------------------


def test_design_example_applies(settings: Settings, engine: sa.Engine) -> None:
    result = invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))

    assert result.exit_code == 0, result.output
    assert "2 created, 0 updated, 0 unchanged" in result.stdout
    nodes = stored(engine)
    assert set(nodes) == {"js-core", "edu-dc"}
    core, edu = nodes["js-core"], nodes["edu-dc"]
    assert (core.level, core.one_cloud, core.city, core.mlps_level) == (
        "province_core",
        True,
        "省级",
        3,
    )
    assert (core.capacity_vcpu, core.capacity_memory_gib, core.capacity_storage_gib) == (
        20000,
        80000,
        2000000,
    )
    assert [(s["name"], s["kind"]) for s in core.sources or []] == [
        ("aws-ecs-core-example-8443", "aws"),
        ("kubernetes-js-core-k8s", "kubernetes"),
    ]
    assert (edu.one_cloud, edu.owner_department, edu.frozen_since) == (
        False,
        "JS-EDU",
        date(2022, 4, 4),
    )
    assert edu.sources == [
        {
            "name": AWS_ID,
            "kind": "aws",
            "endpoint_url": "http://10.1.2.3:9000",
            "regions": ["edu-1"],
            "profile": None,
            "ca_bundle": None,
            "verify_tls": True,
            "addressing_style": "path",
            "services": ["ec2", "ebs", "s3", "rds"],
            "max_attempts": 5,
        }
    ]
    assert core.updated_at is not None and edu.updated_at is not None


def test_example_file_applies(settings: Settings, engine: sa.Engine) -> None:
    result = invoke(settings, "nodes", "apply", str(EXAMPLE))

    assert result.exit_code == 0, result.output
    assert "19 created" in result.stdout
    nodes = stored(engine)
    assert len(nodes) == 19
    assert {n.id for n in nodes.values() if n.one_cloud} == {
        spec.id for spec in load_node_file(EXAMPLE) if spec.one_cloud
    }


def test_apply_takes_the_global_config_when_no_file_is_given(
    settings: Settings, engine: sa.Engine
) -> None:
    result = CliRunner().invoke(
        app, ["--db", settings.database_url, "--config", str(DESIGN_EXAMPLE), "nodes", "apply"]
    )

    assert result.exit_code == 0, result.output
    assert set(stored(engine)) == {"js-core", "edu-dc"}


def test_reapplying_the_same_file_changes_nothing(engine: sa.Engine) -> None:
    specs = load_node_file(DESIGN_EXAMPLE)
    with Session(engine) as session:
        first = apply_nodes(session=session, specs=specs)
        session.commit()
    before = {(n.id, n.updated_at) for n in stored(engine).values()}

    with Session(engine) as session:
        second = apply_nodes(session=session, specs=load_node_file(DESIGN_EXAMPLE))
        session.commit()

    assert (first.created, first.updated, first.unchanged) == (["js-core", "edu-dc"], {}, [])
    assert (second.created, second.updated, second.unchanged) == ([], {}, ["js-core", "edu-dc"])
    assert not second.changed
    assert {(n.id, n.updated_at) for n in stored(engine).values()} == before


def test_reapplying_on_the_command_line_reports_unchanged(settings: Settings) -> None:
    invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))

    result = invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))

    assert result.exit_code == 0
    assert "0 created, 0 updated, 2 unchanged" in result.stdout


def test_changed_node_is_updated_and_others_untouched(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))
    before = stored(engine)
    text = (
        DESIGN_EXAMPLE.read_text(encoding="utf-8")
        .replace("frozen_since: 2022-04-04", "frozen_since: 2022-06-01")
        .replace("regions: [edu-1]", "regions: [edu-1, edu-2]")
    )

    result = invoke(settings, "nodes", "apply", str(write(tmp_path, text)))

    assert result.exit_code == 0, result.output
    assert "0 created, 1 updated, 1 unchanged" in result.stdout
    assert "updated: edu-dc (frozen_since, sources)" in result.stdout
    after = stored(engine)
    assert after["edu-dc"].frozen_since == date(2022, 6, 1)
    assert (after["edu-dc"].sources or [])[0]["regions"] == ["edu-1", "edu-2"]
    assert after["edu-dc"].updated_at != before["edu-dc"].updated_at
    assert after["js-core"].updated_at == before["js-core"].updated_at


def test_node_left_out_of_the_file_is_kept(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))
    core_only = load_node_file(DESIGN_EXAMPLE)[0].model_dump(mode="json")
    path = write(tmp_path, yaml.safe_dump({"nodes": [core_only]}, allow_unicode=True))

    result = invoke(settings, "nodes", "apply", str(path))

    assert result.exit_code == 0, result.output
    assert "not in this file" in result.stdout and "edu-dc" in result.stdout
    assert set(stored(engine)) == {"js-core", "edu-dc"}
    with Session(engine) as session:
        report = apply_nodes(session=session, specs=load_node_file(path))
    assert (report.unchanged, report.not_in_file) == (["js-core"], ["edu-dc"])


def test_bad_file_applies_nothing_and_reports_every_problem(
    settings: Settings, engine: sa.Engine
) -> None:
    invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))
    before = {n.id: (n.level, n.frozen_since, n.updated_at) for n in stored(engine).values()}

    result = invoke(settings, "nodes", "apply", str(MANY_PROBLEMS))

    assert result.exit_code == 1
    assert "6 problems, nothing applied" in result.stderr
    for fragment in (
        "node #1 (js-core): level: unknown level 'provincial_core'",
        "did you mean 'province_core'",
        "node #1 (js-core): sources[0].endpoint_url: required key 'endpoint_url' is missing",
        "node #2 (edu-dc): sources[0].context: required key 'context' is missing",
        "node #3 (edu-dc): id: duplicate id 'edu-dc'",
        "node #3 (edu-dc): ownr_department: unknown key 'ownr_department'",
        "node #3 (edu-dc): sources[0].secret_key:",
    ):
        assert fragment in result.stderr
    assert "wJalrXUtnFEMI" not in result.output
    after = {n.id: (n.level, n.frozen_since, n.updated_at) for n in stored(engine).values()}
    assert after == before


def test_bad_file_creates_nothing_in_an_empty_ledger(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    text = document(node(id="ok-node"), node(level="cloud"))

    result = invoke(settings, "nodes", "apply", str(write(tmp_path, text)))

    assert result.exit_code == 1
    assert stored(engine) == {}


def test_dry_run_reports_and_writes_nothing(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    result = invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would create 2, update 0, leave 0 unchanged" in result.stdout
    assert stored(engine) == {}

    invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))
    before = {n.id: (n.mlps_level, n.updated_at) for n in stored(engine).values()}
    text = DESIGN_EXAMPLE.read_text(encoding="utf-8").replace("mlps_level: 3", "mlps_level: 4")

    result = invoke(settings, "nodes", "apply", str(write(tmp_path, text)), "--dry-run")

    assert "would create 0, update 1, leave 1 unchanged" in result.stdout
    assert "to update: js-core (mlps_level)" in result.stdout
    assert {n.id: (n.mlps_level, n.updated_at) for n in stored(engine).values()} == before


def test_missing_file_is_a_usage_error(settings: Settings, tmp_path: Path) -> None:
    result = invoke(settings, "nodes", "apply", str(tmp_path / "nope.yaml"))

    assert result.exit_code == 2
    assert "not found" in " ".join(result.stderr.split())  # rich wraps long paths


def test_apply_needs_a_file(settings: Settings) -> None:
    result = invoke(settings, "nodes", "apply")

    assert result.exit_code == 2
    assert "give the node file" in result.stderr


def test_node_specs_come_back_from_the_ledger(engine: sa.Engine) -> None:
    specs = load_node_file(EXAMPLE)
    with Session(engine) as session:
        apply_nodes(session=session, specs=specs)
        session.commit()

    with Session(engine) as session:
        back = node_specs_from_db(session=session)
        some = node_specs_from_db(session=session, ids=["edu-dc", "js-core"])

    assert back == sorted(specs, key=lambda spec: spec.id)
    assert [spec.id for spec in some] == ["edu-dc", "js-core"]
    hrss = next(spec for spec in back if spec.id == "hrss-dc")
    minio = hrss.source("hrss-minio")
    assert isinstance(minio, AwsSource) and minio.services == ["s3"]


def test_unknown_node_id_from_the_ledger_is_named(engine: sa.Engine) -> None:
    with Session(engine) as session:
        apply_nodes(session=session, specs=load_node_file(DESIGN_EXAMPLE))
        session.commit()

    with Session(engine) as session, pytest.raises(NodeFileError) as caught:
        node_specs_from_db(session=session, ids=["js-cor"])

    (problem,) = caught.value.problems
    assert "no node 'js-cor'" in problem.message and "did you mean 'js-core'" in problem.message


def test_apply_refuses_duplicate_ids(session: Session) -> None:
    spec = NodeSpec.model_validate(node())

    with pytest.raises(ValueError, match="unique"):
        apply_nodes(session=session, specs=[spec, spec])


# --- list --------------------------------------------------------------------------------------


def test_list_json_shows_nodes_and_source_names_only(settings: Settings) -> None:
    invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))

    result = invoke(settings, "nodes", "list", "--format", "json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["id"] for row in rows] == ["edu-dc", "js-core"]
    edu, core = rows
    assert {
        "id",
        "name",
        "level",
        "one_cloud",
        "city",
        "owner_department",
        "mlps_level",
        "frozen_since",
        "capacity_vcpu",
        "capacity_memory_gib",
        "capacity_storage_gib",
        "sources",
    } <= set(core)
    assert (core["level"], core["one_cloud"], core["city"], core["capacity_vcpu"]) == (
        "province_core",
        True,
        "省级",
        20000,
    )
    assert core["sources"] == [
        {"id": "aws-ecs-core-example-8443", "name": "aws-ecs-core-example-8443", "kind": "aws"},
        {"id": "kubernetes-js-core-k8s", "name": "kubernetes-js-core-k8s", "kind": "kubernetes"},
    ]
    assert (edu["one_cloud"], edu["frozen_since"], edu["owner_department"]) == (
        False,
        "2022-04-04",
        "JS-EDU",
    )
    assert "10.1.2.3" not in result.stdout and "profile" not in result.stdout


def test_list_json_of_an_empty_ledger_is_an_empty_array(settings: Settings) -> None:
    result = invoke(settings, "nodes", "list", "--format", "json")

    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


@pytest.mark.parametrize("fmt", ["table", "csv", "md"])
def test_list_for_people(settings: Settings, fmt: str) -> None:
    invoke(settings, "nodes", "apply", str(DESIGN_EXAMPLE))

    result = invoke(settings, "nodes", "list", "--format", fmt)

    assert result.exit_code == 0, result.output
    assert "js-core" in result.stdout and "edu-dc" in result.stdout
    assert "ecs.core.example" not in result.stdout
    if fmt != "table":
        assert "kubernetes-js-core-k8s (kubernetes)" in result.stdout
        assert "2000000" in result.stdout  # capacities written out in full, never 2e+06


def test_stored_node_that_no_longer_validates_is_named(engine: sa.Engine) -> None:
    with Session(engine) as session:
        apply_nodes(session=session, specs=load_node_file(DESIGN_EXAMPLE))
        session.commit()
    with Session(engine) as session:
        broken = session.get(Node, "edu-dc")
        assert broken is not None
        broken.level = "cloud"
        session.add(broken)
        session.commit()

    with Session(engine) as session, pytest.raises(NodeFileError) as caught:
        node_specs_from_db(session=session)

    (problem,) = caught.value.problems
    assert str(problem).startswith("node edu-dc: level: unknown level 'cloud'")
