"""What a provider is: the base class, its request and response, and the registry.

Providers are classes registered with ``@register_provider("name")`` and created
by the runtime from their config.json entries. The built-in providers are
registered lazily (by module path) so that ``import valis_actors`` never imports
a provider SDK: the module is imported when a config names its type.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .._messages import ProviderRequest, ProviderResponse
from .._validation import did_you_mean

if TYPE_CHECKING:
    from .._config import ProviderSettings

__all__ = [
    "BaseProvider",
    "provider_class",
    "provider_options",
    "register_provider",
    "registered_provider_types",
]


class BaseProvider:
    """Base class of providers.

    Subclasses implement :meth:`get_response` and are registered with
    :func:`register_provider`. A subclass need not call ``super().__init__``.

    Class attributes:
        options_type: An attrs class the entry's type-specific options are structured
            into (validated at config load, with path errors); ``None`` keeps a dict.
        local: True for providers that need no network and no concurrency slot
            (the persona fallback); they are exempt from ``max_concurrent_requests``
            and from the circuit breaker.
        suspends: True for providers whose every answer suspends the calling task at
            least once (network I/O, a subprocess). A message answered without
            suspending gets one checkpoint from the runtime, so that a caller asking in a
            loop cannot starve other tasks; set this on a provider that always awaits I/O
            to spare it (see docs/performance.md). False is always safe.
    """

    options_type: ClassVar[type | None] = None
    local: ClassVar[bool] = False
    suspends: ClassVar[bool] = False
    settings: ProviderSettings

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    @property
    def name(self) -> str:
        """The config entry's name (what ``reply.provider`` reports)."""
        return self.settings.name

    async def aopen(self) -> None:
        """Acquire long-lived resources (HTTP clients); called once by ``open_runtime``."""

    async def aclose(self) -> None:
        """Release what :meth:`aopen` acquired; called once when the runtime closes."""

    def unavailable_reason(self) -> str | None:
        """Why this provider cannot be used right now (e.g. a missing key), or None.

        Must be cheap and must not touch the network: it runs on the request path.
        """
        return None

    async def get_response(self, request: ProviderRequest) -> ProviderResponse:
        """Answer one message, or raise a ``ProviderError`` subclass."""
        raise NotImplementedError

    def stream_response(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse] | None:
        """Stream the answer, or return None if this provider cannot stream.

        The iterator yields text chunks (``str``) and, last, one ``ProviderResponse``
        holding the whole text, model and usage: that final item is what marks the
        answer complete. An iterator that ends without it, or raises a
        ``ProviderError``, delivered an incomplete answer. Failures before the first
        chunk fail over to the next provider; after it, the answer is continued by a
        provider that :meth:`continues_prefill`, or the caller is told it is incomplete.

        With ``request.prefill`` set, stream (and return in the final response) only
        the text that follows the prefill.
        """
        return None

    def continues_prefill(self) -> bool:
        """Whether this provider continues ``request.prefill`` (a cut answer) rather than answering anew.

        False by default: the cascade then never asks it to continue an answer. Return
        True only if the model, given a conversation that ends with a partial assistant
        message, answers with the rest of it. A model that refuses such a conversation
        should raise ``PrefillRejectedError``; the cascade then tries the next provider.
        """
        return False

    def redact(self, text: str) -> str:
        """Remove this provider's secrets from ``text`` (used on every error message)."""
        return text


P = TypeVar("P", bound=type[BaseProvider])
T = TypeVar("T")

_REGISTRY: dict[str, type[BaseProvider]] = {}
_ALIASES: dict[str, str] = {}
# Built-in providers, imported on first use so their SDKs stay out of `import valis_actors`.
_LAZY: dict[str, str] = {
    "anthropic": "valis_actors.providers._anthropic",
    "openai": "valis_actors.providers._openai",
    "desktop_commander": "valis_actors.providers._desktop_commander",
    "persona_fallback": "valis_actors._personas._fallback",
}
_LAZY_ALIASES: dict[str, str] = {
    "anthropic_api": "anthropic",
    "openai_api": "openai",
    "desktop_commander_mcp": "desktop_commander",
    "hardcoded_fallback": "persona_fallback",
    "fallback": "persona_fallback",
}


