"""config.json: the frozen attrs model, loading, and validation errors that name the fix.

Every key is optional; ``Config()`` is the documented default configuration.
Loading never silently replaces a bad value with a default: problems are
collected and raised together as one ``ConfigError``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import ConfigError
from .._validation import (
    Each,
    FieldValueError,
    StrictTypeError,
    at_least,
    attribute_errors,
    describe_errors,
    did_you_mean,
    one_of,
    positive,
    strict_bool,
    strict_float,
    strict_int,
    strict_str,
    structure_every_field,
)
from ..providers._base import (
    canonical_type,
    is_known_type,
    provider_class,
    registered_provider_types,
    set_options_structurer,
)
from ..providers._common import shown_env

if TYPE_CHECKING:  # cattrs is imported when the converter is first built (keeps the import fast)
    import cattrs

__all__ = [
    "Config",
    "MemorySettings",
    "ProviderSettings",
    "SessionSettings",
    "load_config",
]

FALLBACK_TYPE = "persona_fallback"
_ENTRY_FIELDS = ("name", "type", "enabled", "timeout")


@attrs.frozen
class ProviderSettings:
    """One provider entry of config.json's ``providers`` list.

    Attributes:
        name: Unique name of this entry; ``reply.provider`` reports it.
        type: A registered provider type (``anthropic``, ``openai``, ``desktop_commander``,
            ``persona_fallback``, or one registered with ``@register_provider``).
        enabled: Disabled entries are ignored.
        timeout: Seconds one attempt may take; ``None`` uses ``provider_timeout``.
        options: The entry's other keys, type-specific (``model``, ``base_url``...).
    """

    name: str
    type: str
    enabled: bool = True
    timeout: float | None = attrs.field(default=None, validator=positive)
    options: Mapping[str, Any] = attrs.field(
        factory=dict, eq=False, hash=False, repr=lambda options: repr(_shown_options(options))
    )

    def option(self, key: str, default: Any = None) -> Any:
        """One type-specific option, or ``default``."""
        return self.options.get(key, default)

    def to_json(self) -> dict[str, Any] | str:
        """The entry as config.json would spell it, secret ``env`` values shown as ``[redacted]``."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "enabled": self.enabled}
        if self.timeout is not None:
            out["timeout"] = self.timeout
        out.update(_shown_options(self.options))
        return out


