"""Roles and scopes as DESIGN.md states them: what each grant allows, and which scopes exist."""

from __future__ import annotations

import pytest

from inventory.access import AccessError, Actor, Grant, Scope


def test_a_city_scope_is_spelled_as_the_register_spells_it() -> None:
    assert str(Scope.parse("city:南京")) == "city:南京市"
    assert str(Scope.parse(" city:省级 ")) == "city:省级"
    for wrong in ("city:火星", "city:", "department:", "town:x", "", "Province"):
        with pytest.raises(AccessError) as refused:
            Scope.parse(wrong)
        assert refused.value.key == "access_bad_scope"


def test_the_estate_wide_rights_need_a_province_grant() -> None:
    city_admin = Actor("a", "token", (Grant.parse("admin", "city:南京市"),))
    assert city_admin.may("advance", department="NJ-D1", city="南京市")
    for right in ("register", "nodes", "access", "audit"):
        assert not city_admin.may(right)
        assert not city_admin.may(right, department="NJ-D1", city="南京市")
    assert Actor("p", "token", (Grant.parse("admin", "province"),)).may("register")


def test_each_role_holds_its_rights_within_its_scope_only() -> None:
    edu_it = Actor("it", "oidc", (Grant.parse("department_it", "department:JS-EDU"),))
    assert edu_it.may("advance", department="JS-EDU", city="省级")
    assert not edu_it.may("advance", department="JS-HEA", city="省级")
    assert not edu_it.may("override", department="JS-EDU", city="省级")
    viewer = Actor("v", "oidc", (Grant.parse("viewer", "province"),))
    assert viewer.may("read", department="JS-EDU", city="省级")
    assert not viewer.may("advance", department="JS-EDU", city="省级")
    planner = Actor("p", "oidc", (Grant.parse("planner", "city:南京市"),))
    assert planner.may("override", department="NJ-D1", city="南京市")
    assert not planner.may("advance", department="NJ-D1", city="南京市")
    assert not planner.may("override", department="JS-EDU", city="省级")


def test_the_local_operator_signs_with_by_and_holds_every_right() -> None:
    local = Actor.local("王工")
    assert local.kind == "local" and local.signature == "王工"
    assert local.may("register") and local.may("advance", department="X", city="省级")
