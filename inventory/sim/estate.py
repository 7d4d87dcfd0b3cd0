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
LEGACY_NODE = {
    "JS-EDU": "edu-dc",
    "JS-HLTH": "hlth-dc",
    "JS-HRSS": "hrss-room",
    "JS-TRANS": "trans-dc",
}
LEGACY_BY_CITY = {"南京市": "nj-leased", "苏州市": "sz-room", "无锡市": "wx-room"}
# Every stack the sample estate can simulate; vSphere needs vcsim, built with Go.
STACKS = ("aws", "kubernetes", "vsphere", "openstack")
# The one datacenter of each simulated vCenter (vcsim's own name for it).
SIM_DATACENTER = "DC0"
SIM_OPENSTACK_REGION = "RegionOne"


@dataclass
class NodeDef:
    """One node of the sample estate and how it is simulated: aws → moto, kubernetes → the
    Kubernetes simulator, vsphere → vcsim, openstack → the OpenStack simulator."""

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


def _nodes(today: date, stacks: tuple[str, ...] = STACKS) -> list[NodeDef]:
    """The estate's nodes, less those whose only stack cannot be simulated here."""
    return [n for n in _all_nodes(today) if set(n.simulators) & set(stacks)]


def _all_nodes(today: date) -> list[NodeDef]:
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
                # 徐州's backbone node runs an OpenStack-based stack (InCloud OS and the like).
                ("openstack",) if prefix == "XZ" else ("kubernetes",),
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
        # Two VMware server rooms: one frozen since 2022, one not.
        NodeDef(
            "hrss-room",
            "省人社厅自建机房（VMware）",
            "server_room",
            False,
            "省级",
            ("vsphere",),
            owner_department="JS-HRSS",
            frozen_since=FREEZE_2022,
            mlps_level=3,
        ),
        NodeDef(
            "wx-room",
            "无锡市自建机房（VMware）",
            "server_room",
            False,
            "无锡市",
            ("vsphere",),
            mlps_level=2,
        ),
        # A department cloud on an OpenStack-based stack.
        NodeDef(
            "trans-dc",
            "省交通运输厅部门云（OpenStack）",
            "department_cloud",
            False,
            "省级",
            ("openstack",),
            owner_department="JS-TRANS",
            frozen_since=FREEZE_2022,
            mlps_level=2,
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
    stacks = nodes[node_id].simulators
    if "vsphere" in stacks:
        return ["vm"] * rng.randint(1, 3)
    if "openstack" in stacks:
        # No Swift containers: their listing carries no metadata, so no system.
        forms = ["vm"] * rng.randint(1, 3)
        if rng.random() < 0.3:
            forms.append("volume")
        return forms
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


def plan_estate(
    *, today: date, systems: int = 300, seed: int = 2026, stacks: tuple[str, ...] = STACKS
) -> Estate:
    """Decide deterministically which systems exist and where their resources run; nodes of
    a stack not in `stacks` are left out (their departments keep their systems at home)."""
    rng = random.Random(seed)
    nodes = _nodes(today, stacks)
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
        if legacy not in by_id:
            legacy = None
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
                        "deployment" if by_id[legacy].simulators == ("kubernetes",) else "vm",
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
    # Whatever the dice said, the frozen VMware room and the frozen OpenStack cloud each show
    # one VM created after the freeze: the rule read from config.createDate and `created`.
    for node_id in ("hrss-room", "trans-dc"):
        frozen = by_id.get(node_id)
        since = frozen.frozen_since if frozen else None
        late = [p for s in planned for p in s.placements if p.node_id == node_id]
        if since and late and not any(p.created and p.created.date() > since for p in late):
            late[0].created = datetime.combine(
                since + timedelta(days=200), datetime.min.time(), tzinfo=UTC
            )
    orphans = [Placement("gov-room", "vm", tagged=False) for _ in range(4)]
    orphans += [Placement("js-core", "deployment", tagged=False) for _ in range(2)]
    if "wx-room" in by_id:
        orphans.append(Placement("wx-room", "vm", tagged=False))
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


# The environment variable the demo's vSphere sources name for their password (vcsim takes any).
DEMO_VC_PASSWORD_ENV = "YIYUN_DEMO_VC_PASSWORD"


def node_file(
    estate: Estate,
    endpoints: dict[str, str],
    kubeconfig: Path,
    vcenters: dict[str, tuple[str, int]] | None = None,
    clouds_yaml: Path | None = None,
) -> dict[str, Any]:
    """The YAML node file for the estate, pointing at the running simulators: `endpoints`
    (aws), `kubeconfig` (kubernetes), `vcenters` (vsphere: host, port) and `clouds_yaml`
    (openstack: one cloud per node, named by the node's id)."""
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
        if "vsphere" in n.simulators and vcenters and n.id in vcenters:
            host, port = vcenters[n.id]
            sources.append(
                {
                    "kind": "vsphere",
                    "id": "vcenter",  # vcsim's port changes every run; a derived id would too
                    "host": host,
                    "port": port,
                    "username": "administrator@vsphere.local",
                    "password_env": DEMO_VC_PASSWORD_ENV,
                    "datacenters": [SIM_DATACENTER],
                    # vcsim serves a self-signed certificate; a real vCenter gets `ca_bundle:`.
                    "verify_tls": False,
                }
            )
        if "openstack" in n.simulators and clouds_yaml is not None:
            sources.append(
                {
                    "kind": "openstack",
                    "cloud": n.id,
                    "clouds_yaml": str(clouds_yaml),
                    "regions": [SIM_OPENSTACK_REGION],
                }
            )
        entry["sources"] = sources
        nodes.append(entry)
    return {"nodes": nodes}


def write_node_file(
    estate: Estate,
    endpoints: dict[str, str],
    kubeconfig: Path,
    path: Path,
    vcenters: dict[str, tuple[str, int]] | None = None,
    clouds_yaml: Path | None = None,
) -> Path:
    document = node_file(estate, endpoints, kubeconfig, vcenters, clouds_yaml)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
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
        self.vcenters: dict[str, Any] = {}  # node id → VsphereSimulator
        self.clouds: dict[str, Any] = {}  # node id → OpenStackSimulator
        self._servers: list[Any] = []
        self._vcenter_admin: dict[str, Any] = {}  # node id → VcsimInventory
        # vSphere tags are attached in one pass per vCenter once every VM exists.
        self._tagged: dict[str, dict[str, list[Any]]] = {}
        # (system, node) → what was made there, so a sample migration can take it away:
        # (form, identifier) on an AWS-compatible node, (kind, namespace, name) on a cluster.
        self._made: dict[tuple[str, str], list[tuple[str, ...]]] = {}

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
            if "vsphere" in node.simulators:
                self._start_vcenter(node)
            if "openstack" in node.simulators:
                self._start_cloud(node)
        self._seed()

    def _start_vcenter(self, node: NodeDef) -> None:
        from inventory.sim.vsphere import VcsimInventory, VcsimModel, VsphereSimulator

        # A cluster of ESXi hosts with one shared datastore, and no VMs until _seed puts them.
        model = VcsimModel(
            datacenters=1, clusters=1, hosts_per_cluster=4, standalone_hosts=0, vms=0
        )
        simulator = VsphereSimulator(model).start()
        self.vcenters[node.id] = simulator
        self._vcenter_admin[node.id] = VcsimInventory(simulator, SIM_DATACENTER)

    def _start_cloud(self, node: NodeDef) -> None:
        from inventory.sim.openstack import OpenStackSimulator

        cloud = OpenStackSimulator(regions=(SIM_OPENSTACK_REGION,)).start()
        self.clouds[node.id] = cloud
        for i in range(6 if node.level == "city_backbone" else 3):
            cloud.add_hypervisor(
                region=SIM_OPENSTACK_REGION,
                hostname=f"{node.id}-compute-{i + 1}",
                vcpus=64,
                memory_mib=256 * 1024,
                local_gb=4000,
            )

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
        for admin in self._vcenter_admin.values():
            with contextlib.suppress(Exception):  # the simulator is going anyway
                admin.close()
        for simulator in [*self.vcenters.values(), *self.clouds.values()]:
            simulator.stop()
        self.clusters.clear()
        self._servers.clear()
        self._vcenter_admin.clear()
        self.vcenters.clear()
        self.clouds.clear()

    def _seed(self) -> None:
        from inventory.sim import aws

        region = SIM_AWS_REGION
        for system in self.estate.systems:
            for n, placement in enumerate(system.placements):
                self._place(system.code, placement, n)
        for n, orphan in enumerate(self.estate.orphans):
            self._place(None, orphan, n)
        for node_id, tagged in self._tagged.items():
            self._vcenter_admin[node_id].tag(SYSTEM_TAG, tagged)
        # Some server-room VMs are powered off: still live, they still hold their disks.
        for admin in self._vcenter_admin.values():
            for vm in list(admin.datacenter.vmFolder.childEntity)[::7]:
                admin.power_off(vm)
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
        if placement.node_id in self.vcenters:
            self._place_vsphere(code if placement.tagged else None, placement, f"{label}-{n}")
            return
        if placement.node_id in self.clouds:
            self._place_openstack(code if placement.tagged else None, placement, f"{label}-{n}")
            return
        made = self._made.setdefault((code or "", placement.node_id), [])
        if placement.form in ("vm", "bucket", "db", "volume"):
            url = self.endpoints[placement.node_id]
            if placement.form == "vm":
                # Tag-on-create for the root volume too, as a careful platform team does.
                names = [
                    {"Key": k, "Value": v} for k, v in {**tags, "Name": f"{label}-{n}"}.items()
                ]
                launched = aws.sim_client("ec2", url, region).run_instances(
                    ImageId=aws.SIM_IMAGE_ID,
                    InstanceType="m5.large",
                    MinCount=1,
                    MaxCount=1,
                    TagSpecifications=[
                        {"ResourceType": kind, "Tags": names} for kind in ("instance", "volume")
                    ],
                )
                made += [("vm", i["InstanceId"]) for i in launched["Instances"]]
            elif placement.form == "bucket":
                buckets = [f"{label}-{placement.node_id}-{n}"]
                made += [("bucket", b) for b in aws.seed_buckets(url, region, buckets, tags=tags)]
            elif placement.form == "db":
                aws.seed_db_instances(url, region, [f"{label}-db-{n}"], tags=tags)
                made.append(("db", f"{label}-db-{n}"))
            else:
                made += [
                    ("volume", v) for v in aws.seed_volumes(url, region, size_gib=200, tags=tags)
                ]
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
        if placement.form in ("deployment", "statefulset", "cronjob"):
            made.append((placement.form, namespace, name))

    def move(self, code: str, sources: tuple[str, ...], target: str) -> int:
        """Build on `target` what the system runs on `sources`, as a migration team would; the
        originals stay until `clear` (the cut-over). Returns how many pieces were built."""
        system = next(s for s in self.estate.systems if s.code == code)
        pieces = [p for p in system.placements if p.node_id in sources]
        for n, piece in enumerate(pieces):
            if piece.node_id in self.vcenters or piece.node_id in self.clouds:
                raise ValueError(f"the demo moves only AWS-compatible and Kubernetes workloads, "
                                 f"not {code} on {piece.node_id}")  # fmt: skip
            moved = Placement(target, piece.form)
            # Numbered past the system's own pieces: names on the target never collide.
            self._place(code, moved, len(system.placements) + n)
            system.placements.append(moved)
        return len(pieces)

    def clear(self, code: str, node_ids: tuple[str, ...]) -> int:
        """Take away everything the system has on `node_ids` (its old home, after cut-over)."""
        from inventory.sim import aws

        system = next(s for s in self.estate.systems if s.code == code)
        removed = 0
        for node_id in node_ids:
            if node_id in self.vcenters or node_id in self.clouds:
                raise ValueError(f"the demo clears only AWS-compatible and Kubernetes nodes, "
                                 f"not {node_id}")  # fmt: skip
            for made in self._made.pop((code, node_id), []):
                if node_id in self.clusters:
                    removed += self.clusters[node_id].delete(made[0], made[1], made[2])
                    continue
                url, form, ident = self.endpoints[node_id], made[0], made[1]
                if form == "vm":
                    aws.terminate_instances(url, SIM_AWS_REGION, [ident])
                elif form == "bucket":
                    aws.delete_buckets(url, SIM_AWS_REGION, [ident])
                elif form == "db":
                    aws.delete_db_instances(url, SIM_AWS_REGION, [ident])
                else:
                    aws.delete_volumes(url, SIM_AWS_REGION, [ident])
                removed += 1
            if node_id in self.clusters:
                # The system's namespace goes with its workloads: it would still name it.
                self.clusters[node_id].delete("namespace", None, code.lower())
        system.placements = [p for p in system.placements if p.node_id not in node_ids]
        return removed

    def _place_vsphere(self, code: str | None, placement: Placement, name: str) -> None:
        """A VM in the node's vCenter. Its system: a tag in the system category in one room,
        the custom attribute of that name in the other, as both are found in practice."""
        admin = self._vcenter_admin[placement.node_id]
        vm = admin.create_vm(name, vcpu=4, memory_mib=8192, disk_gib=100, created=placement.created)
        if code is None:
            return
        if placement.node_id == "wx-room":
            self._tagged.setdefault(placement.node_id, {}).setdefault(code, []).append(vm)
        else:
            admin.set_attribute(vm, SYSTEM_TAG, code)

    def _place_openstack(self, code: str | None, placement: Placement, name: str) -> None:
        """A server (or volume) in the node's cloud, in its department's project. Nova refuses
        "/" in tags and metadata keys: the system goes in as `yiyun.io:system`."""
        cloud = self.clouds[placement.node_id]
        # One project per department (JS-TRANS-001 → js-trans), as tenants are laid out.
        owner = (code or "ops-tools").rsplit("-", 1)[0].lower()
        cloud.add_project(owner)
        nova_key = SYSTEM_TAG.replace("/", ":")
        if placement.form == "volume":
            metadata = {SYSTEM_TAG: code} if code else {}
            cloud.add_volume(owner, name=f"{name}-data", size_gib=200, metadata=metadata,
                             created=placement.created)  # fmt: skip
            return
        # One department tags its servers, the other sets metadata: both are attributed.
        on_tags = placement.node_id == "trans-dc"
        cloud.add_server(
            owner,
            name=name,
            vcpus=4,
            ram_mib=8192,
            disk_gib=100,
            tags=[f"{nova_key}={code}"] if code and on_tags else [],
            metadata={nova_key: code} if code and not on_tags else {},
            created=placement.created,
        )

    def write_clouds_yaml(self, path: Path) -> Path | None:
        """One clouds.yaml with a cloud per OpenStack node, named by the node's id."""
        if not self.clouds:
            return None
        clouds: dict[str, Any] = {}
        for node_id, cloud in self.clouds.items():
            single = cloud.write_clouds_yaml(path, cloud=node_id, region=SIM_OPENSTACK_REGION)
            clouds.update(yaml.safe_load(single.read_text(encoding="utf-8"))["clouds"])
        path.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path

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
        # Placeholder passwords the simulators accept: the same in each cloud's entry.
        clouds_yaml = self.write_clouds_yaml(self.root / "clouds.yaml")
        vcenters = {node_id: (sim.host, sim.port) for node_id, sim in self.vcenters.items()}
        files = {
            "register": write_register(self.estate, self.root / "register.csv"),
            "nodes": write_node_file(
                self.estate,
                self.endpoints,
                kubeconfig,
                self.root / "nodes.yaml",
                vcenters,
                clouds_yaml,
            ),
            "kubeconfig": kubeconfig,
            "credentials": credentials,
        }
        if clouds_yaml is not None:
            files["clouds"] = clouds_yaml
        return files