def _shown_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as they may be printed: ``env`` variables named like secrets are hidden."""
    env = options.get("env")
    if not isinstance(env, Mapping):
        return dict(options)
    return {**options, "env": shown_env(env)}


@attrs.frozen
class SessionSettings:
    """The ``session`` section: mailboxes, passivation and supervision of session actors."""

    mailbox_size: int = attrs.field(default=64, validator=at_least(1))
    idle_timeout: float = attrs.field(default=300.0, validator=positive)
    max_restarts: int = attrs.field(default=3, validator=at_least(0))
    restart_window: float = attrs.field(default=60.0, validator=positive)


@attrs.frozen
class _FileName:
    """Validate a path the runtime will open: checked here, not when SQLite or os.scandir chokes."""

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None:
            return
        if not value:
            raise FieldValueError(attribute.name, "must not be empty; use null for the default")
        if "\x00" in value:
            raise FieldValueError(attribute.name, f"must not contain a NUL character (got {value!r})")
        try:
            os.fsencode(value)
        except UnicodeError:
            raise FieldValueError(
                attribute.name, f"is not a file name this system can encode (got {value!r})"
            ) from None

    def json_schema(self) -> dict[str, Any]:
        """Non-empty, no NUL (encodability depends on the system and is not in the schema)."""
        return {"minLength": 1, "pattern": "^[^\\x00]*$"}


_file_name = _FileName()


@attrs.frozen
class MemorySettings:
    """The ``memory`` section: durable conversation memory."""

    enabled: bool = True
    backend: str = attrs.field(default="sqlite", validator=one_of("sqlite", "memory"))
    path: str | None = attrs.field(default=None, validator=_file_name)
    max_turns: int = attrs.field(default=20, validator=at_least(0))
    max_turns_stored: int = attrs.field(default=1000, validator=at_least(1))
    durability: str = attrs.field(default="commit", validator=one_of("commit", "async"))


def _normalize_providers(given: Any) -> tuple[ProviderSettings, ...]:
    """Put the persona fallback last (adding it when absent) and check names are unique."""
    entries: tuple[ProviderSettings, ...] = tuple(given)
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.name in seen:
            raise FieldValueError(
                f"providers[{index}].name", f"{entry.name!r} is used twice; give each entry its own name"
            )
        seen.add(entry.name)
        is_fallback = canonical_type(entry.type) == FALLBACK_TYPE
        if is_fallback and index != len(entries) - 1:
            raise FieldValueError(
                f"providers[{index}]", "the persona fallback must be the last provider; move it to the end"
            )
        if is_fallback and not entry.enabled:
            raise FieldValueError(
                f"providers[{index}].enabled", "the persona fallback cannot be disabled: it is the last resort"
            )
    if not entries or canonical_type(entries[-1].type) != FALLBACK_TYPE:
        name = FALLBACK_TYPE if FALLBACK_TYPE not in seen else f"{FALLBACK_TYPE}_last"
        entries += (ProviderSettings(name=name, type=FALLBACK_TYPE),)
    return entries


def _default_providers() -> tuple[ProviderSettings, ...]:
    return _normalize_providers(
        (ProviderSettings(name="anthropic", type="anthropic"), ProviderSettings(name="openai", type="openai"))
    )


@attrs.frozen
class Config:
    """The runtime's configuration (config.json). ``Config()`` gives every default.

    See docs/configuration.md for each key's meaning, range and default.
    """

    max_concurrent_requests: int = attrs.field(default=64, validator=at_least(1))
    provider_timeout: float = attrs.field(default=20.0, validator=positive)
    response_deadline: float = attrs.field(default=30.0, validator=positive)
    circuit_breaker_threshold: int = attrs.field(default=5, validator=at_least(1))
    circuit_breaker_timeout: float = attrs.field(default=30.0, validator=positive)
    retry_schedule: tuple[float, ...] = attrs.field(
        default=(1.0, 2.0, 4.0), converter=tuple, validator=Each(at_least(0))
    )
    max_message_chars: int = attrs.field(default=32_000, validator=at_least(1))
    personas_dir: str | None = attrs.field(default=None, validator=_file_name)
    unknown_persona: str = attrs.field(default="neutral", validator=one_of("neutral", "error"))
    user_name: str = "User"
    content_policy_failover: bool = False
    retry_timeouts: bool = False
    hedge_after: float | None = attrs.field(default=None, validator=positive)
    first_token_timeout: float | None = attrs.field(default=None, validator=positive)
    stream_idle_timeout: float | None = attrs.field(default=None, validator=positive)
    providers: tuple[ProviderSettings, ...] = attrs.field(
        factory=_default_providers, converter=_normalize_providers
    )
    session: SessionSettings = SessionSettings()
    memory: MemorySettings = MemorySettings()
    # The `valis serve` section, kept as written: the server validates it when it starts
    # (valis_actors.server.load_server_config), so the core never imports the server.
    server: Mapping[str, Any] = attrs.field(
        factory=dict, converter=dict, eq=False, repr=False, validator=lambda i, a, v: _check_plain_json(a.name, v)
    )
    # Cluster mode's section, kept as written likewise: valis_actors.cluster validates it
    # (ClusterConfig.from_config), so the core never imports the cluster package or coredis.
    cluster: Mapping[str, Any] = attrs.field(
        factory=dict, converter=dict, eq=False, repr=False, validator=lambda i, a, v: _check_plain_json(a.name, v)
    )

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "config") -> Config:
        """Build a config from parsed JSON (a dict), validating it like ``load_config``.

        Raises:
            ConfigError: Every problem found, each with its path.
        """
        return structure_config(data, source=source)

    def to_json(self) -> dict[str, Any]:
        """The effective configuration as a JSON-ready dict (what ``valis config check`` prints)."""
        out: dict[str, Any] = get_converter().unstructure(self)
        out["providers"] = [p.to_json() for p in self.providers]
        out["server"] = _mask_secrets(self.server)
        out["cluster"] = {
            k: _URL_CREDENTIALS.sub(r"\1***@", v) if isinstance(v, str) else v
            for k, v in _mask_secrets(self.cluster).items()
        }
        return out


_MAX_DEPTH = 32  # no section of config.json nests more than a few levels


def _check_plain_json(path: str, value: Any, depth: int = 0) -> None:
    """Refuse what ``valis config check`` could not print back: NaN, Infinity, absurd nesting."""
    if depth > _MAX_DEPTH:
        raise FieldValueError(path, f"nests deeper than {_MAX_DEPTH} levels; no setting needs that")
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldValueError(path, f"must be a finite number (got {value!r})")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_plain_json(f"{path}.{key}", item, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain_json(f"{path}[{index}]", item, depth + 1)


_SECRET_WORDS = ("key", "token", "secret", "password")
_URL_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^@/]*@")  # redis://:password@host


def _mask_secrets(value: Any, name: str = "") -> Any:
    """The value with every entry whose name sounds secret replaced by "***" (never printed), JSON-safe."""
    if any(word in name.lower() for word in _SECRET_WORDS) and value not in (None, "", [], {}):
        return "***"
    if isinstance(value, Mapping):
        return {k: _mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(v, name) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # kept as written (1e999 parses as inf), printed as strict JSON
    return value


def _structure_provider(value: Any, _: Any) -> ProviderSettings:
    """One providers entry; every problem of the entry is reported, not just the first."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise StrictTypeError("a provider type name or an object with 'type'", value)
    entry = dict(value)
    if "type" not in entry and "name" not in entry:
        raise FieldValueError("type", "is missing: name the provider type, e.g. {\"type\": \"openai\"}")
    errors: list[Exception] = []
    for key, check, expected in (
        ("name", str, "a string"),
        ("type", str, "a string"),
        ("enabled", bool, "true or false"),
    ):
        if key in entry and not isinstance(entry[key], check):
            errors.append(FieldValueError(key, f"must be {expected} (got {entry[key]!r})"))
    timeout = entry.get("timeout")
    if timeout is not None:
        try:
            timeout = strict_float(timeout, float)
            positive.check("timeout", timeout)
        except StrictTypeError as exc:
            errors.append(FieldValueError("timeout", f"must be a number of seconds ({exc})"))
        except FieldValueError as exc:
            errors.append(exc)
    type_name = entry.get("type", entry.get("name"))
    if not isinstance(type_name, str):
        pass  # its type error is reported above
    elif not is_known_type(type_name):
        known = registered_provider_types()
        errors.append(FieldValueError(
            "type",
            f"is an unknown provider type {type_name!r}{did_you_mean(type_name, known)}; "
            f"registered types: {', '.join(known)}",
        ))
    else:
        options = {k: v for k, v in entry.items() if k not in _ENTRY_FIELDS}
        try:
            _check_options(type_name, options)
        except _OptionsError as exc:
            errors.append(exc)
    if errors or not isinstance(type_name, str):
        from cattrs import ClassValidationError  # loaded: this runs as a hook of the converter

        raise ClassValidationError("While structuring a provider entry", errors, ProviderSettings)
    return ProviderSettings(
        name=entry.get("name", type_name),
        type=type_name,
        enabled=entry.get("enabled", True),
        timeout=timeout,
        options={k: v for k, v in entry.items() if k not in _ENTRY_FIELDS},
    )


