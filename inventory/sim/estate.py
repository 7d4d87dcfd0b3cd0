"""A sample Jiangsu estate for `yiyun demo`: register, node file and simulated endpoints to scan.

Nothing here computes a KPI: it only puts resources where a real province would have them.
The figures the demo prints come from the real collectors and the real KPI code.
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

SYSTEM_TAG = "yiyun.io/system"
# Regions on the simulated AWS-compatible endpoints must be names moto knows.
SIM_AWS_REGION = "cn-north-1"
FREEZE_2022 = date(2022, 4, 4)  # 苏政发〔2022〕44号 was issued in spring 2022

CITIES = {
    "NJ": "南京市",
    "WX": "无锡市",
    "XZ": "徐州市",
    "CZ": "常州市",
    "SZ": "苏州市",
    "NT": "南通市",
    "LYG": "连云港市",
    "HA": "淮安市",
    "YC": "盐城市",
    "YZ": "扬州市",
    "ZJ": "镇江市",
    "TZ": "泰州市",
    "SQ": "宿迁市",
}
PROVINCIAL_DEPARTMENTS = {
    "JS-EDU": "江苏省教育厅",
    "JS-HLTH": "江苏省卫生健康委员会",
    "JS-PS": "江苏省公安厅",
    "JS-FIN": "江苏省财政厅",
    "JS-HRSS": "江苏省人力资源和社会保障厅",
    "JS-NR": "江苏省自然资源厅",
    "JS-TRANS": "江苏省交通运输厅",
    "JS-AMR": "江苏省市场监督管理局",
    "JS-DATA": "江苏省大数据管理中心",
    "JS-ECO": "江苏省生态环境厅",
}
CITY_DEPARTMENTS = {"EDU": "教育局", "HLTH": "卫生健康委员会", "GOV": "政务服务管理办公室"}
SYSTEM_NAMES = [
    "业务办理系统",
    "数据共享交换平台",
    "综合监管平台",
    "统一身份认证",
    "档案管理系统",
    "公众服务门户",
    "移动办公平台",
    "决策分析系统",
    "视频会议系统",
    "电子证照系统",
    "信用信息平台",
    "应急指挥系统",
    "网上审批系统",
    "财务管理系统",
    "舆情监测平台",
]

# Where a department's systems run when they are not on the unified cloud.
LEGACY_NODE = {"JS-EDU": "edu-dc", "JS-HLTH": "hlth-dc"}
LEGACY_BY_CITY = {"南京市": "nj-leased", "苏州市": "sz-room"}


@dataclass
class NodeDef:
    """One node of the sample estate and how it is simulated (aws → moto, kubernetes → sim)."""

    id: str
    name: str
    level: str
    one_cloud: bool
    city: str
    simulators: tuple[str, ...]
    mlps_level: int = 3
    owner_department: str | None = None
    frozen_since: date | None = None
    capacity: dict[str, int] = field(default_factory=dict)


@dataclass
class Placement:
    """A piece of a system on a node: what kind of thing and when it was created."""

    node_id: str
    form: str  # vm, bucket, db, volume, deployment, statefulset, cronjob, empty_namespace
    created: datetime | None = None
    tagged: bool = True


@dataclass
class SystemDef:
    code: str
    name: str
    department_code: str
    department: str
    city: str
    classified: bool = False
    mlps_level: int = 2
    data_level: str = "general"
    network_zone: str = "extranet"
    lifecycle: str = "active"
    environment: str = "production"
    criticality: str = "medium"
    crypto_assessed_on: date | None = None
    declared_node: str | None = None
    exemption: tuple[str, str, date] | None = None
    placements: list[Placement] = field(default_factory=list)


@dataclass
class Estate:
    today: date
    nodes: list[NodeDef]
    systems: list[SystemDef]
    # Resources no system claims: listed by `report violations`, never guessed.
    orphans: list[Placement]


def _nodes(today: date) -> list[NodeDef]:
    nodes = [
        NodeDef(
            "js-core",
            "江苏省政务云省级核心节点",
            "province_core",
            True,
            "省级",
            ("aws", "kubernetes"),
            capacity={"vcpu": 20000, "memory_gib": 80000, "storage_gib": 2000000},
        ),
    ]
    for prefix, city in CITIES.items():
        nodes.append(
            NodeDef(
                f"js-{prefix.lower()}",
                f"江苏省政务云{city}骨干节点",
                "city_backbone",
                True,
                city,
                ("kubernetes",),
                capacity={"vcpu": 4000, "memory_gib": 16000, "storage_gib": 400000},
            )
        )
    nodes += [
        # Freeze declared today: its existing VMs predate it, anything new would not.
        NodeDef(
            "edu-dc",
            "省教育厅部门云",
            "department_cloud",
            False,
            "省级",
            ("aws",),
            owner_department="JS-EDU",
            frozen_since=today,
            mlps_level=2,
        ),
        NodeDef(
            "hlth-dc",
            "省卫健委部门云",
            "department_cloud",
            False,
            "省级",
            ("kubernetes",),
            owner_department="JS-HLTH",
            frozen_since=FREEZE_2022,
            mlps_level=3,
        ),
        NodeDef(
            "gov-room",
            "省大数据管理中心自建机房",
            "server_room",
            False,
            "省级",
            ("aws",),
            owner_department="JS-DATA",
            mlps_level=2,
        ),
        NodeDef(
            "nj-leased",
            "南京市租用云",
            "external_leased",
            False,
            "南京市",
            ("kubernetes",),
            frozen_since=date(2023, 1, 1),
            mlps_level=2,
        ),
        NodeDef(
            "sz-room", "苏州市自建机房", "server_room", False, "苏州市", ("aws",), mlps_level=2
        ),
    ]
    return nodes


def _departments() -> list[tuple[str, str, str]]:
    rows = [(code, name, "省级") for code, name in PROVINCIAL_DEPARTMENTS.items()]
    for prefix, city in CITIES.items():
        for suffix, name in CITY_DEPARTMENTS.items():
            rows.append((f"{prefix}-{suffix}", f"{city}{name}", city))
    return rows


def _home_node(city: str) -> str:
    if city == "省级":
        return "js-core"
    prefix = next(p for p, c in CITIES.items() if c == city)
    return f"js-{prefix.lower()}"


def _forms(rng: random.Random, node_id: str, nodes: dict[str, NodeDef]) -> list[str]:
    if "aws" in nodes[node_id].simulators and (
        "kubernetes" not in nodes[node_id].simulators or rng.random() < 0.5
    ):
        forms = ["vm"] * rng.randint(1, 3)
        if rng.random() < 0.3:
            forms.append("bucket")
        if rng.random() < 0.15:
            forms.append("db")
        if rng.random() < 0.2:
            forms.append("volume")
        return forms
    forms = ["deployment"] * rng.randint(1, 2)
    if rng.random() < 0.25:
        forms.append("statefulset")
    if rng.random() < 0.2:
        forms.append("cronjob")
    return forms


def plan_estate(*, today: date, systems: int = 300, seed: int = 2026) -> Estate:
    """Decide deterministically which systems exist and where their resources run."""
    rng = random.Random(seed)
    nodes = _nodes(today)
    by_id = {n.id: n for n in nodes}
    departments = _departments()
    long_ago = datetime(2020, 6, 1, tzinfo=UTC)
    planned: list[SystemDef] = []
    for index in range(systems):
        dept_code, dept_name, city = departments[index % len(departments)]
        serial = index // len(departments) + 1
        system = SystemDef(
            code=f"{dept_code}-{serial:03d}",
            name=f"{dept_name.removeprefix('江苏省')}{SYSTEM_NAMES[index % len(SYSTEM_NAMES)]}",
            department_code=dept_code,
            department=dept_name,
            city=city,
            mlps_level=rng.choices([1, 2, 3, 4], weights=[5, 55, 35, 5])[0],
            data_level=rng.choices(["general", "important", "core"], weights=[75, 22, 3])[0],
            network_zone=rng.choices(
                ["extranet", "internet", "private_network"], weights=[70, 15, 15]
            )[0],
            environment=rng.choices(["production", "test", "dev"], weights=[80, 15, 5])[0],
            criticality=rng.choices(["high", "medium", "low"], weights=[20, 60, 20])[0],
        )
        if system.mlps_level >= 3 and rng.random() < 0.7:
            system.crypto_assessed_on = today - timedelta(days=rng.randint(30, 700))
        home = _home_node(city)
        legacy = (
            LEGACY_NODE.get(dept_code)
            or LEGACY_BY_CITY.get(city)
            or ("gov-room" if city == "省级" else None)
        )
        roll = rng.random()
        old = long_ago + timedelta(days=rng.randint(0, 600))
        if roll < 0.55:
            system.placements = [Placement(home, f) for f in _forms(rng, home, by_id)]
        elif roll < 0.63 and legacy:
            system.placements = [Placement(home, f) for f in _forms(rng, home, by_id)[:1]]
            system.placements += [Placement(legacy, f, old) for f in _forms(rng, legacy, by_id)]
        elif roll < 0.76 and legacy:
            system.placements = [Placement(legacy, f, old) for f in _forms(rng, legacy, by_id)]
        elif roll < 0.82:
            # A landing zone was prepared, nothing runs there yet: it must not count.
            if rng.random() < 0.5:
                system.placements = [Placement(home, "empty_namespace")]
        elif roll < 0.86:
            system.exemption = (
                "业务专网承载，暂缓上云",
                f"苏政办函〔2025〕{index}号",
                today + timedelta(days=rng.randint(30, 400)),
            )
            if legacy:
                system.placements = [
                    Placement(
                        legacy,
                        "vm" if legacy in ("edu-dc", "gov-room", "sz-room") else "deployment",
                        old,
                    )
                ]
        elif roll < 0.875 and legacy:
            system.exemption = (
                "原批准例外已到期",
                f"苏政办函〔2023〕{index}号",
                today - timedelta(days=30),
            )
            system.placements = [Placement(legacy, f, old) for f in _forms(rng, legacy, by_id)]
        elif roll < 0.91:
            system.classified = True
            system.network_zone = "private_network"
        elif roll < 0.94:
            system.lifecycle = "retired"
        elif roll < 0.97:
            system.declared_node = home  # says it is on the cloud; no evidence yet
        else:
            system.lifecycle = "retiring"
            if legacy:
                system.placements = [Placement(legacy, f, old) for f in _forms(rng, legacy, by_id)]
        # A few workloads appeared on frozen nodes after their freeze: violations.
        for placement in system.placements:
            node = by_id[placement.node_id]
            if node.frozen_since and node.frozen_since < today and rng.random() < 0.15:
                placement.created = datetime.combine(
                    node.frozen_since + timedelta(days=rng.randint(30, 300)),
                    datetime.min.time(),
                    tzinfo=UTC,
                )
        planned.append(system)
    orphans = [Placement("gov-room", "vm", tagged=False) for _ in range(4)]
    orphans += [Placement("js-core", "deployment", tagged=False) for _ in range(2)]
    return Estate(today=today, nodes=nodes, systems=planned, orphans=orphans)


REGISTER_HEADERS = [
    "系统编码",
    "系统名称",
    "部门编码",
    "主管部门",
    "地市",
    "是否涉密",
    "等保级别",
    "网络区域",
    "数据级别",
    "生命周期",
    "部署节点",
    "环境",
    "重要程度",
    "密评日期",
    "联系人",
    "豁免原因",
    "批准文号",
    "有效期至",
]
_ZONES = {"extranet": "政务外网", "internet": "互联网区", "private_network": "业务专网"}
_DATA = {"general": "一般", "important": "重要", "core": "核心"}
_LIFECYCLE = {"active": "在用", "retiring": "拟下线", "retired": "已下线"}
_ENV = {"production": "生产", "test": "测试", "dev": "开发"}
_CRIT = {"high": "高", "medium": "中", "low": "低"}
_LEVELS = {1: "一级", 2: "二级", 3: "三级", 4: "四级", 5: "五级"}


def write_register(estate: Estate, path: Path) -> Path:
    """The register as a department would send it: Chinese headers, UTF-8 with BOM."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REGISTER_HEADERS)
        for s in estate.systems:
            reason, doc, until = s.exemption or ("", "", None)
            writer.writerow(
                [
                    s.code,
                    s.name,
                    s.department_code,
                    s.department,
                    s.city,
                    "是" if s.classified else "否",
                    _LEVELS[s.mlps_level],
                    _ZONES[s.network_zone],
                    _DATA[s.data_level],
                    _LIFECYCLE[s.lifecycle],
                    s.declared_node or "",
                    _ENV[s.environment],
                    _CRIT[s.criticality],
                    s.crypto_assessed_on.isoformat() if s.crypto_assessed_on else "",
                    f"{s.department}信息中心",
                    reason,
                    doc,
                    until.isoformat() if until else "",
                ]
            )
    return path


