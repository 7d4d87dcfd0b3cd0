"""Simulated AWS-compatible nodes: a moto HTTP server per node, seeded with EC2, EBS, S3 and RDS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import ssl
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

# Regions must be real AWS region names: moto keeps one backend per known region and answers
# an invented one ("cn-js-1") with a 500.
SIM_REGION = "us-east-1"
# moto accepts any access key; these are fixed placeholders, not secrets of anything.
SIM_ACCESS_KEY_ID = "testing"
SIM_SECRET_ACCESS_KEY = "testing"
# moto does not check that an AMI exists; any well-formed id launches.
SIM_IMAGE_ID = "ami-0a1b2c3d4e5f60718"

# moto's backends are process-wide, so two servers in one process would share their
# estate. Each server pins its own account id on every request, which gives it a state of
# its own: two simulated nodes really are two clouds.
_accounts = itertools.count(100_000_000_001)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _PinnedAccount:
    """WSGI middleware: every request to this server acts in one moto account."""

    def __init__(self, app: WsgiApp, account_id: str) -> None:
        self.app = app
        self.account_id = account_id

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        return self.app(environ, start_response)


def _moto_server_class() -> Any:
    # moto (and its Flask stack) load only when a simulated node is actually started.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class QuietHandler(MotoRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # one access-log line per API call would bury test and demo output

    class SimAwsServer(ThreadedMotoServer):
        """moto's threaded server as one simulated node: own account, quiet, optionally TLS."""

        def __init__(self, *, account_id: str, ssl_context: ssl.SSLContext | None) -> None:
            super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
            self.account_id = account_id
            self.ssl_context = ssl_context

        def _server_entry(self) -> None:
            app = _PinnedAccount(DomainDispatcherApplication(create_backend_app), self.account_id)
            self._server = make_server(
                self._ip_address,
                self._port,
                app,
                threaded=True,
                request_handler=QuietHandler,
                ssl_context=self.ssl_context,
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return SimAwsServer


def start_moto_server(
    *, account_id: str | None = None, tls: tuple[Path, Path] | None = None
) -> tuple[Any, str]:
    """Start a moto server on a free loopback port; return (server, endpoint URL).

    Each server gets an account of its own unless `account_id` is given. `tls` is a
    (certificate, key) pair, e.g. from `make_self_signed_cert`, to serve https like a
    private endpoint with a self-signed certificate. Stop it with `server.stop()`.
    """
    context = None
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
    server = _moto_server_class()(
        account_id=account_id or f"{next(_accounts):012d}", ssl_context=context
    )
    server.start()
    host, port = server.get_host_and_port()
    scheme = "https" if tls is not None else "http"
    return server, f"{scheme}://{host}:{port}"


def reset_moto(endpoint_url: str, *, ca_bundle: Path | str | None = None) -> None:
    """Forget every simulated resource (of every account: moto's reset is process-wide)."""
    context = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else None
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        response.read()


def make_self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write a self-signed certificate for `host` and its key; return (cert path, key path).

    The certificate is its own CA, so the cert file doubles as a node's `ca_bundle`.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"yiyun sim {host}")])
    now = dt.datetime.now(dt.UTC)
    try:
        alt_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt_name = x509.DNSName(host)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([alt_name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "sim-cert.pem", directory / "sim-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def sim_client(
    service: str,
    endpoint_url: str,
    region: str = SIM_REGION,
    *,
    ca_bundle: Path | str | None = None,
) -> Any:
    """A boto3 client that seeds a simulated node (with the placeholder sim credentials)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=SIM_ACCESS_KEY_ID,
        aws_secret_access_key=SIM_SECRET_ACCESS_KEY,
        verify=str(ca_bundle) if ca_bundle else True,
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
    )


def _tag_list(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in (tags or {}).items()]


def seed_instances(
    endpoint_url: str,
    region: str = SIM_REGION,
    *,
    count: int = 1,
    tags: Mapping[str, str] | None = None,
    instance_type: str = "t3.micro",
    per_reservation: int | None = None,
    ca_bundle: Path | str | None = None,
) -> list[str]:
    """Launch `count` tagged EC2 instances; return their ids.

    `per_reservation` splits them over several run_instances calls. moto pages
    describe_instances by reservation, so a multi-page listing needs many reservations.
    """
    ec2 = sim_client("ec2", endpoint_url, region, ca_bundle=ca_bundle)
    batch = per_reservation or count
    tag_specs = [{"ResourceType": "instance", "Tags": _tag_list(tags)}] if tags else []
    ids: list[str] = []
    while len(ids) < count:
        size = min(batch, count - len(ids))
        response = ec2.run_instances(
            ImageId=SIM_IMAGE_ID,
            InstanceType=instance_type,
            MinCount=size,
            MaxCount=size,
            TagSpecifications=tag_specs,
        )
        ids.extend(instance["InstanceId"] for instance in response["Instances"])
    return ids


def terminate_instances(
    endpoint_url: str,
    region: str,
    instance_ids: list[str],
    *,
    ca_bundle: Path | str | None = None,
) -> None:
    sim_client("ec2", endpoint_url, region, ca_bundle=ca_bundle).terminate_instances(
        InstanceIds=instance_ids
    )


def stop_instances(
    endpoint_url: str,
    region: str,
    instance_ids: list[str],
    *,
    ca_bundle: Path | str | None = None,
) -> None:
    sim_client("ec2", endpoint_url, region, ca_bundle=ca_bundle).stop_instances(
        InstanceIds=instance_ids
    )


def seed_volumes(
    endpoint_url: str,
    region: str = SIM_REGION,
    *,
    count: int = 1,
    size_gib: int = 100,
    tags: Mapping[str, str] | None = None,
    ca_bundle: Path | str | None = None,
) -> list[str]:
    """Create `count` tagged EBS volumes in the region's first zone; return their ids."""
    ec2 = sim_client("ec2", endpoint_url, region, ca_bundle=ca_bundle)
    tag_specs = [{"ResourceType": "volume", "Tags": _tag_list(tags)}] if tags else []
    return [
        ec2.create_volume(
            AvailabilityZone=f"{region}a", Size=size_gib, TagSpecifications=tag_specs
        )["VolumeId"]
        for _ in range(count)
    ]


def delete_volumes(
    endpoint_url: str,
    region: str,
    volume_ids: list[str],
    *,
    ca_bundle: Path | str | None = None,
) -> None:
    ec2 = sim_client("ec2", endpoint_url, region, ca_bundle=ca_bundle)
    for volume_id in volume_ids:
        ec2.delete_volume(VolumeId=volume_id)


def seed_buckets(
    endpoint_url: str,
    region: str = SIM_REGION,
    names: Iterable[str] = (),
    *,
    tags: Mapping[str, str] | None = None,
    ca_bundle: Path | str | None = None,
) -> list[str]:
    """Create S3 buckets (tagged when `tags` is given); return their names.

    Bucket names are global across moto's accounts, as on AWS: give each node its own.
    """
    s3 = sim_client("s3", endpoint_url, region, ca_bundle=ca_bundle)
    created = []
    for name in names:
        # us-east-1 is the one region that refuses an explicit location constraint.
        location = {} if region == "us-east-1" else {"LocationConstraint": region}
        s3.create_bucket(
            Bucket=name, **({"CreateBucketConfiguration": location} if location else {})
        )
        if tags:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tag_list(tags)})
        created.append(name)
    return created


