"""The identity-provider peer for tests: tools/oidc/server.js with our keys, clients and users."""

from __future__ import annotations

import base64
import json
import select
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.conftest import missing_peer

ROOT = Path(__file__).resolve().parents[2]
OIDC_TOOL = ROOT / "tools" / "oidc"
AUDIENCE = "urn:yiyun:api"
READY_TIMEOUT_SECONDS = 20.0

# Clients of the provider, as the province registers them for yiyun's users and robots.
CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": "js-edu-it",
        "client_secret": "js-edu-it-secret",
        "claims": {
            "preferred_username": "张敏",
            "yiyun_roles": [
                "department_it:department:JS-EDU",
                "viewer:city:南京市",
                "planner:city:南京市",
                "superuser:province",
                "viewer",
            ],
        },
    },
    {
        "client_id": "province-viewer",
        "client_secret": "province-viewer-secret",
        "claims": {"preferred_username": "省大数据局", "yiyun_roles": ["viewer:province"]},
    },
    # The web portal logs people in by the code flow (PKCE S256). Native with loopback redirect
    # URIs, so the portal may come back on whatever port `yiyun serve` picked (RFC 8252 §7.3).
    {
        "client_id": "yiyun-portal",
        "client_secret": "yiyun-portal-secret",
        "application_type": "native",
        "redirect_uris": ["http://127.0.0.1/auth/callback"],
        "post_logout_redirect_uris": ["http://127.0.0.1/"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    },
]

PORTAL_CLIENT_ID = "yiyun-portal"
PORTAL_CLIENT_SECRET = "yiyun-portal-secret"
# What the portal asks for: the ID token then carries preferred_username and yiyun_roles.
PORTAL_SCOPES = "openid profile yiyun"


@dataclass(frozen=True)
class Account:
    """A person who can log in at the provider's login page."""

    sub: str
    password: str
    preferred_username: str
    yiyun_roles: tuple[str, ...]

    def entry(self) -> dict[str, Any]:
        claims = {"preferred_username": self.preferred_username, "yiyun_roles": [*self.yiyun_roles]}
        return {"sub": self.sub, "password": self.password, "claims": claims}


# The people of the province who use the portal, one per kind of reach.
ACCOUNTS: dict[str, Account] = {
    account.sub: account
    for account in (
        Account("zhangmin", "zhangmin-pw-7q", "张敏", ("department_it:department:JS-EDU",)),
        Account("liuyang", "liuyang-pw-3k", "刘洋", ("viewer:province",)),
        Account("wangfang", "wangfang-pw-9d", "王芳", ("admin:province",)),
        Account("chenjing", "chenjing-pw-5t", "陈静", ("viewer:city:南京市",)),
    )
}


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class ProviderKey:
    """One RSA signing key of the provider, known to the test in full."""

    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def private_jwk(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private_key, as_dict=True)
        # PyJWT adds key_ops ["sign"], which the provider would publish on the public half too.
        jwk.pop("key_ops", None)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class OidcKeys:
    """The provider's key set, signing key first, written to `path` as a private JWKS."""

    path: Path
    keys: list[ProviderKey] = field(default_factory=list)

    @property
    def signing(self) -> ProviderKey:
        return self.keys[0]

    def rotate(self, *, keep_old: bool) -> ProviderKey:
        """A new signing key in front; the old ones stay published only when `keep_old`."""
        fresh = ProviderKey(kid=f"yiyun-{uuid.uuid4().hex[:8]}", private_key=new_rsa_key())
        self.keys = [fresh, *self.keys] if keep_old else [fresh]
        self.write()
        return fresh

    def write(self) -> None:
        jwks = {"keys": [key.private_jwk() for key in self.keys]}
        self.path.write_text(json.dumps(jwks), encoding="utf-8")


class OidcProvider:
    """A running `node tools/oidc/server.js`; restartable on the same port with rotated keys."""

    def __init__(self, keys: OidcKeys, workdir: Path) -> None:
        self.keys = keys
        self.workdir = workdir
        self.clients_path = workdir / "clients.json"
        self.clients_path.write_text(json.dumps(CLIENTS, ensure_ascii=False), encoding="utf-8")
        self.accounts_path = workdir / "accounts.json"
        entries = [account.entry() for account in ACCOUNTS.values()]
        self.accounts_path.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
        self.port = 0
        self.issuer = ""
        # Exit codes of every process stopped so far: a clean SIGTERM exit is part of the contract.
        self.exit_codes: list[int] = []
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        stderr_path = self.workdir / "provider.stderr"
        with stderr_path.open("ab") as stderr:
            self._process = subprocess.Popen(
                [
                    "node",
                    str(OIDC_TOOL / "server.js"),
                    f"--port={self.port}",
                    f"--jwks={self.keys.path}",
                    f"--clients={self.clients_path}",
                    f"--accounts={self.accounts_path}",
                    f"--audience={AUDIENCE}",
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=OIDC_TOOL,
            )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], READY_TIMEOUT_SECONDS)
        line = self._process.stdout.readline().decode() if ready else ""
        if not line.startswith("READY "):
            self.stop()
            log = stderr_path.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"oidc provider did not start: {line!r}\n{log}")
        self.issuer = line.split()[1]
        self.port = urllib.parse.urlsplit(self.issuer).port or 0

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            self.exit_codes.append(process.wait(timeout=10))
        except subprocess.TimeoutExpired:
            process.kill()
            self.exit_codes.append(process.wait())
        if process.stdout is not None:
            process.stdout.close()

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def end_session_endpoint(self) -> str:
        return f"{self.issuer}/session/end"

    def rotate(self, *, keep_old: bool) -> ProviderKey:
        """Restart on the same port (so the issuer stays) signing with a new key."""
        self.stop()
        fresh = self.keys.rotate(keep_old=keep_old)
        self.start()
        return fresh

    def token(self, client_id: str, audience: str = AUDIENCE) -> str:
        """A real access token from the token endpoint (client_credentials grant)."""
        client = next(client for client in CLIENTS if client["client_id"] == client_id)
        secret = f"{client_id}:{client['client_secret']}".encode()
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": audience})
        request = urllib.request.Request(
            f"{self.issuer}/token",
            data=body.encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(secret).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            issued = json.loads(response.read())
        assert issued["token_type"] == "Bearer"
        return str(issued["access_token"])


def require_oidc_tool() -> None:
    """Skip (fail under YIYUN_REQUIRE_PEERS=1) unless node and tools/oidc's modules are there."""
    if shutil.which("node") is None:
        missing_peer("`node` is not installed (Debian: apt-get install nodejs npm)")
    if not (OIDC_TOOL / "node_modules" / "oidc-provider").is_dir():
        missing_peer("tools/oidc/node_modules is missing: run `bash tools/oidc/install.sh`")


@pytest.fixture(scope="module")
def oidc_keys(tmp_path_factory: pytest.TempPathFactory) -> OidcKeys:
    """One RSA key (kid set), written as the JWKS the provider signs with."""
    keys = OidcKeys(path=tmp_path_factory.mktemp("oidc") / "jwks.json")
    keys.rotate(keep_old=False)
    return keys


@pytest.fixture(scope="module")
def oidc_provider(
    oidc_keys: OidcKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OidcProvider]:
    """The provider, listening on a loopback port it picked, issuing JWTs for AUDIENCE."""
    require_oidc_tool()
    provider = OidcProvider(oidc_keys, tmp_path_factory.mktemp("oidc-provider"))
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()
