"""Validators and error formatting shared by config and persona loading.

Validators raise ``FieldValueError`` carrying the field they belong to, so that
the cattrs error tree can be turned into lines like
``retry_schedule[1] must be >= 0 (got -2.0) @ $.retry_schedule[1]``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator
from typing import Any

import attrs


class FieldValueError(ValueError):
    """A value failed validation; ``suffix`` is its path below the object validated."""

    def __init__(self, suffix: str, problem: str) -> None:
        super().__init__(f"{suffix.lstrip('.')} {problem}")
        self.suffix = suffix if suffix.startswith(("[", ".")) else f".{suffix}"
        self.problem = problem


def positive(instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """Validate that a number is > 0 (None passes: it means "not set")."""
    if value is not None and not value > 0:
        raise FieldValueError(attribute.name, f"must be > 0 (got {value!r})")


def at_least(minimum: float) -> Callable[[object, attrs.Attribute[Any], float], None]:
    """Validate that a number is >= ``minimum``."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
        if not value >= minimum:
            raise FieldValueError(attribute.name, f"must be >= {minimum} (got {value!r})")

    return check


def one_of(*choices: str) -> Callable[[object, attrs.Attribute[Any], str], None]:
    """Validate that a string is one of ``choices``."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            hint = did_you_mean(value, choices)
            raise FieldValueError(attribute.name, f"must be one of {listed} (got {value!r}){hint}")

    return check


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


def describe_errors(exc: BaseException, path: str = "$") -> Iterator[str]:
    """Flatten a cattrs error tree into one human line per problem, each ending in ``@ path``."""
    # Imported here: a cattrs error exists only once cattrs has been imported to raise it.
    from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            yield from describe_errors(sub, f"{path}.{note.name}")
        for sub in without:
            yield from describe_errors(sub, path)
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
    elif isinstance(exc, FieldValueError):
        full = path + exc.suffix
        yield f"{full.removeprefix('$.')} {exc.problem} @ {full}"
    elif isinstance(exc, KeyError):
        yield f"required key {exc.args[0]!r} is missing @ {path}"
    elif isinstance(exc, StrictTypeError):
        yield f"expected {exc.expected}, got {exc.got} @ {path}"
    else:
        yield f"{exc} @ {path}"


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
