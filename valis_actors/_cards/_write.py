"""Writing a card back: JSON (the raw card, unchanged) or PNG with both ``chara`` and ``ccv3``.

Export is lossless because it writes ``Card.raw``, the object as it was read.
PNG export writes the two chunks SillyTavern writes: ``ccv3`` holds the card as
V3 (a V2 card with only ``spec``/``spec_version`` changed, as SillyTavern does;
a V1 card wrapped under ``data``), and ``chara`` holds it as V1/V2 (the original
object for a V1/V2 card; for a V3 card the ``chara`` chunk it came with, or a
backfill with ``@@`` decorators removed, as the V3 spec advises).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from ._card import V1, V2, V3, Card
from ._decorators import parse_decorators
from ._error import CardError
from ._limits import DEFAULT_LIMITS, CardLimits
from ._png import blank_png, replace_card_chunks

__all__ = ["card_to_json", "card_to_png", "v2_object", "v3_object"]


def v3_object(card: Card) -> dict[str, Any]:
    """The card as a ``chara_card_v3`` object (the raw object itself for a V3 card)."""
    if card.spec == V3:
        return card.raw
    if card.spec == V1:
        data = copy.deepcopy(card.raw)
    else:
        upgraded = copy.deepcopy(card.raw)
        upgraded["spec"], upgraded["spec_version"] = V3, "3.0"
        upgraded["data"].setdefault("group_only_greetings", [])
        return upgraded
    data.setdefault("group_only_greetings", [])
    return {"spec": V3, "spec_version": "3.0", "data": data}


def v2_object(card: Card) -> dict[str, Any]:
    """The card as a V1/V2 object for the ``chara`` chunk (see the module docstring)."""
    if card.spec in (V1, V2):
        return card.raw
    if card.companion is not None:
        return card.companion
    backfill = copy.deepcopy(card.raw)
    backfill["spec"], backfill["spec_version"] = V2, "2.0"
    book = backfill["data"].get("character_book")
    entries = book.get("entries") if isinstance(book, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("content"), str):
            entry["content"] = parse_decorators(entry["content"])[1]
    return backfill


def _dumps(obj: dict[str, Any], card: Card, indent: int | None = None) -> str:
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent)
    except (TypeError, ValueError, RecursionError) as exc:  # a Card built by hand, not read from a file
        raise CardError(card.source or card.name, f"the card cannot be written as JSON ({exc})") from None


def card_to_json(card: Card, *, spec: str = "raw") -> bytes:
    """The card as UTF-8 JSON.

    Args:
        card: The card.
        spec: ``"raw"`` (the object as read: lossless), ``"v2"`` or ``"v3"``.

    Raises:
        CardError: ``spec`` is unknown, or the object cannot be serialized.
    """
    if spec not in ("raw", "v2", "v3"):
        raise CardError(card.source or card.name, f"unknown export spec {spec!r}; use raw, v2 or v3")
    obj = card.raw if spec == "raw" else v2_object(card) if spec == "v2" else v3_object(card)
    return (_dumps(obj, card, indent=2) + "\n").encode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def card_to_png(card: Card, image: bytes | None = None, *, limits: CardLimits = DEFAULT_LIMITS) -> bytes:
    """A PNG carrying the card in ``chara`` and ``ccv3`` tEXt chunks.

    Args:
        card: The card.
        image: The PNG to embed into (its old card chunks are replaced); None for a 1x1 blank image.
        limits: Chunk caps applied while reading ``image``.

    Raises:
        CardError: ``image`` is not a readable PNG, or the card cannot be serialized.
    """
    texts = {"chara": _b64(_dumps(v2_object(card), card)), "ccv3": _b64(_dumps(v3_object(card), card))}
    return replace_card_chunks(
        image if image is not None else blank_png(), texts, card.source or "image", limits
    )
