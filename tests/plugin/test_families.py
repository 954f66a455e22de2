"""Families of names: one registration (``timm/*``) that stands for many components."""

from __future__ import annotations

from pathlib import Path

import pytest

import zoo
from zoo.plugin.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
TINY = "mnist:val_size=100"


# --- families: one registration, many names ----------------------------------------------------


def family_registry(calls: list[int]) -> Registry:
    def members() -> dict[str, str]:
        calls.append(1)
        return {"small_net": "the small one", "big_net": "the big one"}

    def build(member: str, /, act, input_shape, num_classes, width: int = 8) -> tuple:
        return member, width

    registry = Registry()
    register = registry.registrar("architecture", "family-plugin")
    register("nets/*", build, summary="a family of nets", members=members, aliases=("netz/*",))
    register("plain", lambda act, input_shape, num_classes: None, summary="not a family")
    return registry


def test_family_member_lookup_binds_the_member_name() -> None:
    calls: list[int] = []
    registry = family_registry(calls)
    assert calls == []  # registering does not list the members
    member = registry.get("architecture", "Nets/Small-Net")
    assert (member.name, member.member, member.summary) == (
        "nets/small_net",
        "small_net",
        "the small one",
    )
    assert member.build({"width": 3}, act=None, input_shape=(1, 2, 2), num_classes=2) == (
        "small_net",
        3,
    )
    assert registry.get("architecture", "netz/big_net").name == "nets/big_net"  # via the alias
    assert list(member.parameters()) == ["width"]
    with pytest.raises(zoo.ComponentSpecError, match="'width' expects int"):
        member.check_arguments({"width": "wide"})
    assert calls == [1]  # listed once, then cached


def test_family_errors() -> None:
    registry = family_registry([])
    with pytest.raises(zoo.UnknownComponentError, match="Did you mean 'nets/small_net'"):
        registry.get("architecture", "nets/smal_net")
    for name in ("nets", "nets/*", "NETZ/"):
        with pytest.raises(zoo.ComponentSpecError, match=r"'nets/\*' is a family.*'nets/<name>'"):
            registry.get("architecture", name)
    with pytest.raises(zoo.UnknownComponentError):
        registry.get("architecture", "plain/small_net")  # not a family
    register = registry.registrar("architecture", "other")
    with pytest.raises(ValueError, match="'/'"):
        register("a/b", lambda: None, summary="slashes are for families")
    with pytest.raises(ValueError, match="PREFIX/"):
        register("a", lambda: None, summary="a family needs PREFIX/*", members=list)
    with pytest.raises(ValueError, match="PREFIX/"):
        register("b/*", lambda: None, summary="PREFIX/* needs members")
    with pytest.raises(TypeError, match="members"):
        register("c/*", lambda: None, summary="bad members", members=42)


def test_family_listing_lists_members_only_for_patterns_that_can_match() -> None:
    calls: list[int] = []
    registry = family_registry(calls)
    assert [c.name for c in registry.components("architecture")] == ["nets/*", "plain"]
    assert [c.name for c in registry.components("architecture", "pla*")] == ["plain"]
    assert calls == []  # no pattern, or one that cannot match nets/..., lists no members
    assert [c.name for c in registry.components("architecture", "nets/*")] == [
        "nets/big_net",
        "nets/small_net",
    ]
    assert [c.name for c in registry.components("architecture", "*SMALL*")] == ["nets/small_net"]
    assert [c.name for c in registry.components("architecture", "n*")] == [
        "nets/big_net",
        "nets/small_net",
    ]
    assert [c.name for c in registry.components("architecture", "nets")] == ["nets/*"]


def test_failing_member_list_is_a_plugin_error() -> None:
    registry = Registry()

    def members() -> list[str]:
        raise ModuleNotFoundError("No module named 'somelib'")

    registry.registrar("architecture", "broken")("lib/*", print, summary="x", members=members)
    with pytest.raises(zoo.PluginError, match=r"'broken'.*somelib"):
        registry.get("architecture", "lib/model")
