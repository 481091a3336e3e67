"""`valis config schema` and config validation agree, field by field, at every bound.

The walk covers every field of ``Config`` and its sections and every option of every
provider type with an options class. Each field is probed with the values just inside
and just outside each bound the schema states (minimum, exclusiveMinimum, maximum, enum,
minLength, pattern) plus a fixed set of plain values, so that a rule validation enforces
but the schema leaves out (or the reverse) shows up as a disagreement.

The schema is checked by a small evaluator of the JSON Schema keywords it uses (the venv
has no jsonschema package); ``test_the_evaluator_knows_every_keyword_of_the_schema`` keeps it
from silently ignoring a keyword.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

import valis_actors as va
from valis_actors._config._schema import config_schema
from valis_actors._validation import MAX_INT
from valis_actors.providers._base import canonical_type, provider_class, registered_provider_types

SCHEMA = config_schema()
_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
}
_ANNOTATIONS = {"$schema", "title", "default", "description"}
KEYWORDS = {
    "type", "enum", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minLength", "pattern",
    "anyOf", "allOf", "not", "if", "then", "required", "properties", "additionalProperties", "items",
} | _ANNOTATIONS


def is_valid(value: Any, schema: dict[str, Any]) -> bool:
    """JSON Schema 2020-12 semantics of the keywords in KEYWORDS."""
    if "type" in schema and not _TYPES[schema["type"]](value):
        return False
    if "enum" in schema and not any(value == c and type(value) is type(c) for c in schema["enum"]):
        return False
    number = _TYPES["number"](value)
    for key, holds in (
        ("minimum", lambda v, b: v >= b), ("exclusiveMinimum", lambda v, b: v > b),
        ("maximum", lambda v, b: v <= b), ("exclusiveMaximum", lambda v, b: v < b),
    ):
        if number and key in schema and not holds(value, schema[key]):
            return False
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return False
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
    if "anyOf" in schema and not any(is_valid(value, s) for s in schema["anyOf"]):
        return False
    if not all(is_valid(value, s) for s in schema.get("allOf", [])):
        return False
    if "not" in schema and is_valid(value, schema["not"]):
        return False
    if "if" in schema and is_valid(value, schema["if"]) and not is_valid(value, schema.get("then", {})):
        return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if any(key not in value for key in schema.get("required", [])):
            return False
        for key, item in value.items():
            if key in props:
                if not is_valid(item, props[key]):
                    return False
            elif schema.get("additionalProperties", True) is False:
                return False
    if isinstance(value, list) and "items" in schema:
        return all(is_valid(item, schema["items"]) for item in value)
    return True


def _keywords(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield key
            if key == "properties":
                for sub in value.values():
                    yield from _keywords(sub)
            elif key not in ("enum", "required", "default"):
                yield from _keywords(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _keywords(item)


def test_the_evaluator_knows_every_keyword_of_the_schema() -> None:
    assert set(_keywords(SCHEMA)) <= KEYWORDS
    assert not is_valid({"max_concurrent_requests": 0}, SCHEMA)
    assert is_valid({}, SCHEMA)

# Values every field is tried with, whatever its type: a missing rule shows up here.
PLAIN: list[Any] = [-1, 0, 0.5, 1, 2, 3.5, 1000, -1e9, True, False, None, "", "x", "stdin", [], {}]


def _near(value: float, integer: bool) -> tuple[float, float]:
    step = 1 if integer else 1e-9 * max(1.0, abs(value))
    return value - step, value + step


def _probes(schema: dict[str, Any]) -> Iterator[Any]:
    """Values at and around each bound of a field's schema (through anyOf)."""
    for option in schema.get("anyOf", []):
        yield from _probes(option)
    integer = schema.get("type") == "integer"
    for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        if key in schema:
            bound = schema[key]
            yield bound
            yield from _near(bound, integer)
    for choice in schema.get("enum", []):
        yield choice
        yield choice.upper() if isinstance(choice, str) else choice
        yield f"{choice}x"
    if "minLength" in schema:
        yield "a" * schema["minLength"]
        yield "a" * (schema["minLength"] - 1)
    if "pattern" in schema:
        yield "a\x00b"
    if schema.get("type") == "integer":
        yield from (MAX_INT, MAX_INT + 1, -MAX_INT, -MAX_INT - 1)


