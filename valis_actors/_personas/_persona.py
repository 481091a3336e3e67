"""The persona: its schema, parsing one file's JSON, ids, and the system prompt.

Every malformed input becomes a ``PersonaError`` naming the file and the JSON
path. Persona ids are validated before any lookup (the whole string: ``"jane\\n"``
is refused), so an id such as ``../x`` never reaches the file system.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import cattrs

from .._errors import InvalidPersonaIdError, PersonaError
from .._validation import StrictTypeError, describe_errors, strict_str

__all__ = [
    "NEUTRAL",
    "PERSONA_ID_PATTERN",
    "LanguagePatterns",
    "Persona",
    "check_persona_id",
    "parse_persona",
    "render_system_prompt",
]

# Used with fullmatch: "$" would let a trailing newline through ("jane\n").
PERSONA_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")


def check_persona_id(persona_id: object) -> str:
    """Return ``persona_id`` if it is a valid id, else raise ``InvalidPersonaIdError``."""
    if not isinstance(persona_id, str):
        raise InvalidPersonaIdError(f"persona id must be a string, got {type(persona_id).__name__}")
    if not PERSONA_ID_PATTERN.fullmatch(persona_id):
        shown = persona_id if len(persona_id) <= 40 else persona_id[:37] + "..."
        raise InvalidPersonaIdError(
            f"invalid persona id {shown!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return persona_id


@attrs.frozen
class LanguagePatterns:
    """How a persona speaks."""

    common_phrases: tuple[str, ...] = ()
    question_style: str = ""
    reflection_style: str = ""


@attrs.frozen
class Persona:
    """A persona, as written in ``personas/<id>.json`` (the original VALIS schema).

    Only ``id`` and ``name`` are required. ``openers`` and ``closers`` feed the
    local persona fallback; it falls back to neutral wording when they are absent.
    """

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    tone: str = ""
    background: str = ""
    approach: str = ""
    specialties: tuple[str, ...] = ()
    language_patterns: LanguagePatterns = LanguagePatterns()
    personality_traits: tuple[str, ...] = ()
    expertise_areas: tuple[str, ...] = ()
    openers: tuple[str, ...] = ()
    closers: tuple[str, ...] = ()

    @property
    def common_phrases(self) -> tuple[str, ...]:
        return self.language_patterns.common_phrases


NEUTRAL = Persona(
    id="neutral",
    name="Assistant",
    description="a helpful, neutral assistant",
    tone="clear, friendly and neutral",
    approach="I listen first, then suggest one concrete next step.",
    language_patterns=LanguagePatterns(
        common_phrases=("Let's take this one step at a time.", "Thanks for explaining."),
        question_style="Asks one open question at a time.",
        reflection_style="Restates the main point briefly.",
    ),
    openers=("Thanks for your message.", "I hear you."),
    closers=("What would help most right now?",),
)


def _structure_strings(value: Any, _: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {type(value).__name__}")
    return tuple(strict_str(v, str) for v in value)


@functools.cache
def _converter() -> cattrs.Converter:
    """The persona converter, built on first use: ``import valis_actors`` imports no cattrs."""
    import cattrs

    conv = cattrs.Converter(detailed_validation=True)
    conv.register_structure_hook(str, strict_str)
    conv.register_structure_hook_func(
        lambda t: t == tuple[str, ...] or str(t) == "tuple[str, ...]", _structure_strings
    )
    fields = conv.get_structure_hook(LanguagePatterns)

    def structure_patterns(value: Any, cl: Any) -> LanguagePatterns:
        # cattrs reads an attrs class from anything supporting `in` (a list, a string): require an object.
        if not isinstance(value, Mapping):
            raise StrictTypeError("an object", value)
        return fields(value, cl)  # type: ignore[no-any-return]

    conv.register_structure_hook(LanguagePatterns, structure_patterns)
    return conv


def parse_persona(data: Any, source: str) -> Persona:
    """Build a ``Persona`` from one file's parsed JSON.

    Raises:
        PersonaError: The data is not a persona; the message names the file and field.
    """
    if not isinstance(data, Mapping):
        raise PersonaError(f"{source}: a persona file must hold a JSON object, got {_json_type(data)} @ $")
    data = dict(data)
    # The original VALIS schema allowed common_phrases at the top level.
    top_phrases = data.pop("common_phrases", None)
    if top_phrases is not None:
        patterns = data.get("language_patterns")
        if patterns is None:
            patterns = {}
        if not isinstance(patterns, Mapping):
            raise PersonaError(
                f"{source}: expected an object, got {_json_type(patterns)} @ $.language_patterns"
            )
        data["language_patterns"] = {"common_phrases": top_phrases, **patterns}
    known = {a.name for a in attrs.fields(Persona)}
    data = {k: v for k, v in data.items() if k in known}
    try:
        persona = _converter().structure(data, Persona)
    except Exception as exc:  # noqa: BLE001 - every structuring error becomes a PersonaError
        problems = tuple(describe_errors(exc)) or (f"{type(exc).__name__}: {exc} @ $",)
        raise PersonaError(f"{source}: " + "; ".join(problems), problems) from None
    for field, value in (("id", persona.id), *((f"aliases[{i}]", a) for i, a in enumerate(persona.aliases))):
        if not PERSONA_ID_PATTERN.fullmatch(value):
            raise PersonaError(f"{source}: {field} {value[:70]!r} is not a valid persona id @ $.{field}")
    return persona


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def render_system_prompt(persona: Persona) -> str:
    """Render a persona as the system prompt sent to remote models."""
    lines = [f"You are {persona.name}" + (f", {persona.description}" if persona.description else "") + "."]
    if persona.background:
        lines.append(f"Background: {persona.background}")
    if persona.tone:
        lines.append(f"Your tone is {persona.tone}.")
    if persona.approach:
        lines.append(f"Your approach: {persona.approach}")
    if persona.specialties:
        lines.append("Your specialties: " + ", ".join(persona.specialties) + ".")
    if persona.personality_traits:
        lines.append("You are " + ", ".join(persona.personality_traits) + ".")
    patterns = persona.language_patterns
    if patterns.common_phrases:
        lines.append("Phrases you often use: " + " | ".join(patterns.common_phrases))
    if patterns.question_style:
        lines.append(f"When you ask questions: {patterns.question_style}")
    if patterns.reflection_style:
        lines.append(f"When you reflect back: {patterns.reflection_style}")
    lines.append("Stay in character. Answer in the user's language, concisely.")
    return "\n".join(lines)
