"""The ``cluster`` section of config.json (or ``VALIS_REDIS_URL``), validated here, not in the core.

The core's ``Config`` keeps the section as written (``Config.cluster``), so that
``import valis_actors`` never imports this package or coredis; cluster mode reads it
with :meth:`ClusterConfig.from_config` when it starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from .. import Config, ConfigError
from ._connection import ClusterSettings

__all__ = ["REDIS_URL_ENV", "ClusterConfig"]

REDIS_URL_ENV = "VALIS_REDIS_URL"

MEMORY_BACKENDS = ("redis", "sqlite")


def _problem(field: str, problem: str) -> ConfigError:
    return ConfigError(f"cluster.{field} {problem} @ $.cluster.{field}")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise _problem(attribute.name, f"must be > 0 (got {value!r})")


def _not_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise _problem(attribute.name, f"must be >= 0 (got {value!r})")


def _memory_backend(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in MEMORY_BACKENDS:
        raise _problem(attribute.name, f"must be one of {', '.join(MEMORY_BACKENDS)} (got {value!r})")


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


@attrs.frozen
class ClusterConfig:
    """Cluster mode's settings: the ``cluster`` section. See docs/cluster.md.

    Attributes:
        redis_url: ``redis://[:password@]host:port/db``; ``VALIS_REDIS_URL`` overrides it.
        key_prefix: Prepended to every Redis key.
        connect_timeout: Seconds to open a connection to Redis.
        command_timeout: Seconds a Redis command may take before Redis counts as unavailable.
        lease_ttl: Seconds a session lease lives in Redis without renewal (renewed every ttl/3).
        linger: Seconds a lease is kept after the session's last message.
        safety_margin: Seconds before the ttl at which a holder stops its work (default ttl/5).
        memory: Where turns live: ``"redis"`` (shared by every host) or ``"sqlite"``
            (the ``memory.path`` file, fenced, for the processes of one host).
        breaker_refresh: Seconds between two reads of the shared circuits.
        idempotency_ttl: Seconds the server keeps a retried request's answer.
    """

    redis_url: str
    key_prefix: str = "valis:"
    connect_timeout: float = attrs.field(default=1.0, validator=_positive)
    command_timeout: float = attrs.field(default=1.0, validator=_positive)
    lease_ttl: float = attrs.field(default=10.0, validator=_positive)
    linger: float = attrs.field(default=2.0, validator=_not_negative)
    safety_margin: float | None = None
    memory: str = attrs.field(default="redis", validator=_memory_backend)
    breaker_refresh: float = attrs.field(default=1.0, validator=_positive)
    idempotency_ttl: float = attrs.field(default=600.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        margin = self.lease_ttl / 5 if self.safety_margin is None else self.safety_margin
        if not 0 <= margin < self.lease_ttl:
            raise _problem("safety_margin", f"must be >= 0 and < lease_ttl (got {margin!r}, lease_ttl {self.lease_ttl!r})")

    @property
    def settings(self) -> ClusterSettings:
        """The connection's part."""
        return ClusterSettings(self.redis_url, self.key_prefix, self.connect_timeout, self.command_timeout)

    def __repr__(self) -> str:  # the URL may hold a password
        return f"ClusterConfig(lease_ttl={self.lease_ttl!r}, memory={self.memory!r})"

    @classmethod
    def from_dict(cls, data: Any, *, environ: Mapping[str, str] | None = None) -> ClusterConfig | None:
        """The settings from a ``cluster`` section plus ``VALIS_REDIS_URL``; None when cluster mode is off.

        Raises:
            ConfigError: A wrong key or value, named by its path (``$.cluster.lease_ttl``).
        """
        env = os.environ if environ is None else environ
        if not isinstance(data, Mapping):
            raise ConfigError(f"cluster: must be a JSON object (got {type(data).__name__}) @ $.cluster")
        section = dict(data)
        url = env.get(REDIS_URL_ENV, "").strip()
        if url:
            section["redis_url"] = url
        if not section:
            return None
        if "redis_url" not in section:
            raise ConfigError(
                "cluster.redis_url is missing: give the Redis URL (redis://host:port/0) "
                f"or set {REDIS_URL_ENV} @ $.cluster.redis_url"
            )
        converter = cattrs.Converter(forbid_extra_keys=True)
        try:
            return converter.structure(section, cls)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all become one ConfigError
            ours = [leaf for leaf in _leaves(exc) if isinstance(leaf, ConfigError)]
            if ours:
                raise ConfigError("; ".join(map(str, ours)), tuple(map(str, ours))) from None
            problems = tuple(line.replace("@ $", "@ $.cluster") for line in cattrs.transform_error(exc))
            if not problems or problems == ("invalid value @ $.cluster",):
                problems = (f"{exc} @ $.cluster",)
            raise ConfigError("cluster: " + "; ".join(problems), problems) from None

    @classmethod
    def from_config(cls, config: Config, *, environ: Mapping[str, str] | None = None) -> ClusterConfig | None:
        """The settings of ``config.cluster`` (and the environment); None when cluster mode is off."""
        return cls.from_dict(config.cluster, environ=environ)