def delete_buckets(
    endpoint_url: str,
    region: str,
    names: Iterable[str],
    *,
    ca_bundle: Path | str | None = None,
) -> None:
    s3 = sim_client("s3", endpoint_url, region, ca_bundle=ca_bundle)
    for name in names:
        s3.delete_bucket(Bucket=name)


def seed_db_instances(
    endpoint_url: str,
    region: str = SIM_REGION,
    identifiers: Iterable[str] = (),
    *,
    instance_class: str = "db.m5.large",
    allocated_storage_gib: int = 100,
    engine: str = "postgres",
    tags: Mapping[str, str] | None = None,
    ca_bundle: Path | str | None = None,
) -> list[str]:
    """Create RDS instances; return their ARNs (what the collector keys them by)."""
    rds = sim_client("rds", endpoint_url, region, ca_bundle=ca_bundle)
    return [
        rds.create_db_instance(
            DBInstanceIdentifier=identifier,
            DBInstanceClass=instance_class,
            Engine=engine,
            AllocatedStorage=allocated_storage_gib,
            MasterUsername="sim",
            MasterUserPassword="sim-password-not-a-secret",
            Tags=_tag_list(tags),
        )["DBInstance"]["DBInstanceArn"]
        for identifier in identifiers
    ]


def delete_db_instances(
    endpoint_url: str,
    region: str,
    identifiers: Iterable[str],
    *,
    ca_bundle: Path | str | None = None,
) -> None:
    rds = sim_client("rds", endpoint_url, region, ca_bundle=ca_bundle)
    for identifier in identifiers:
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