def node_file(estate: Estate, endpoints: dict[str, str], kubeconfig: Path) -> dict[str, Any]:
    """The YAML node file for the estate, pointing at the running simulators."""
    nodes: list[dict[str, Any]] = []
    for n in estate.nodes:
        entry: dict[str, Any] = {
            "id": n.id,
            "name": n.name,
            "level": n.level,
            "one_cloud": n.one_cloud,
            "city": n.city,
            "mlps_level": n.mlps_level,
        }
        if n.owner_department:
            entry["owner_department"] = n.owner_department
        if n.frozen_since:
            entry["frozen_since"] = n.frozen_since
        if n.capacity:
            entry["capacity"] = dict(n.capacity)
        sources: list[dict[str, Any]] = []
        if "aws" in n.simulators:
            sources.append(
                {
                    "kind": "aws",
                    # Written, as a real node file would: the simulator's port changes every
                    # run, and a derived id would change with it.
                    "id": "cloud-api",
                    "endpoint_url": endpoints[n.id],
                    "regions": [SIM_AWS_REGION],
                    "profile": "yiyun-demo",
                }
            )
        if "kubernetes" in n.simulators:
            sources.append({"kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": n.id})
        entry["sources"] = sources
        nodes.append(entry)
    return {"nodes": nodes}


