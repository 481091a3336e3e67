"""The server's own settings: the optional ``server`` section of config.json, env and CLI.

The runtime's ``Config`` refuses unknown keys, so the server reads config.json
itself, takes its ``server`` section out, and builds the runtime's ``Config`` from
the rest (relative paths resolved against the file, as ``load_config`` does).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

import valis_actors as va

__all__ = ["API_KEYS_ENV", "ServerSettings", "load_server_config"]

API_KEYS_ENV = "VALIS_SERVER_API_KEYS"
SYSTEM_MODES = ("append", "replace", "ignore")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"server.{attribute.name} must be > 0 (got {value!r})")


def _mode(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in SYSTEM_MODES:
        raise ValueError(f"server.{attribute.name} must be one of {', '.join(SYSTEM_MODES)} (got {value!r})")


@attrs.frozen
class ServerSettings:
    """How ``valis serve`` behaves (the ``server`` section of config.json).

    Attributes:
        api_keys: Keys clients must send (``Authorization: Bearer`` or ``x-api-key``).
            Also read from ``$VALIS_SERVER_API_KEYS`` (comma-separated). None: no auth,
            loopback only.
        cors_origins: Origins allowed to call from a browser; empty (the default) turns CORS off.
        system_message: What a client's system message does: ``append`` it to the persona's
            prompt (default), ``replace`` the persona's prompt, or ``ignore`` it.
        dedupe_window: Seconds a finished answer is kept to answer a retried request.
        max_body_bytes: Largest request body accepted.
        max_messages: Most messages one request may carry.
        retry_after: Seconds sent in ``Retry-After`` while draining.
        drain_timeout: Most seconds to wait for in-flight answers on SIGTERM/SIGINT
            (None: the runtime's ``response_deadline`` plus 5 s).
    """

    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    system_message: str = attrs.field(default="append", validator=_mode)
    dedupe_window: float = attrs.field(default=10.0, validator=_positive)
    max_body_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=_positive)
    max_messages: int = attrs.field(default=1000, validator=_positive)
    retry_after: int = attrs.field(default=5, validator=_positive)
    drain_timeout: float | None = None

    @classmethod
    def from_dict(cls, data: Any, *, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Build the settings from the ``server`` section, adding keys from the environment.

        Raises:
            ConfigError: A wrong key or value, named by its path.
        """
        if not isinstance(data, Mapping):
            raise va.ConfigError(f"server: must be a JSON object (got {type(data).__name__})")
        converter = cattrs.Converter(forbid_extra_keys=True)
        try:
            settings = converter.structure(dict(data), cls)
        except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all become one ConfigError
            problems = tuple(f"{line.replace('$.', '$.server.')}" for line in cattrs.transform_error(exc))
            raise va.ConfigError("server: " + "; ".join(problems), problems) from None
        env = os.environ if environ is None else environ
        extra = tuple(k.strip() for k in env.get(API_KEYS_ENV, "").split(",") if k.strip())
        if extra:
            settings = attrs.evolve(settings, api_keys=settings.api_keys + extra)
        if any(not key for key in settings.api_keys):
            raise va.ConfigError("server.api_keys: a key is empty; remove it or give it a value")
        return settings

    def __repr__(self) -> str:  # never print the keys
        return f"ServerSettings(api_keys=<{len(self.api_keys)} keys>, system_message={self.system_message!r})"


def load_server_config(path: str | os.PathLike[str] | None = None) -> tuple[va.Config, ServerSettings]:
    """Read config.json (``$VALIS_CONFIG`` or ./config.json when ``path`` is None).

    Returns:
        The runtime's config (without the ``server`` section) and the server's settings.

    Raises:
        ConfigError: As ``load_config``, plus problems in the ``server`` section.
    """
    # The core keeps the section as written (it never imports the server): validate it here.
    config = va.load_config(path)
    return attrs.evolve(config, server={}), ServerSettings.from_dict(dict(config.server))
