"""The provider registry: decorator, aliases, entry points, and lazy built-ins."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest

import valis_actors as va
from valis_actors.providers import _base as _provider


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


@pytest.mark.anyio
async def test_a_provider_that_skips_super_init_still_answers_through_open_runtime() -> None:
    @va.register_provider("reg_no_super")
    class NoSuper(va.BaseProvider):
        def __init__(self, settings: va.ProviderSettings) -> None:
            self.greeting = "hello"  # no super().__init__(settings): allowed by the contract

        async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
            return va.ProviderResponse(text=f"{self.greeting} from {self.name}")

    config = va.Config.from_dict({"providers": [{"name": "mine", "type": "reg_no_super"}], "memory": {"backend": "memory"}})
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert reply.text == "hello from mine"
    assert reply.provider == "mine"
