"""Personas: the schema, loading a folder of JSON files, and the system prompt.

A persona file that cannot be used is reported (file name and field) and the
others still load. Persona ids are validated before any lookup, so an id such as
``../x`` never reaches the file system.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from .._errors import InvalidPersonaIdError, PersonaError, UnknownPersonaError
from .._validation import describe_errors, strict_str

__all__ = ["LanguagePatterns", "Persona", "PersonaStore", "render_system_prompt"]

PERSONA_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


def check_persona_id(persona_id: object) -> str:
    """Return ``persona_id`` if it is a valid id, else raise ``InvalidPersonaIdError``."""
    if not isinstance(persona_id, str):
        raise InvalidPersonaIdError(f"persona id must be a string, got {type(persona_id).__name__}")
    if not PERSONA_ID_PATTERN.match(persona_id):
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


_converter = cattrs.Converter(detailed_validation=True)
_converter.register_structure_hook(str, strict_str)
_converter.register_structure_hook_func(
    lambda t: t == tuple[str, ...] or str(t) == "tuple[str, ...]", _structure_strings
)


def parse_persona(data: Any, source: str) -> Persona:
    """Build a ``Persona`` from one file's parsed JSON.

    Raises:
        PersonaError: The data is not a persona; the message names the file and field.
    """
    if not isinstance(data, Mapping):
        raise PersonaError(f"{source}: a persona file must hold a JSON object")
    data = dict(data)
    # The original VALIS schema allowed common_phrases at the top level.
    top_phrases = data.pop("common_phrases", None)
    if top_phrases is not None:
        patterns = dict(data.get("language_patterns") or {})
        patterns.setdefault("common_phrases", top_phrases)
        data["language_patterns"] = patterns
    known = {a.name for a in attrs.fields(Persona)}
    data = {k: v for k, v in data.items() if k in known}
    try:
        persona = _converter.structure(data, Persona)
    except Exception as exc:  # noqa: BLE001 - every structuring error becomes a PersonaError
        problems = tuple(describe_errors(exc))
        raise PersonaError(f"{source}: " + "; ".join(problems), problems) from None
    for field, value in (("id", persona.id), *((f"aliases[{i}]", a) for i, a in enumerate(persona.aliases))):
        if not PERSONA_ID_PATTERN.match(value):
            raise PersonaError(f"{source}: {field} {value!r} is not a valid persona id @ $.{field}")
    return persona


def builtin_personas_dir() -> Path:
    """Where the shipped personas live: package data in a wheel, ``personas/`` in a checkout."""
    from importlib import resources  # only when personas are loaded: it is slow to import

    packaged = Path(str(resources.files("valis_actors"))) / "_data" / "personas"
    if packaged.is_dir():
        return packaged
    # An editable install or a checkout: the canonical files are at the repository root.
    return Path(__file__).resolve().parents[2] / "personas"


@attrs.define
class PersonaStore:
    """The personas known to a runtime, by id and alias.

    Attributes:
        problems: One line per persona file that could not be loaded.
    """

    personas: dict[str, Persona] = attrs.field(factory=dict)
    aliases: dict[str, str] = attrs.field(factory=dict)
    problems: list[str] = attrs.field(factory=list)
    unknown: str = "neutral"

    @classmethod
    def from_personas(cls, personas: Iterable[Persona], unknown: str = "neutral") -> PersonaStore:
        store = cls(unknown=unknown)
        for persona in personas:
            store.add(persona)
        return store

    @classmethod
    def load_dir(cls, directory: str | Path | None, unknown: str = "neutral") -> PersonaStore:
        """Load every ``*.json`` in ``directory`` (the shipped personas when None).

        Blocking: call it from a worker thread inside the event loop.

        Raises:
            PersonaError: The directory does not exist.
        """
        folder = Path(directory) if directory is not None else builtin_personas_dir()
        if not folder.is_dir():
            raise PersonaError(
                f"personas_dir {str(folder)!r} is not a directory; create it or fix personas_dir in config.json"
            )
        store = cls(unknown=unknown)
        for file in sorted(folder.glob("*.json")):
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                store.problems.append(f"{file.name}: invalid JSON at line {exc.lineno}, column {exc.colno}")
                continue
            except (OSError, UnicodeDecodeError) as exc:
                store.problems.append(f"{file.name}: cannot read ({exc})")
                continue
            try:
                persona = parse_persona(data, file.name)
            except PersonaError as exc:
                store.problems.append(str(exc))
                continue
            if persona.id != file.stem:
                store.problems.append(f"{file.name}: id {persona.id!r} differs from the file name; using the id")
            store.add(persona)
        return store

    def add(self, persona: Persona) -> None:
        """Add (or replace) a persona and its aliases."""
        self.personas[persona.id] = persona
        for alias in persona.aliases:
            self.aliases[alias] = persona.id

    def get(self, persona_id: str) -> Persona:
        """The persona for an id or alias; unknown ids get the neutral persona.

        Raises:
            InvalidPersonaIdError: The id is malformed.
            UnknownPersonaError: Unknown id and ``unknown_persona`` is ``"error"``.
        """
        persona = self.personas.get(persona_id) or self.personas.get(self.aliases.get(persona_id, ""))
        if persona is not None:
            return persona
        check_persona_id(persona_id)
        if self.unknown == "error":
            raise UnknownPersonaError(
                f"unknown persona {persona_id!r}; known: {', '.join(sorted(self.personas)) or 'none'}"
                " (add personas/<id>.json or set unknown_persona to 'neutral')"
            )
        return NEUTRAL

    def __iter__(self) -> Any:
        return iter(self.personas.values())


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