def _check_options(type_name: str, options: dict[str, Any]) -> None:
    """Validate type-specific options against the provider's ``options_type``, if it has one."""
    options_type = provider_class(type_name).options_type
    if options_type is None:
        return
    try:
        get_converter().structure(options, options_type)
    except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all become ConfigError lines
        # Reported relative to the options; _problems re-roots them below the entry's path.
        raise _OptionsError(_problems(exc)) from None


class _OptionsError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _make_converter() -> cattrs.Converter:
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, strict_int)
    conv.register_structure_hook(float, strict_float)
    conv.register_structure_hook(str, strict_str)
    conv.register_structure_hook(bool, strict_bool)
    conv.register_structure_hook(ProviderSettings, _structure_provider)
    conv.register_structure_hook_func(
        lambda t: attrs.has(t) and t is not ProviderSettings, lambda v, t: structure_every_field(conv, v, t)
    )
    conv.register_structure_hook_func(
        _is_homogeneous_tuple, lambda v, t: _structure_sequence(conv, v, typing.get_args(t)[0])
    )
    return conv


def _is_homogeneous_tuple(type_: Any) -> bool:
    args = typing.get_args(type_)
    return typing.get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis


def _structure_sequence(conv: cattrs.Converter, value: Any, item: type) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise StrictTypeError("a list", value)
    out: list[Any] = []
    errors: list[tuple[int, Exception]] = []
    for index, element in enumerate(value):
        try:
            out.append(conv.structure(element, item))
        except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all become ConfigError lines
            exc.__notes__ = [*getattr(exc, "__notes__", []), f"index {index}"]
            errors.append((index, exc))
    if errors:
        raise _SequenceError(errors)
    return tuple(out)


