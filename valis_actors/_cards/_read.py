"""Reading a card from its container: JSON, PNG/APNG (tEXt, zTXt, iTXt) or CHARX (zip).

The container is recognized by its first bytes, not by the file name. Every
failure is a ``CardError`` naming the file; nothing is ever fetched from the
network (``assets`` and ``source`` URLs are data, kept for export), and nothing
is extracted from a CHARX archive but ``card.json``, read into memory.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

import attrs

from ._card import Card, parse_card_object
from ._charx import charx_card_json
from ._error import CardError
from ._limits import DEFAULT_LIMITS, CardLimits
from ._png import PNG_SIGNATURE, read_card_chunks

__all__ = ["decode_card_json", "parse_card_bytes", "read_card", "read_card_bytes"]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _check_structure(value: Any, source: str, limits: CardLimits) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limits.max_json_depth:
            raise CardError(
                source, f"the card JSON nests deeper than {limits.max_json_depth} levels; refused"
            )
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    # A "\\ud800" escape: no encoder accepts it later (prompts, exports, logs).
                    raise CardError(source, "the card holds text with a lone surrogate (not valid Unicode)") from None
        elif isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            stack.extend((k, depth + 1) for k in item)
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _finite_float(text: str) -> float:
    # 1e400 would become inf and be written back as "Infinity", which is not JSON: refuse it here.
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def decode_card_json(
    data: bytes, source: str, what: str = "card", limits: CardLimits = DEFAULT_LIMITS
) -> Any:
    """Parse UTF-8 JSON bytes (a BOM is allowed), with the size and nesting caps.

    Raises:
        CardError: Too large, not UTF-8, not JSON, or nested too deeply; ``what`` says where it was.
    """
    if len(data) > limits.max_card_bytes:
        raise CardError(
            source, f"the {what} JSON is {len(data)} bytes, over the {limits.max_card_bytes}-byte limit"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CardError(source, f"the {what} is not valid UTF-8 (at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise CardError(
            source, f"the {what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise CardError(source, f"the {what} JSON nests too deeply; refused") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise CardError(source, f"the {what} JSON has an unreadable value ({exc})") from None
    _check_structure(value, source, limits)
    return value


def _chunk_json(text: bytes, keyword: str, source: str, limits: CardLimits) -> Any:
    what = f"{keyword!r} chunk"
    compact = b"".join(text.split())
    if compact.startswith(b"{"):  # some old tools stored the JSON itself, not base64
        return decode_card_json(text, source, what, limits)
    if len(compact) * 3 // 4 > limits.max_card_bytes:
        raise CardError(source, f"the {what} is over the {limits.max_card_bytes}-byte limit")
    try:
        decoded = base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CardError(source, f"the {what} is not valid base64") from None
    return decode_card_json(decoded, source, what, limits)


def _from_png(data: bytes, source: str, limits: CardLimits) -> Card:
    chunks = read_card_chunks(data, source, limits)
    if not chunks:
        raise CardError(source, "the PNG holds no character card (no 'chara' or 'ccv3' text chunk)")
    if "ccv3" in chunks:
        companion = None
        warning = ""
        if "chara" in chunks:
            try:
                chara = _chunk_json(chunks["chara"], "chara", source, limits)
                companion = chara if isinstance(chara, dict) else None
            except CardError as exc:
                warning = (
                    f"{source}: the 'chara' chunk beside 'ccv3' is unreadable ({exc.problem}); it is dropped"
                )
        try:
            card = parse_card_object(
                _chunk_json(chunks["ccv3"], "ccv3", source, limits), source, companion=companion
            )
        except CardError as exc:
            if companion is None:
                raise
            card = parse_card_object(companion, source)
            warning = (
                f"{source}: the 'ccv3' chunk is unusable ({exc.problem}); read the 'chara' chunk instead"
            )
        return _with_warning(card, warning)
    return parse_card_object(_chunk_json(chunks["chara"], "chara", source, limits), source)


def _with_warning(card: Card, warning: str) -> Card:
    if not warning:
        return card
    return attrs.evolve(card, warnings=(*card.warnings, warning))


def _from_charx(data: bytes, source: str, limits: CardLimits) -> Card:
    return parse_card_object(
        decode_card_json(charx_card_json(data, source, limits), source, "card.json", limits), source
    )


def parse_card_bytes(data: bytes, source: str, *, limits: CardLimits = DEFAULT_LIMITS) -> Card:
    """Parse a card file's bytes, whatever the container.

    Args:
        data: The file's content.
        source: The file name, for messages.
        limits: Size caps.

    Raises:
        CardError: The bytes are not a usable card; the message names ``source`` and the problem.
    """
    if data.startswith(PNG_SIGNATURE):
        if len(data) > limits.max_file_bytes:
            raise CardError(
                source, f"the file is {len(data)} bytes, over the {limits.max_file_bytes}-byte limit"
            )
        return _from_png(data, source, limits)
    if data.startswith(_ZIP_MAGIC):
        if len(data) > limits.max_charx_bytes:
            raise CardError(
                source, f"the file is {len(data)} bytes, over the {limits.max_charx_bytes}-byte limit"
            )
        return _from_charx(data, source, limits)
    if len(data) > limits.max_file_bytes:
        raise CardError(source, f"the file is {len(data)} bytes, over the {limits.max_file_bytes}-byte limit")
    return parse_card_object(decode_card_json(data, source, "card", limits), source)


def read_card_bytes(path: str | Path, *, limits: CardLimits = DEFAULT_LIMITS) -> bytes:
    """A card file's bytes, read no further than the largest cap allows.

    Raises:
        CardError: The file cannot be read or is over the cap.
    """
    file = Path(path)
    cap = max(limits.max_file_bytes, limits.max_charx_bytes)
    try:
        with file.open("rb") as stream:
            data = stream.read(cap + 1)
    except OSError as exc:
        raise CardError(file.name, f"cannot read the file ({exc.strerror or exc})") from None
    if len(data) > cap:
        raise CardError(file.name, f"the file is over the {cap}-byte limit")
    return data


def read_card(path: str | Path, *, limits: CardLimits = DEFAULT_LIMITS) -> Card:
    """Read a card file (``.json``, ``.png``/``.apng``, ``.charx``). Blocking: run it in a worker thread.

    Raises:
        CardError: The file cannot be read or is not a usable card; the message starts with its name.
    """
    data = read_card_bytes(path, limits=limits)
    source = Path(path).name
    return parse_card_bytes(data, source, limits=limits)
