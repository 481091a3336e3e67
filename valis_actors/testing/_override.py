"""``override_provider``: a config with one provider swapped for another (a scripted one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._config import Config, ProviderSettings, get_converter
from .._config._model import FALLBACK_TYPE, _problems
from .._errors import ConfigError
from ..providers._base import canonical_type, provider_class

__all__ = ["override_provider"]


def override_provider(config: Config, name: str, options: Any = None, *, type: str = "scripted") -> Config:
    """A copy of ``config`` whose provider ``name`` is replaced, validated like config.json.

    The entry keeps its name, place in the cascade, ``enabled`` and ``timeout``; its type
    and options are replaced. For a test, swap a real provider for a scripted one::

        config = override_provider(config, "anthropic", ScriptedOptions(script=(Step.transient(),)))

    Args:
        config: The configuration to start from (unchanged).
        name: The provider entry to replace.
        options: The new entry's options: an options object (``ScriptedOptions``, or the
            ``options_type`` of the provider type), a mapping of entry keys as config.json
            spells them, or None for the type's defaults.
        type: The new entry's provider type (``"scripted"`` by default).

    Raises:
        ConfigError: No entry has that name, it is the persona fallback, or the options
            do not fit the type (each problem with its path).
    """
    names = [entry.name for entry in config.providers]
    if name not in names:
        raise ConfigError(f"override_provider: no provider named {name!r}; the config has {', '.join(names)}")
    index = names.index(name)
    old = config.providers[index]
    if canonical_type(old.type) == FALLBACK_TYPE:
        raise ConfigError(
            f"override_provider: {name!r} is the persona fallback, which is always last and cannot be replaced; "
            "replace a provider before it"
        )
    entry = {**_entry_options(options, type), "name": name, "type": type, "enabled": old.enabled}
    if old.timeout is not None:
        entry["timeout"] = old.timeout
    where = f"$.providers[{index}]"
    try:
        new = get_converter().structure(entry, ProviderSettings)
        return attrs.evolve(config, providers=(*config.providers[:index], new, *config.providers[index + 1 :]))
    except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all become ConfigError lines
        problems = tuple(_problems(exc, where))
        raise ConfigError(f"override_provider({name!r}): " + "; ".join(problems), problems) from None


def _entry_options(options: Any, type_name: str) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return dict(options)
    expected = provider_class(type_name).options_type
    if not attrs.has(type(options)) or type(options) is not expected:
        wanted = expected.__name__ if expected is not None else "a mapping of options"
        raise ConfigError(
            f"override_provider: options for type {type_name!r} must be {wanted} or a mapping, "
            f"got {type(options).__name__}; pass type= to name the options' provider type"
        )
    out: dict[str, Any] = get_converter().unstructure(options)
    return out