class _SequenceError(Exception):
    def __init__(self, errors: list[tuple[int, Exception]]) -> None:
        super().__init__("invalid items")
        self.errors = errors


@functools.cache
def get_converter() -> cattrs.Converter:
    """The strict converter for config.json, built on first use (keeps the import fast)."""
    return _make_converter()


def _problems(exc: BaseException, path: str = "$") -> list[str]:
    """Like ``describe_errors`` but aware of this module's own error wrappers."""
    if isinstance(exc, _SequenceError):
        return [line for index, sub in exc.errors for line in _problems(sub, f"{path}[{index}]")]
    if isinstance(exc, _OptionsError):
        rerooted = []
        for line in exc.problems:
            text, _, where = line.rpartition(" @ $")
            rerooted.append(f"{text} @ {path}{where}")
        return rerooted
    from cattrs import ClassValidationError  # loaded: the converter raised exc

    if isinstance(exc, ClassValidationError):
        lines: list[str] = []
        for sub, name in attribute_errors(exc):
            lines += _problems(sub, path if name is None else f"{path}.{name}")
        return lines
    return list(describe_errors(exc, path))


def structure_config(data: Any, *, source: str = "config") -> Config:
    """Build a ``Config`` from parsed JSON, raising ``ConfigError`` listing every problem."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a JSON object (got {type(data).__name__})")
    try:
        return get_converter().structure(data, Config)
    except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all become ConfigError lines
        problems = tuple(_problems(exc))
        raise ConfigError(_summary(source, problems), problems) from None


def _summary(source: str, problems: tuple[str, ...]) -> str:
    head = f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return head + "".join(f"\n  - {p}" for p in problems)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate config.json.

    Args:
        path: The file. ``None`` uses ``$VALIS_CONFIG``, then ``./config.json`` if it
            exists, else the defaults (``Config()``).

    Returns:
        The frozen configuration; relative paths in it are resolved against the
        file's directory.

    Raises:
        ConfigError: The file is missing, not JSON (line and column given), or has
            invalid values (each named by its path, e.g. ``$.retry_schedule[1]``).
    """
    if path is None:
        path = os.environ.get("VALIS_CONFIG") or None
        if path is None:
            if not Path("config.json").is_file():
                return Config()
            path = "config.json"
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file; create it or set VALIS_CONFIG to its path") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ConfigError(f"{file}: cannot read the config file ({exc})") from None
    data = _parse_json(text, file)
    config = structure_config(data, source=str(file))
    return _resolve_paths(config, file.resolve().parent)


class _TooManyDigits(ValueError):
    pass


def _parse_int(text: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(text.lstrip("-")) > limit:
        raise _TooManyDigits(f"an integer with more than {limit} digits ({len(text)}); no setting needs one")
    return int(text)


def _parse_json(text: str, file: Path) -> Any:
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except _TooManyDigits as exc:
        raise ConfigError(f"{file}: invalid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"{file}: invalid JSON: nested deeper than the parser can follow; no setting nests more than a few levels"
        ) from None


def _resolve_paths(config: Config, base: Path) -> Config:
    changes: dict[str, Any] = {}
    if config.personas_dir is not None and not Path(config.personas_dir).is_absolute():
        changes["personas_dir"] = str(base / config.personas_dir)
    if config.memory.path is not None and not Path(config.memory.path).is_absolute():
        changes["memory"] = attrs.evolve(config.memory, path=str(base / config.memory.path))
    return attrs.evolve(config, **changes) if changes else config


def _structure_options(data: dict[str, Any], options_type: type[Any]) -> Any:
    return get_converter().structure(data, options_type)


set_options_structurer(_structure_options)