def register_provider(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[P], P]:
    """Register a provider class under ``name`` (and legacy ``aliases``) for config.json.

    Example:
        >>> import valis_actors as va
        >>> @va.register_provider("echo_doc")
        ... class Echo(va.BaseProvider):
        ...     async def get_response(self, request):
        ...         return va.ProviderResponse(text=request.message)

    Raises:
        ValueError: The name or an alias is already taken by another class.
    """

    def decorate(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, BaseProvider)):
            raise TypeError(f"@register_provider({name!r}) needs a BaseProvider subclass, got {cls!r}")
        for key in (name, *aliases):
            owner = _REGISTRY.get(_ALIASES.get(key, key))
            if owner is not None and owner.__qualname__ != cls.__qualname__:
                raise ValueError(f"provider type {key!r} is already registered by {owner.__qualname__}")
        _REGISTRY[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
        return cls

    return decorate


ENTRY_POINT_GROUP = "valis_actors.providers"
_entry_points_loaded = False


def _load_entry_points() -> None:
    """Add providers that other packages declare under the ``valis_actors.providers`` group.

    Each entry point names a type and the module (or ``module:Class``) that registers it,
    e.g. in the other package's pyproject.toml::

        [project.entry-points."valis_actors.providers"]
        my_llm = "my_package.valis_provider:MyLLM"

    The module is imported only when a config names the type.
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in _REGISTRY:
            _LAZY.setdefault(entry.name, entry.value.split(":")[0])


def canonical_type(type_name: str) -> str:
    """Resolve a legacy alias to its registered type name (unknown names pass through)."""
    return _ALIASES.get(type_name) or _LAZY_ALIASES.get(type_name) or type_name


def registered_provider_types() -> list[str]:
    """Every provider type config.json may name, built-in and registered, sorted."""
    _load_entry_points()
    return sorted({*_REGISTRY, *_ALIASES, *_LAZY, *_LAZY_ALIASES})


def is_known_type(type_name: str) -> bool:
    """True if ``type_name`` is registered, built-in, or a legacy alias of one."""
    name = canonical_type(type_name)
    if name not in _REGISTRY and name not in _LAZY:
        _load_entry_points()
    return name in _REGISTRY or name in _LAZY


def provider_class(type_name: str) -> type[BaseProvider]:
    """Return the class registered for ``type_name``, importing a built-in on first use.

    Raises:
        LookupError: Nothing is registered under that name; the message lists what is.
    """
    name = canonical_type(type_name)
    if name not in _REGISTRY and name not in _LAZY:
        _load_entry_points()
    if name not in _REGISTRY and name in _LAZY:
        importlib.import_module(_LAZY[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        known = registered_provider_types()
        raise LookupError(
            f"unknown provider type {type_name!r}{did_you_mean(type_name, known)}; "
            f"registered types: {', '.join(known)}"
        ) from None


# How entry options become an options object. The config layer, which owns the cattrs
# converter, installs it when it is imported (a ProviderSettings only comes from there);
# the registry stays below config and never imports it.
_options_structurer: Callable[[dict[str, Any], type[Any]], Any] | None = None


def set_options_structurer(structure: Callable[[dict[str, Any], type[Any]], Any]) -> None:
    """Install the function that structures entry options (called by the config layer)."""
    global _options_structurer
    _options_structurer = structure


def provider_options(settings: ProviderSettings, options_type: type[T]) -> T:
    """Structure an entry's type-specific options into ``options_type`` (an attrs class).

    Config loading has already validated them, so this only converts.
    """
    if _options_structurer is None:  # pragma: no cover - importing valis_actors installs it
        raise RuntimeError("provider options need the config layer: import valis_actors first")
    return _options_structurer(dict(settings.options), options_type)  # type: ignore[no-any-return]