def write_node_file(
    estate: Estate, endpoints: dict[str, str], kubeconfig: Path, path: Path
) -> Path:
    path.write_text(
        yaml.safe_dump(
            node_file(estate, endpoints, kubeconfig), allow_unicode=True, sort_keys=False
        ),
        encoding="utf-8",
    )
    return path


def write_kubeconfig(servers: dict[str, str], path: Path, token: str) -> Path:
    """One kubeconfig with a context per simulated cluster (a fake token, not a secret)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": c, "cluster": {"server": url}} for c, url in servers.items()],
        "users": [{"name": "yiyun-demo", "user": {"token": token}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "yiyun-demo"}} for c in servers],
        "current-context": next(iter(servers)),
    }
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


class RunningEstate:
    """The sample estate served by simulators on loopback: moto per AWS-compatible node, the
    Kubernetes simulator per cluster. Use as a context manager; `files` are written to `root`."""

    def __init__(self, estate: Estate, root: Path) -> None:
        self.estate = estate
        self.root = root
        self.endpoints: dict[str, str] = {}
        self.clusters: dict[str, Any] = {}
        self._servers: list[Any] = []

    def __enter__(self) -> RunningEstate:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        from inventory.sim.aws import start_moto_server
        from inventory.sim.k8s import KubernetesSimulator, make_node, utc_timestamp

        self.root.mkdir(parents=True, exist_ok=True)
        for node in self.estate.nodes:
            if "aws" in node.simulators:
                server, url = start_moto_server()
                self._servers.append(server)
                self.endpoints[node.id] = url
            if "kubernetes" in node.simulators:
                cluster = KubernetesSimulator().start()
                self.clusters[node.id] = cluster
                # The clusters predate every freeze: their nodes and system namespaces are old.
                built = utc_timestamp(datetime(2020, 3, 1, tzinfo=UTC))
                for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
                    cluster.update(
                        "namespace", None, namespace, metadata={"creationTimestamp": built}
                    )
                workers = 6 if node.level == "province_core" else 3
                for i in range(workers):
                    cluster.add(
                        "node",
                        make_node(
                            f"{node.id}-worker-{i + 1}", cpu="32", memory="128Gi", created=built
                        ),
                    )
        self._seed()

    def stop(self) -> None:
        from inventory.sim.aws import reset_moto

        if self.endpoints and self._servers:
            # moto's S3 bucket namespace is process-wide: leave nothing for the next estate.
            with contextlib.suppress(OSError):
                reset_moto(next(iter(self.endpoints.values())))
        for cluster in self.clusters.values():
            cluster.stop()
        for server in self._servers:
            server.stop()
        self.clusters.clear()
        self._servers.clear()

    def _seed(self) -> None:
        from inventory.sim import aws

        region = SIM_AWS_REGION
        for system in self.estate.systems:
            for n, placement in enumerate(system.placements):
                self._place(system.code, placement, n)
        for n, orphan in enumerate(self.estate.orphans):
            self._place(None, orphan, n)
        # Some department-cloud VMs are stopped: still live, they still occupy the node.
        for node_id, url in self.endpoints.items():
            if node_id.endswith(("-dc", "-room")):
                ec2 = aws.sim_client("ec2", url, region)
                ids = [
                    i["InstanceId"]
                    for r in ec2.describe_instances()["Reservations"]
                    for i in r["Instances"]
                ]
                if ids:
                    aws.stop_instances(url, region, ids[::7])

    def _place(self, code: str | None, placement: Placement, n: int) -> None:
        from inventory.sim import aws, k8s

        region = SIM_AWS_REGION
        tags = {SYSTEM_TAG: code} if code and placement.tagged else {}
        label = (code or "unowned").lower()
        if placement.form in ("vm", "bucket", "db", "volume"):
            url = self.endpoints[placement.node_id]
            if placement.form == "vm":
                # Tag-on-create for the root volume too, as a careful platform team does.
                names = [
                    {"Key": k, "Value": v} for k, v in {**tags, "Name": f"{label}-{n}"}.items()
                ]
                aws.sim_client("ec2", url, region).run_instances(
                    ImageId=aws.SIM_IMAGE_ID,
                    InstanceType="m5.large",
                    MinCount=1,
                    MaxCount=1,
                    TagSpecifications=[
                        {"ResourceType": kind, "Tags": names} for kind in ("instance", "volume")
                    ],
                )
            elif placement.form == "bucket":
                aws.seed_buckets(url, region, [f"{label}-{placement.node_id}-{n}"], tags=tags)
            elif placement.form == "db":
                aws.seed_db_instances(url, region, [f"{label}-db-{n}"], tags=tags)
            else:
                aws.seed_volumes(url, region, size_gib=200, tags=tags)
            return
        cluster = self.clusters[placement.node_id]
        created = k8s.utc_timestamp(placement.created) if placement.created else None
        namespace = label if code else "ops-tools"
        if cluster.get("namespace", None, namespace) is None:
            cluster.add(
                "namespace",
                k8s.make_namespace(
                    namespace, system=code if placement.tagged else None, created=created
                ),
            )
        name = f"{label}-{placement.form}-{n}"
        # Workloads carry no label of their own: they inherit the namespace's system label.
        if placement.form == "deployment":
            cluster.add(
                "deployment", k8s.make_deployment(namespace, name, replicas=2, created=created)
            )
        elif placement.form == "statefulset":
            cluster.add("statefulset", k8s.make_statefulset(namespace, name, created=created))
        elif placement.form == "cronjob":
            cluster.add("cronjob", k8s.make_cronjob(namespace, name, created=created))

    def write_files(self) -> dict[str, Path]:
        """Register, node file, kubeconfig and a credentials file for the simulated endpoints."""
        from inventory.sim.k8s import SIM_TOKEN

        kubeconfig = write_kubeconfig(
            {node_id: cluster.url for node_id, cluster in self.clusters.items()},
            self.root / "kubeconfig",
            SIM_TOKEN or "sim",
        )
        credentials = self.root / "aws-credentials"
        # Placeholder keys that only the local simulators accept; the standard AWS chain
        # reads them through AWS_SHARED_CREDENTIALS_FILE, as it would a real profile.
        credentials.write_text(
            "[yiyun-demo]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
            encoding="utf-8",
        )
        return {
            "register": write_register(self.estate, self.root / "register.csv"),
            "nodes": write_node_file(
                self.estate, self.endpoints, kubeconfig, self.root / "nodes.yaml"
            ),
            "kubeconfig": kubeconfig,
            "credentials": credentials,
        }
