"""A JSON Schema of config.json, derived from the attrs model (``valis config schema``).

Nothing here restates a rule: types come from the annotations, ranges and enums from
the validators themselves (``valis_actors._validation.validator_schema``: each validator
object declares the keywords it enforces), integer limits from ``strict_int``'s. A test
(tests/test_config_schema.py) walks every field and checks that the schema and validation
accept the same values. Rules between fields (unique provider names, the fallback last)
are validation's alone: JSON Schema cannot say them.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from .._validation import MAX_INT, validator_schema
from ..providers._base import canonical_type, provider_class, registered_provider_types
from ._model import _ENTRY_FIELDS, Config, ProviderSettings

__all__ = ["config_schema"]

_SCALARS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer", "minimum": -MAX_INT, "maximum": MAX_INT},  # strict_int: 63 bits
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
}


def _type_schema(type_: Any, validator: object = None) -> dict[str, Any]:
    """The schema of one annotation, with the keywords ``validator`` enforces merged in."""
    keywords = validator_schema(validator) if validator is not None else {}
    if type_ in _SCALARS:
        return {**_SCALARS[type_], **keywords}
    origin, args = typing.get_origin(type_), typing.get_args(type_)
    if origin is tuple and args and args[-1] is Ellipsis:
        items = _type_schema(args[0])
        items.update(keywords.pop("items", {}))
        return {"type": "array", "items": items, **keywords}
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(a, validator) for a in args if a is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        if type(None) in args:
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema
    if type_ is ProviderSettings:
        return _provider_schema()
    if attrs.has(type_):
        return _class_schema(type_)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return {"type": "object"}
    return {}


def _default(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    if attrs.has(type(default)):
        return attrs.asdict(default)
    if isinstance(default, tuple):
        return None if default and attrs.has(type(default[0])) else list(default)
    if isinstance(default, Mapping):
        return dict(default)
    return default


def _properties(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if not field.init:
            continue
        schema = _type_schema(hints[field.name], field.validator)
        default = _default(field)
        if default is not None or field.default is None:
            schema["default"] = default
        props[field.name] = schema
    return props


def _class_schema(cls: type) -> dict[str, Any]:
    required = [f.name for f in attrs.fields(cls) if f.init and f.default is attrs.NOTHING]
    schema: dict[str, Any] = {"type": "object", "properties": _properties(cls), "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _provider_schema() -> dict[str, Any]:
    """An entry: a type name, or an object whose other keys are its type's options."""
    names = registered_provider_types()
    entry_props = {k: v for k, v in _properties(ProviderSettings).items() if k in _ENTRY_FIELDS}
    entry_props["type"] = {"type": "string", "enum": names}
    entry_props["name"].pop("default", None)  # the default name is the type's
    by_type: dict[str, list[str]] = {}
    for name in names:
        by_type.setdefault(canonical_type(name), []).append(name)
    # Each type's options, chosen by the entry's "type" (or its "name" when "type" is absent).
    cases: list[dict[str, Any]] = []
    for aliases in by_type.values():
        options_type = provider_class(aliases[0]).options_type
        if options_type is None:
            continue  # no options class: its keys are not checked
        then = {"properties": {**entry_props, **_properties(options_type)}, "additionalProperties": False}
        cases.append({"if": {"required": ["type"], "properties": {"type": {"enum": aliases}}}, "then": then})
        cases.append({
            "if": {"not": {"required": ["type"]}, "properties": {"name": {"enum": aliases}}},
            "then": then,
        })
    entry: dict[str, Any] = {
        "type": "object",
        "properties": entry_props,
        "anyOf": [{"required": ["type"]}, {"required": ["name"], "properties": {"name": {"enum": names}}}],
        "allOf": cases,
    }
    return {"anyOf": [{"type": "string", "enum": names}, entry]}


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of config.json."""
    schema = _class_schema(Config)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "valis_actors config.json"
    return schema