def _valid(document: dict[str, Any]) -> bool:
    try:
        va.Config.from_dict(document)
    except va.ConfigError:
        return False
    return True


def _fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [f for f in attrs.fields(cls) if f.init]


def _cases() -> Iterator[Any]:
    """(label, schema of the field, wrap(value) -> document) for every field."""
    props = SCHEMA["properties"]
    for field in _fields(va.Config):
        if field.name in ("providers", "server"):
            continue  # providers: below, option by option; server: validated by `valis serve`
        if field.name in ("session", "memory"):
            section = props[field.name]["properties"]
            for sub in section:
                yield f"{field.name}.{sub}", section[sub], (lambda v, f=field.name, s=sub: {f: {s: v}})
        elif field.name == "retry_schedule":
            yield "retry_schedule[0]", props[field.name]["items"], (lambda v: {"retry_schedule": [1, v]})
        else:
            yield field.name, props[field.name], (lambda v, f=field.name: {f: v})
    entry = props["providers"]["items"]["anyOf"][1]
    yield "providers[0].timeout", entry["properties"]["timeout"], (
        lambda v: {"providers": [{"type": "openai", "timeout": v}]}
    )
    seen: set[str] = set()
    for name in registered_provider_types():
        canonical = canonical_type(name)
        options_type = provider_class(name).options_type
        if canonical in seen or options_type is None:
            continue
        seen.add(canonical)
        hints = typing.get_type_hints(options_type)
        options = next(
            case["then"]["properties"] for case in entry["allOf"]
            if name in case["if"]["properties"].get("type", {}).get("enum", [])
        )
        for field in _fields(options_type):
            assert field.name in options, f"{name}.{field.name} is missing from the schema"
            assert hints[field.name] is not None
            yield f"{name}.{field.name}", options[field.name], (
                lambda v, t=name, f=field.name: {"providers": [{"type": t, f: v}]}
            )


CASES = list(_cases())


def test_the_walk_covers_every_section_and_provider_type() -> None:
    labels = {label for label, _, _ in CASES}
    assert {"max_concurrent_requests", "session.idle_timeout", "memory.durability", "retry_schedule[0]"} <= labels
    assert {"openai.temperature", "anthropic.max_tokens", "desktop_commander.prompt_via"} <= labels
    assert len(labels) > 40


@pytest.mark.parametrize(("label", "field_schema", "wrap"), CASES, ids=[c[0] for c in CASES])
def test_schema_and_validation_agree_on_every_field(label: str, field_schema: dict[str, Any], wrap: Any) -> None:
    values = [*_probes(field_schema), *PLAIN]
    disagreements = []
    for value in values:
        document = wrap(value)
        by_schema = is_valid(document, SCHEMA)
        if by_schema != _valid(document):
            disagreements.append(f"{value!r}: schema says {'valid' if by_schema else 'invalid'}")
    assert not disagreements, f"{label}: " + "; ".join(disagreements)


def test_every_bound_validation_enforces_is_in_the_schema() -> None:
    props = SCHEMA["properties"]
    assert props["max_concurrent_requests"]["minimum"] == 1
    assert props["provider_timeout"]["exclusiveMinimum"] == 0
    assert props["retry_schedule"]["items"]["minimum"] == 0
    assert props["unknown_persona"]["enum"] == ["neutral", "error"]
    assert props["session"]["properties"]["max_restarts"]["minimum"] == 0
    assert props["memory"]["properties"]["backend"]["enum"] == ["sqlite", "memory"]
