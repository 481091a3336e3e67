"""Providers: the base class and registry, and the built-in providers.

Write your own by subclassing :class:`BaseProvider` and registering it with
:func:`register_provider` (see docs/providers.md). The built-in types:

- ``anthropic`` (legacy ``anthropic_api``): Anthropic Messages API via the official SDK.
- ``openai`` (legacy ``openai_api``): OpenAI Chat Completions (or any compatible server) via the official SDK.
- ``desktop_commander`` (legacy ``desktop_commander_mcp``): a local command run as an async subprocess.
- ``persona_fallback`` (legacy ``hardcoded_fallback``): answers from the persona's metadata; never fails.

Their options classes (``AnthropicOptions``, ``OpenAIOptions``, ``DesktopCommanderOptions``)
are importable from here; each built-in module is imported on first use (and each SDK only
when its provider is created), so ``import valis_actors`` stays light.
"""

from __future__ import annotations

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .._messages import ProviderRequest as ProviderRequest
from .._messages import ProviderResponse as ProviderResponse
from .._messages import Turn as Turn
from .._messages import Usage as Usage
from ._base import BaseProvider as BaseProvider
from ._base import provider_class as provider_class
from ._base import provider_options as provider_options
from ._base import register_provider as register_provider
from ._base import registered_provider_types as registered_provider_types

if _TYPE_CHECKING:
    from ._anthropic import AnthropicOptions as AnthropicOptions
    from ._desktop_commander import DesktopCommanderOptions as DesktopCommanderOptions
    from ._openai import OpenAIOptions as OpenAIOptions

__all__ = [
    "AnthropicOptions",
    "BaseProvider",
    "DesktopCommanderOptions",
    "OpenAIOptions",
    "ProviderRequest",
    "ProviderResponse",
    "Turn",
    "Usage",
    "provider_class",
    "provider_options",
    "register_provider",
    "registered_provider_types",
]

_LAZY = {
    "AnthropicOptions": "._anthropic",
    "OpenAIOptions": "._openai",
    "DesktopCommanderOptions": "._desktop_commander",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(module, __name__), name)
    globals()[name] = value
    return value
