"""A JSON Schema of config.json, derived from the attrs model (``valis config schema``)."""

from __future__ import annotations

import typing
from typing import Any

import attrs

from ..providers._base import registered_provider_types
from ._model import Config, ProviderSettings

__all__ = ["config_schema"]

_SCALARS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
}


def _type_schema(type_: Any) -> dict[str, Any]:
    if type_ in _SCALARS:
        return dict(_SCALARS[type_])
    origin, args = typing.get_origin(type_), typing.get_args(type_)
    if origin is tuple and args and args[-1] is Ellipsis:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin in (typing.Union, __import__("types").UnionType):
        options = [_type_schema(a) for a in args if a is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        if type(None) in args:
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema
    if type_ is ProviderSettings:
        return _provider_schema()
    if attrs.has(type_):
        return _class_schema(type_)
    return {}


def _class_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    for field in attrs.fields(cls):
        schema = _type_schema(hints[field.name])
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if attrs.has(type(default)):
            default = attrs.asdict(default)
        if not isinstance(default, tuple) or not default or not attrs.has(type(default[0])):
            schema["default"] = list(default) if isinstance(default, tuple) else default
        props[field.name] = schema
    return {"type": "object", "properties": props, "additionalProperties": False}


def _provider_schema() -> dict[str, Any]:
    types = registered_provider_types()
    entry = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": types},
            "enabled": {"type": "boolean", "default": True},
            "timeout": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}]},
        },
        "additionalProperties": True,
    }
    return {"anyOf": [{"type": "string", "enum": types}, entry]}


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of config.json."""
    schema = _class_schema(Config)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "valis_actors config.json"
    return schema
