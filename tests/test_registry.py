"""The provider registry: decorator, aliases, entry points, and lazy built-ins."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest

import valis_actors as va
from valis_actors import _provider


def test_register_provider_with_aliases_and_options() -> None:
    @va.register_provider("reg_demo", aliases=("reg_demo_legacy",))
    class Demo(va.BaseProvider):
        async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
            return va.ProviderResponse("x")

    config = va.Config.from_dict({"providers": ["reg_demo_legacy"]})
    assert config.providers[0].type == "reg_demo_legacy"
    assert _provider.provider_class("reg_demo_legacy") is Demo
    assert "reg_demo" in va.registered_provider_types()


def test_a_name_cannot_be_taken_twice() -> None:
    @va.register_provider("reg_taken")
    class First(va.BaseProvider):
        pass

    with pytest.raises(ValueError, match="already registered by"):
        @va.register_provider("reg_taken")
        class Second(va.BaseProvider):
            pass


def test_only_base_provider_subclasses_register() -> None:
    with pytest.raises(TypeError, match="needs a BaseProvider subclass"):
        va.register_provider("reg_bad")(object)  # type: ignore[arg-type]


def test_entry_point_providers_load_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    point = importlib.metadata.EntryPoint(
        name="ep_demo", value="tests.plugins.ep_provider:EntryPointDemo", group=_provider.ENTRY_POINT_GROUP
    )

    def fake_entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
        return [point] if group == _provider.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(_provider, "_entry_points_loaded", False)
    monkeypatch.setitem(_provider._LAZY, "placeholder", "x")  # restored after the test
    sys.modules.pop("tests.plugins.ep_provider", None)
    config = va.Config.from_dict({"providers": [{"type": "ep_demo"}]})
    assert config.providers[0].type == "ep_demo"
    assert _provider.provider_class("ep_demo").__name__ == "EntryPointDemo"
