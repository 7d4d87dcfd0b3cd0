"""Who may do what: roles, scopes, the acting principal (Actor) and the checks use cases make."""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select

from inventory.i18n import Wording
from inventory.models import Department, System

ROLES = ("viewer", "department_it", "planner", "admin")
# What each role may do (DESIGN.md, "Who may do what"). Every role reads within its scope.
# admin holds every right: it is the province's operator of yiyun, as the CLI's user is.
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "department_it": frozenset({"read", "deps", "advance", "plan_edit"}),
    "planner": frozenset({"read", "assess", "override", "plan", "plan_edit"}),
    "admin": frozenset(
        {
            "read",
            "deps",
            "advance",
            "plan_edit",
            "assess",
            "override",
            "plan",
            "register",
            "nodes",
            "exemptions",
            "access",
            "audit",
        }
    ),
}
ACTIONS = PERMISSIONS["admin"]
# Rights over the whole estate (the register, the nodes, who may do what): a grant narrower
# than the province cannot hold them, whatever its role.
PROVINCE_ONLY = frozenset({"register", "nodes", "access", "audit"})
PrincipalKind = Literal["local", "oidc", "token", "demo"]


class AccessDenied(Wording):
    """The actor's grants do not allow this action on this target (HTTP 403, CLI exit 1)."""


class AccessError(Wording):
    """A role, scope or grant that cannot be: a mistake in what was asked (HTTP 422, exit 2)."""


@dataclass(frozen=True, order=True)
class Scope:
    """`province`, `city:<city>` or `department:<code>`: the part of the estate a grant covers."""

    kind: Literal["province", "city", "department"]
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> Scope:
        text = text.strip()
        if text == "province":
            return cls("province")
        kind, _, value = text.partition(":")
        value = value.strip()
        if kind == "city" and value:
            # The register's own spelling (南京 → 南京市, 省级): a grant over a city that
            # no system can be in would silently cover nothing.
            from inventory.registry import parse_city  # the registry imports this module

            try:
                return cls("city", parse_city(value))
            except Wording:
                raise AccessError("access_bad_scope", scope=text) from None
        if kind == "department" and value:
            return cls("department", value)
        raise AccessError("access_bad_scope", scope=text)

    def __str__(self) -> str:
        return "province" if self.kind == "province" else f"{self.kind}:{self.value}"

    def covers(self, *, department: str, city: str) -> bool:
        if self.kind == "province":
            return True
        if self.kind == "city":
            return city == self.value
        return department == self.value


@dataclass(frozen=True, order=True)
class Grant:
    role: str
    scope: Scope

    @classmethod
    def parse(cls, role: str, scope: str) -> Grant:
        role = role.strip()
        if role not in ROLES:
            raise AccessError("access_bad_role", role=role, roles=", ".join(ROLES))
        return cls(role, Scope.parse(scope))

    def allows(self, action: str) -> bool:
        if action in PROVINCE_ONLY and self.scope.kind != "province":
            return False
        return action in PERMISSIONS[self.role]

    def __str__(self) -> str:
        return f"{self.role}@{self.scope}"


PROVINCE_ADMIN = Grant("admin", Scope("province"))


@dataclass(frozen=True)
class Actor:
    """The person or program acting, as proved: an OIDC subject, an API token, or the local
    operator (the OS user at a terminal with the ledger's URL, who holds every right)."""

    principal: str
    kind: PrincipalKind
    grants: tuple[Grant, ...] = ()
    # What the migration log's `by` shows: the principal, or the CLI's --by beside the OS user.
    by: str = ""
    request_id: str | None = None
    name: str | None = None
    token_id: str | None = None
    # When the credential stops proving anything (an API token's expiry).
    expires_at: datetime | None = None

    @classmethod
    def local(cls, by: str | None = None) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
            user = "unknown"
        return cls(principal=user, kind="local", grants=(PROVINCE_ADMIN,), by=(by or "").strip())

    @property
    def signature(self) -> str:
        """Who did it, as the migration log records it: the CLI's --by (which the rules
        require, so an empty one is refused there), else the proved principal."""
        return self.by if self.kind == "local" else self.principal

    def may(self, action: str, *, department: str | None = None, city: str | None = None) -> bool:
        """True when some grant allows `action` on a target in `department`/`city`, or, with no
        target, on the whole estate (province scope)."""
        for grant in self.grants:
            if not grant.allows(action):
                continue
            if department is None and city is None:
                if grant.scope.kind == "province":
                    return True
            elif grant.scope.covers(department=department or "", city=city or ""):
                return True
        return False

    def require(
        self, action: str, *, department: str | None = None, city: str | None = None
    ) -> None:
        if not self.may(action, department=department, city=city):
            target = department or city or "province"
            raise AccessDenied(
                "access_denied", principal=self.principal, action=action, target=target
            )

    def require_system(self, session: Session, action: str, code: str) -> System | None:
        """The system `code` if the actor may act on it; classified systems and those outside
        every grant read as unknown (None), so a refusal never tells one from the other."""
        system = session.exec(select(System).where(col(System.code) == code)).first()
        if system is None or system.classified:
            return None
        if not self.may("read", department=system.department_code, city=system.city):
            return None
        self.require(action, department=system.department_code, city=system.city)
        return system

    @property
    def province_wide(self) -> bool:
        return any(g.scope.kind == "province" and g.allows("read") for g in self.grants)

    def readable_departments(self, session: Session) -> set[str] | None:
        """Department codes this actor may read, or None for all of them (a province grant)."""
        if self.province_wide:
            return None
        cities = {g.scope.value for g in self.grants if g.scope.kind == "city"}
        departments = {g.scope.value for g in self.grants if g.scope.kind == "department"}
        if cities:
            rows = session.exec(select(Department.code).where(col(Department.city).in_(cities)))
            departments |= set(rows)
        return departments

    def readable_cities(self) -> set[str] | None:
        if self.province_wide:
            return None
        return {g.scope.value for g in self.grants if g.scope.kind == "city"}

    def with_request(self, request_id: str) -> Actor:
        return Actor(
            principal=self.principal,
            kind=self.kind,
            grants=self.grants,
            by=self.by,
            request_id=request_id,
            name=self.name,
            token_id=self.token_id,
            expires_at=self.expires_at,
        )


def system_filter(actor: Actor) -> ColumnElement[bool] | None:
    """A WHERE clause on System keeping what the actor may read (None: the whole province).

    Classified systems are never served: callers add `System.classified == false` themselves,
    as every listing already does (inventory/confidentiality.py)."""
    if actor.province_wide:
        return None
    departments = {g.scope.value for g in actor.grants if g.scope.kind == "department"}
    cities = {g.scope.value for g in actor.grants if g.scope.kind == "city"}
    return or_(col(System.department_code).in_(departments), col(System.city).in_(cities))


def parse_grants(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[Grant, ...], list[str]]:
    """Grants from (role, scope) pairs, and the pairs that are not grants (kept to be logged)."""
    grants: list[Grant] = []
    bad: list[str] = []
    for role, scope in pairs:
        try:
            grants.append(Grant.parse(role, scope))
        except AccessError:
            bad.append(f"{role}:{scope}")
    return tuple(sorted(set(grants))), bad
