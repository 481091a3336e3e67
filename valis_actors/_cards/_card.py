"""The card model: the raw JSON as read, plus the normalized fields VALIS uses.

``Card.raw`` is the card object exactly as it was in the file (unknown keys,
``extensions``, SillyTavern's top-level V1 copies and all); export writes it
back, so nothing is lost. The other attributes are read-only views used to
build the persona and its prompt. Missing and ``null`` fields take their
defaults; a field of the wrong type is an error naming its JSON path.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import attrs

from ._error import CardError
from ._lorebook import Lorebook, parse_book

__all__ = ["Card", "card_persona_id", "is_card_json", "parse_card_object"]

V1, V2, V3 = "chara_card_v1", "chara_card_v2", "chara_card_v3"
_SPEC = re.compile(r"^chara_card_v(\d+)$")
_V1_KEYS = ("first_mes", "mes_example", "personality", "scenario")
# Not the nickname: a V1/V2 card may carry one that only counts once the card is exported as V3.
_HASHED = (
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "system_prompt",
    "post_history_instructions",
)


@attrs.frozen
class Card:
    """A character card.

    Attributes:
        raw: The card object as read; export writes it back unchanged.
        spec: ``chara_card_v1``, ``chara_card_v2`` or ``chara_card_v3`` (newer V3 versions read as V3).
        spec_version: As written in the card (``""`` for V1).
        source: The file name (or label) it came from; errors and warnings name it.
        warnings: Things a user should know (a newer spec version, ignored data), one line each.
        companion: In a PNG with both chunks, the ``chara`` (V2) object beside the preferred ``ccv3``;
            written back as-is on PNG export.
        book: The lorebook (``character_book``), or None.
    """

    raw: dict[str, Any] = attrs.field(eq=False, repr=False)
    spec: str
    spec_version: str
    name: str
    nickname: str = ""
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: tuple[str, ...] = ()
    group_only_greetings: tuple[str, ...] = ()
    creator_notes: str = attrs.field(default="", repr=False)
    tags: tuple[str, ...] = attrs.field(default=(), repr=False)
    creator: str = attrs.field(default="", repr=False)
    character_version: str = attrs.field(default="", repr=False)
    book: Lorebook | None = attrs.field(default=None, repr=False)
    source: str = ""
    warnings: tuple[str, ...] = ()
    companion: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def char_name(self) -> str:
        """What ``{{char}}`` becomes: the nickname when set, else the name."""
        return self.nickname or self.name

    @property
    def data(self) -> Mapping[str, Any]:
        """The object holding the card fields: ``raw["data"]`` for V2/V3, ``raw`` itself for V1."""
        return self.raw if self.spec == V1 else self.raw["data"]


def is_card_json(obj: object) -> bool:
    """Whether a parsed JSON file is a character card rather than a VALIS persona file.

    A card has ``spec: chara_card_v*`` or, for V1, a ``name`` and one of the V1 fields and no ``id``.
    """
    if not isinstance(obj, Mapping):
        return False
    spec = obj.get("spec")
    if isinstance(spec, str):
        return spec.startswith("chara_card_v")
    return "name" in obj and "id" not in obj and any(k in obj for k in _V1_KEYS)


def _text(data: Mapping[str, Any], key: str, source: str, path: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CardError(source, f"{path}.{key} must be a string (got {type(value).__name__})")
    return value


def _texts(data: Mapping[str, Any], key: str, source: str, path: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CardError(source, f"{path}.{key} must be a list of strings (got {type(value).__name__})")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise CardError(source, f"{path}.{key}[{index}] must be a string (got {type(item).__name__})")
    return tuple(value)


def _meta(data: Mapping[str, Any], key: str) -> str:
    # Metadata never reaches a prompt; a number where a string belongs is shown, not refused.
    value = data.get(key)
    return "" if value is None else value if isinstance(value, str) else str(value)


def _meta_list(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _spec_of(obj: Mapping[str, Any], source: str, warnings: list[str]) -> tuple[str, str]:
    spec = obj.get("spec")
    if spec is None:
        return V1, ""
    if not isinstance(spec, str):
        raise CardError(source, f"$.spec must be a string (got {type(spec).__name__})")
    version = obj.get("spec_version")
    version_text = "" if version is None else str(version)[:20]  # it is quoted in warnings
    match = _SPEC.match(spec)
    if match is None:
        hint = " (a standalone lorebook, not a character card)" if spec.startswith("lorebook") else ""
        raise CardError(
            source, f"unknown card spec {spec[:40]!r}{hint}; expected chara_card_v2 or chara_card_v3"
        )
    major = int(match.group(1)[:4])
    if major < 2:
        return V1, version_text
    try:
        number = float(version_text) if version_text else float(major)
    except ValueError:
        number = float(major)
    if major > 3 or (major == 3 and number > 3.0):
        warnings.append(
            f"{source}: card spec {spec} {version_text} is newer than 3.0; read as V3, new features ignored"
        )
        return V3, version_text
    if major == 2 and number > 2.0:
        warnings.append(f"{source}: card spec {spec} {version_text} is newer than 2.0; read as V2")
    return (V3 if major == 3 else V2), version_text


def parse_card_object(obj: object, source: str, *, companion: dict[str, Any] | None = None) -> Card:
    """Build a ``Card`` from a parsed card JSON object.

    Raises:
        CardError: Not a card object, or a field has the wrong type; the message names the file and the path.
    """
    if not isinstance(obj, dict):
        raise CardError(source, f"a card must be a JSON object (got {type(obj).__name__})")
    warnings: list[str] = []
    spec, version = _spec_of(obj, source, warnings)
    data: Any
    if spec == V1:
        data, path = obj, "$"
    else:
        data, path = obj.get("data"), "$.data"
        if not isinstance(data, dict):
            raise CardError(
                source, f"$.data must be an object holding the card fields (got {type(data).__name__})"
            )
    name = _text(data, "name", source, path).strip()
    if not name:
        raise CardError(source, f"{path}.name is missing or empty; a card needs a name")
    book_obj = data.get("character_book")
    book = None if book_obj is None else parse_book(book_obj, source, f"{path}.character_book")
    return Card(
        raw=obj,
        spec=spec,
        spec_version=version,
        name=name,
        nickname=_text(data, "nickname", source, path).strip() if spec == V3 else "",
        description=_text(data, "description", source, path),
        personality=_text(data, "personality", source, path),
        scenario=_text(data, "scenario", source, path),
        first_mes=_text(data, "first_mes", source, path),
        mes_example=_text(data, "mes_example", source, path),
        system_prompt=_text(data, "system_prompt", source, path),
        post_history_instructions=_text(data, "post_history_instructions", source, path),
        alternate_greetings=_texts(data, "alternate_greetings", source, path),
        group_only_greetings=_texts(data, "group_only_greetings", source, path),
        creator_notes=_meta(data, "creator_notes"),
        tags=_meta_list(data, "tags"),
        creator=_meta(data, "creator"),
        character_version=_meta(data, "character_version"),
        book=book,
        source=source,
        warnings=tuple(warnings),
        companion=companion,
    )


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:40].strip("_")
    return slug or "card"


def card_persona_id(card: Card) -> str:
    """``<slug of the name>-<8 hex digits>``: stable for the same character, valid as a persona id."""
    fields = {key: getattr(card, key) for key in _HASHED}
    digest = hashlib.blake2b(json.dumps(fields, sort_keys=True).encode(), digest_size=4).hexdigest()
    return f"{_slug(card.name)}-{digest}"
