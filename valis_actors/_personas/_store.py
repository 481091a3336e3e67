"""The personas a runtime knows: a folder of persona files and character cards, by id and alias.

A file that cannot be used is reported (file name and JSON path) and the others
still load: nothing in one file stops another. Ids and aliases match
case-insensitively (``Jane`` finds ``jane``). Character cards (``.png``, ``.apng``,
``.charx``, card ``.json``) load beside VALIS persona JSON; their system prompt
depends on the message and the history (macros, lorebook), so the store renders
it per message (``prompt_for``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from .._cards import CARD_SUFFIXES, DEFAULT_USER, is_card_json, parse_card_bytes, read_card_bytes
from .._errors import PersonaError, UnknownPersonaError
from ._card import CardPersona
from ._persona import NEUTRAL, Persona, check_persona_id, parse_persona, render_system_prompt

__all__ = ["PersonaStore", "builtin_personas_dir"]

_MAX_PERSONA_BYTES = 10 * 1024 * 1024  # as for card files: a persona file is never read past this


def builtin_personas_dir() -> Path:
    """Where the shipped personas live: package data in a wheel, ``personas/`` in a checkout."""
    from importlib import resources  # only when personas are loaded: it is slow to import

    packaged = Path(str(resources.files("valis_actors"))) / "_data" / "personas"
    if packaged.is_dir():
        return packaged
    # An editable install or a checkout: the canonical files are at the repository root.
    return Path(__file__).resolve().parents[2] / "personas"


def _read_persona_json(file: Path) -> Any:
    """A VALIS persona file's JSON; every way it can fail is a ``PersonaError`` naming the file."""
    try:
        with file.open("rb") as stream:
            data = stream.read(_MAX_PERSONA_BYTES + 1)
        if len(data) > _MAX_PERSONA_BYTES:
            raise PersonaError(f"{file.name}: over the {_MAX_PERSONA_BYTES}-byte limit of a persona file; refused")
        value = json.loads(data.decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise PersonaError(f"{file.name}: invalid JSON at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise PersonaError(f"{file.name}: not valid UTF-8 (at byte {exc.start})") from None
    except RecursionError:
        raise PersonaError(f"{file.name}: the JSON nests too deeply; refused") from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise PersonaError(f"{file.name}: the JSON has an unreadable value ({exc})") from None
    except OSError as exc:
        raise PersonaError(f"{file.name}: cannot read ({exc.strerror or exc})") from None
    where = _lone_surrogate(value)
    if where is not None:
        # "\\ud800" escapes decode to a lone surrogate, which no encoder accepts later (prompts, logs, sqlite).
        raise PersonaError(f"{file.name}: text with a lone surrogate (not valid Unicode) @ {where}")
    return value


def _lone_surrogate(value: Any) -> str | None:
    """The JSON path of the first string holding a lone surrogate, or None."""
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path
        elif isinstance(item, dict):
            for key, sub in item.items():
                if _lone_surrogate(key) is not None:
                    return path
                stack.append((sub, f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((sub, f"{path}[{index}]") for index, sub in enumerate(item))
    return None


def _load_file(file: Path) -> Persona | CardPersona:
    """One file of a personas folder, as a persona or a card.

    Raises:
        PersonaError: It cannot be used (a ``CardError`` for a card); the message names the file.
    """
    if file.suffix.lower() != ".json":
        return CardPersona.from_card(parse_card_bytes(read_card_bytes(file), file.name), file)
    data = _read_persona_json(file)
    if is_card_json(data):
        # Parsed again by the card reader: it enforces the card caps and keeps the raw object for export.
        return CardPersona.from_card(parse_card_bytes(read_card_bytes(file), file.name), file)
    return parse_persona(data, file.name)


@attrs.define
class PersonaStore:
    """The personas known to a runtime, by id and alias (case-insensitive).

    Attributes:
        personas: By id, as written.
        aliases: Lower-cased alias -> persona id.
        problems: One line per file that could not be loaded (it names the file).
        warnings: One line per file that loaded with something to say (id differs from
            the file name, an alias taken by another persona, a newer card spec, ...).
        cards: The personas that came from character cards, by persona id.
        user_name: What ``{{user}}`` becomes in card prompts and greetings.
    """

    personas: dict[str, Persona] = attrs.field(factory=dict)
    aliases: dict[str, str] = attrs.field(factory=dict)
    problems: list[str] = attrs.field(factory=list)
    unknown: str = "neutral"
    warnings: list[str] = attrs.field(factory=list)
    cards: dict[str, CardPersona] = attrs.field(factory=dict)
    user_name: str = DEFAULT_USER
    _folded: dict[str, str] = attrs.field(factory=dict, init=False, repr=False)  # lower-cased id -> id

    @classmethod
    def from_personas(
        cls, personas: Iterable[Persona | CardPersona], unknown: str = "neutral", *, user_name: str = DEFAULT_USER
    ) -> PersonaStore:
        """A store holding ``personas`` (``Persona`` objects or loaded cards)."""
        store = cls(unknown=unknown, user_name=user_name)
        for persona in personas:
            store.add(persona)
        return store

    @classmethod
    def load_dir(
        cls, directory: str | Path | None, unknown: str = "neutral", *, user_name: str = DEFAULT_USER
    ) -> PersonaStore:
        """Load every persona file (``*.json``) and character card (``.png``, ``.apng``, ``.charx``,
        card ``.json``) in ``directory`` (the shipped personas when None).

        A file that cannot be used becomes one line in ``problems``; the others still load.
        Blocking: call it from a worker thread inside the event loop.

        Raises:
            PersonaError: The directory does not exist.
        """
        folder = Path(directory) if directory is not None else builtin_personas_dir()
        if not folder.is_dir():
            raise PersonaError(
                f"personas_dir {str(folder)!r} is not a directory; create it or fix personas_dir in config.json"
            )
        store = cls(unknown=unknown, user_name=user_name)
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in CARD_SUFFIXES and f.is_file())
        for file in files:
            try:
                loaded = _load_file(file)
            except PersonaError as exc:
                store.problems.append(str(exc))
                continue
            except (RecursionError, MemoryError, TypeError, ValueError) as exc:
                # A safety net: every known case is a PersonaError; a new one is reported, never raised.
                store.problems.append(f"{file.name}: cannot be used ({type(exc).__name__}: {exc})"[:300])
                continue
            persona = loaded.persona if isinstance(loaded, CardPersona) else loaded
            if isinstance(loaded, CardPersona):
                if persona.id in store.cards:
                    first = store.cards[persona.id].path
                    store.problems.append(
                        f"{file.name}: the same card as {first.name if first else '?'} (id {persona.id}); skipped"
                    )
                    continue
                store.warnings.extend(loaded.card.warnings)
            elif persona.id.lower() != file.stem.lower():
                store.warnings.append(
                    f"{file.name}: id {persona.id!r} differs from the file name; loaded as {persona.id!r}"
                )
            store.add(loaded, source=file.name)
        return store

    def add(self, persona: Persona | CardPersona, *, source: str | None = None) -> None:
        """Add (or replace) a persona (or a loaded card) and its aliases.

        An id that only differs in case from another persona's, or an alias that is another
        persona's id (or alias), gets a line in ``warnings``: ids win over aliases, the first
        alias wins over a later one.
        """
        if isinstance(persona, CardPersona):
            self.cards[persona.persona.id] = persona
            persona = persona.persona
        else:
            self.cards.pop(persona.id, None)
        where = f"{source}: " if source else ""
        if source and persona.id in self.personas:
            self.warnings.append(f"{where}id {persona.id!r} was already loaded from another file; replaced")
        key = persona.id.lower()
        owner = self._folded.get(key)
        if owner is not None and owner != persona.id and owner in self.personas:
            self.warnings.append(f"{where}id {persona.id!r} differs from {owner!r} only in case; {owner!r} keeps it")
        else:
            self._folded[key] = persona.id
        self.personas[persona.id] = persona
        for alias in persona.aliases:
            folded = alias.lower()
            taken = self._folded.get(folded)
            if taken is not None and taken != persona.id:
                self.warnings.append(
                    f"{where}alias {alias!r} of {persona.id!r} is the id of {taken!r}; it finds {taken!r}"
                )
                continue
            other = self.aliases.get(folded)
            if other is not None and other != persona.id:
                self.warnings.append(f"{where}alias {alias!r} of {persona.id!r} is taken by {other!r}; ignored")
                continue
            self.aliases[folded] = persona.id

    def find(self, persona_id: str) -> Persona | None:
        """The persona for an id or alias (any case), or None when there is none."""
        persona = self.personas.get(persona_id)
        if persona is not None:
            return persona
        key = persona_id.lower()
        found = self._folded.get(key) or self.aliases.get(key)
        return self.personas.get(found) if found is not None else None

    def get(self, persona_id: str) -> Persona:
        """The persona for an id or alias (any case); unknown ids get the neutral persona.

        The neutral persona answers under the id asked for (lower-cased), so memory,
        keyed by persona id, is never shared between two unknown ids.

        Raises:
            InvalidPersonaIdError: The id is malformed.
            UnknownPersonaError: Unknown id and ``unknown_persona`` is ``"error"``.
        """
        persona = self.find(persona_id)
        if persona is not None:
            return persona
        check_persona_id(persona_id)
        if self.unknown == "error":
            raise UnknownPersonaError(
                f"unknown persona {persona_id!r}; known: {', '.join(sorted(self.personas)) or 'none'}"
                " (add personas/<id>.json or set unknown_persona to 'neutral')"
            )
        key = persona_id.lower()
        return NEUTRAL if key == NEUTRAL.id else attrs.evolve(NEUTRAL, id=key)

    def is_known(self, persona_id: str) -> bool:
        """Whether ``persona_id`` names a loaded persona (an id or alias, any case)."""
        return self.find(persona_id) is not None

    def card(self, persona_id: str) -> CardPersona | None:
        """The character card behind a persona id or alias, or None when it is not a card."""
        persona = self.find(persona_id)
        return self.cards.get(persona.id) if persona is not None else None

    def prompt_for(self, persona: Persona, session_id: str, messages: Sequence[str] = ()) -> str | None:
        """A card persona's system prompt for one message; None for other personas.

        Args:
            persona: The persona answering.
            session_id: Seeds the card's ``{{pick}}``/``{{random}}`` macros.
            messages: The history's texts (user, assistant, ...) then the new message: what the
                lorebook scans.
        """
        card = self.cards.get(persona.id)
        if card is None or card.persona is not persona:
            return None
        prompt = card.prompt(
            session_id=session_id,
            user=self.user_name,
            messages=messages,
            seed=str(len(messages)),
            assistant_turns=len(messages) // 2,
        )
        return f"{prompt.system}\n\n{prompt.post_history}" if prompt.post_history else prompt.system

    def system_prompt(self, persona_id: str, session_id: str = "show", messages: Sequence[str] = ()) -> str:
        """What the model gets as the system prompt for ``persona_id`` (``valis personas show``).

        Raises:
            InvalidPersonaIdError: The id is malformed.
            UnknownPersonaError: No persona has this id or alias.
        """
        persona = self.find(persona_id)
        if persona is None:
            check_persona_id(persona_id)
            raise UnknownPersonaError(
                f"unknown persona {persona_id!r}; known: {', '.join(sorted(self.personas)) or 'none'}"
            )
        card = self.cards.get(persona.id)
        if card is not None:
            return card.prompt(session_id=session_id, user=self.user_name, messages=messages).text()
        return render_system_prompt(persona)

    def greeting(self, persona_id: str, session_id: str) -> str:
        """The greeting that opens ``session_id`` with a card persona (``first_mes``, macros expanded).

        ``""`` for personas without one (VALIS persona files, cards without ``first_mes``) and
        for unknown ids.
        """
        card = self.card(persona_id)
        return card.greeting(session_id, user=self.user_name) if card is not None else ""

    def __iter__(self) -> Iterator[Persona]:
        return iter(self.personas.values())
