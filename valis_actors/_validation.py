"""Validators, structuring that reports every problem, and error formatting (config and personas).

Validators raise ``FieldValueError`` carrying the field they belong to, so that
the cattrs error tree can be turned into lines like
``retry_schedule[1] must be >= 0 (got -2.0) @ $.retry_schedule[1]``. The validators
are frozen objects that also state their JSON Schema keywords (``validator_schema``),
and ``structure_every_field`` runs every field's check instead of stopping at the first.
"""

from __future__ import annotations

import difflib
import math
import typing
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from cattrs import Converter
    from cattrs.errors import ClassValidationError


class FieldValueError(ValueError):
    """A value failed validation; ``suffix`` is its path below the object validated."""

    def __init__(self, suffix: str, problem: str) -> None:
        super().__init__(f"{suffix.lstrip('.')} {problem}")
        self.suffix = suffix if suffix.startswith(("[", ".")) else f".{suffix}"
        self.problem = problem


class FieldProblems(ValueError):
    """Several ``FieldValueError`` of one value (e.g. two bad items of a list), reported together."""

    def __init__(self, errors: list[FieldValueError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


# Validators are small frozen objects rather than closures so that each carries, next to
# its check, the JSON Schema keywords it enforces: `valis config schema` reads them
# (valis_actors._config._schema), and a test checks that schema and validation agree.


@attrs.frozen
class Bound:
    """An attrs validator: a number ``>= limit`` (``> limit`` if ``exclusive``). None passes."""

    limit: float
    exclusive: bool = False

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
        self.check(attribute.name, value)

    def check(self, name: str, value: float | None) -> None:
        """Raise ``FieldValueError(name, ...)`` unless ``value`` is within the bound."""
        if value is None:
            return  # "not set"; the field's type decides whether None is allowed
        inside = value > self.limit if self.exclusive else value >= self.limit
        if not inside:
            op = ">" if self.exclusive else ">="
            raise FieldValueError(name, f"must be {op} {self.limit:g} (got {value!r})")

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema keywords of this bound."""
        return {"exclusiveMinimum" if self.exclusive else "minimum": self.limit}


@attrs.frozen
class Between:
    """An attrs validator: a number within ``[low, high]``. None passes."""

    low: float
    high: float

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None and not self.low <= value <= self.high:
            raise FieldValueError(
                attribute.name, f"must be between {self.low:g} and {self.high:g} (got {value!r})"
            )

    def json_schema(self) -> dict[str, Any]:
        """``minimum`` and ``maximum``."""
        return {"minimum": self.low, "maximum": self.high}


@attrs.frozen
class OneOf:
    """An attrs validator: a string among ``choices``, with a did-you-mean hint."""

    choices: tuple[str, ...]

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in self.choices:
            listed = ", ".join(repr(c) for c in self.choices)
            hint = did_you_mean(value, self.choices)
            raise FieldValueError(attribute.name, f"must be one of {listed} (got {value!r}){hint}")

    def json_schema(self) -> dict[str, Any]:
        """``{"enum": [...]}``."""
        return {"enum": list(self.choices)}


@attrs.frozen
class Each:
    """An attrs validator: every item of a sequence within ``item``; all bad items are reported."""

    item: Bound

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        errors: list[FieldValueError] = []
        for index, element in enumerate(value):
            try:
                self.item.check(f"{attribute.name}[{index}]", element)
            except FieldValueError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise FieldProblems(errors)

    def json_schema(self) -> dict[str, Any]:
        """``{"items": ...}`` with the item's keywords."""
        return {"items": self.item.json_schema()}


#: A number > 0 (None passes: it means "not set").
positive = Bound(0, exclusive=True)


def at_least(minimum: float) -> Bound:
    """Validate that a number is >= ``minimum``."""
    return Bound(minimum)


def one_of(*choices: str) -> OneOf:
    """Validate that a string is one of ``choices``."""
    return OneOf(choices)


def validator_schema(validator: object) -> dict[str, Any]:
    """The JSON Schema keywords a validator enforces (``{}`` for one that declares none).

    ``attrs.validators.optional`` and ``and_`` are looked through.
    """
    own = getattr(validator, "json_schema", None)
    if callable(own):
        return dict(own())
    inner = getattr(validator, "validator", None)  # attrs' optional()
    if inner is not None:
        return validator_schema(inner)
    out: dict[str, Any] = {}
    for member in getattr(validator, "_validators", ()):  # attrs' and_()
        out.update(validator_schema(member))
    return out


def lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (not encodable as UTF-8), or None.

    JSON (``"\\ud83d"``) and undecodable command-line bytes (``\\udcff``) produce them;
    SQLite, HTTP bodies and terminals cannot take them.
    """
    if text.isascii():  # O(1) in CPython: the common case costs nothing
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def describe_surrogate(what: str, text: str, index: int) -> str:
    """The refusal of text holding a lone surrogate at ``index``: what, where, and the fix."""
    code = ord(text[index])
    # 0xDC80-0xDCFF is how Python hands over a byte that was not UTF-8 (command-line arguments).
    byte = f" (the byte 0x{code - 0xDC00:02X}, not UTF-8)" if 0xDC80 <= code <= 0xDCFF else ""
    return (
        f"{what} has a lone surrogate U+{code:04X}{byte} at index {index}, which is not valid "
        "Unicode text; send UTF-8 (decode bytes with errors='replace' to keep the rest)"
    )


def did_you_mean(word: str, candidates: Any) -> str:
    """Return ``"; did you mean 'x'?"`` when a close candidate exists, else ``""``."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def attribute_errors(exc: ClassValidationError) -> Iterator[tuple[BaseException, str | None]]:
    """A class's errors in the order raised, each with its attribute's name (None: none noted)."""
    from cattrs.errors import AttributeValidationNote

    for sub in exc.exceptions:
        note = next((n for n in getattr(sub, "__notes__", ()) if isinstance(n, AttributeValidationNote)), None)
        yield sub, None if note is None else note.name


def describe_errors(exc: BaseException, path: str = "$") -> Iterator[str]:
    """Flatten a cattrs error tree into one human line per problem, each ending in ``@ path``."""
    # Imported here: a cattrs error exists only once cattrs has been imported to raise it.
    from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

    if isinstance(exc, ClassValidationError):
        for sub, name in attribute_errors(exc):
            yield from describe_errors(sub, path if name is None else f"{path}.{name}")
    elif isinstance(exc, IterableValidationError):
        with_index, without = exc.group_exceptions()
        for sub, inote in with_index:
            yield from describe_errors(sub, f"{path}[{inote.index}]")
        for sub in without:
            yield from describe_errors(sub, path)
    elif isinstance(exc, BaseExceptionGroup):
        for member in exc.exceptions:
            yield from describe_errors(member, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        for key in sorted(exc.extra_fields):
            hint = did_you_mean(key, known) or f"; known keys: {', '.join(known)}"
            yield f"unknown key {key!r}{hint} @ {path}"
    elif isinstance(exc, FieldProblems):
        for member in exc.errors:
            yield from describe_errors(member, path)
    elif isinstance(exc, FieldValueError):
        full = path + exc.suffix
        yield f"{full.removeprefix('$.')} {exc.problem} @ {full}"
    elif isinstance(exc, KeyError):
        yield f"required key {exc.args[0]!r} is missing @ {path}"
    elif isinstance(exc, StrictTypeError):
        yield f"expected {exc.expected}, got {exc.got} @ {path}"
    else:
        yield f"{exc} @ {path}"


def structure_every_field(conv: Converter, value: Any, cls: type[Any]) -> Any:
    """Structure an attrs class with ``conv``, reporting every problem at once, in field order.

    Registered for config.json's sections and provider options (``_config._model``).

    cattrs' own hook stops at the first failing attrs validator (they run in ``__init__``),
    and a bad nested section hides the top level's bad values. Here every key is checked:
    unknown keys (with a did-you-mean), each value's type, then each field's converter and
    validator; all their errors are raised together as one ``ClassValidationError``.
    """
    # Imported here: this runs only once a converter (and so cattrs) exists.
    from cattrs.errors import AttributeValidationNote, ClassValidationError, ForbiddenExtraKeysError

    if not isinstance(value, Mapping):
        raise StrictTypeError("an object", value)
    fields = [f for f in attrs.fields(cls) if f.init]
    hints = typing.get_type_hints(cls)
    errors: list[Exception] = []
    extra = set(value) - {f.name for f in fields}
    if extra:
        errors.append(ForbiddenExtraKeysError("", cls, extra))
    kwargs: dict[str, Any] = {}
    for field in fields:
        if field.name not in value:
            if field.default is attrs.NOTHING:
                errors.append(KeyError(field.name))
            continue
        try:
            item = conv.structure(value[field.name], hints[field.name])
        except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all become ConfigError lines
            exc.__notes__ = [
                *getattr(exc, "__notes__", []),
                AttributeValidationNote(
                    f"Structuring {cls.__qualname__} @ attribute {field.name}", field.name, hints[field.name]
                ),
            ]
            errors.append(exc)
            continue
        try:  # the validators name their field themselves (FieldValueError.suffix): no note
            if field.converter is not None:
                item = field.converter(item)
            if field.validator is not None:
                field.validator(None, field, item)
        except (FieldValueError, FieldProblems) as exc:
            errors.append(exc)
            continue
        kwargs[field.alias] = item
    if errors:
        raise ClassValidationError(f"While structuring {cls.__name__}", errors, cls)
    return cls(**kwargs)


class StrictTypeError(TypeError):
    """A JSON value has the wrong type (cattrs would otherwise coerce it)."""

    def __init__(self, expected: str, value: object) -> None:
        if isinstance(value, int) and value.bit_length() > 100:  # repr() refuses past 4300 digits
            shown = f"of about {int(value.bit_length() * 0.30103) + 1} digits"
        else:
            shown = repr(value)
        got = f"{type(value).__name__} {shown}"
        if len(got) > 80:
            got = got[:77] + "..."
        super().__init__(f"expected {expected}, got {got}")
        self.expected = expected
        self.got = got


# No count, size or seed needs more than 64 bits, and SQLite cannot bind more.
MAX_INT = 2**63 - 1


def strict_int(value: object, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StrictTypeError("an integer", value)
    if not -MAX_INT <= value <= MAX_INT:
        raise StrictTypeError("an integer of at most 63 bits", value)
    return value


def strict_float(value: object, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StrictTypeError("a number", value)
    # JSON as Python reads it has NaN and Infinity, and an int may be too large for a float:
    # none of them is a number of seconds, a rate or a temperature.
    number = float(value) if isinstance(value, float) or abs(value) < 2**1023 else math.inf
    if not math.isfinite(number):
        raise StrictTypeError("a finite number", value)
    return number


def strict_str(value: object, _: Any) -> str:
    if not isinstance(value, str):
        raise StrictTypeError("a string", value)
    return value


def strict_bool(value: object, _: Any) -> bool:
    if not isinstance(value, bool):
        raise StrictTypeError("true or false", value)
    return value
