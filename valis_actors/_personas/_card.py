"""A character card as a VALIS persona: its ``Persona``, and what the persona fallback says.

The id is a slug of the name plus a short hash of what the character is (the
prompt fields), so the same card always gets the same id, whichever container
it came in. The fallback's words come from the card itself: phrases and
questions from the character's lines in the example dialogues, openers from the
greetings, the tone from ``personality``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import attrs

from .._cards import (
    DEFAULT_LIMITS,
    DEFAULT_USER,
    Card,
    CardLimits,
    CardPrompt,
    MacroContext,
    card_persona_id,
    expand_macros,
    greeting_for_session,
    read_card,
    render_card_prompt,
    split_examples,
)
from ._persona import LanguagePatterns, Persona

__all__ = ["CardPersona", "card_language_patterns", "card_to_persona", "load_card_persona"]

_ACTION = re.compile(r"\*[^*\n]{0,400}\*|_[^_\n]{0,400}_|\([^()\n]{0,400}\)")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")
_USER_MENTION = re.compile(r"\{\{\s*user\s*\}\}|<user>", re.IGNORECASE)
_SPEAKER = re.compile(r"^\s*([^:\n]{1,40}):\s*(.*)$")
_MAX_PHRASES, _MAX_CLOSERS, _MAX_OPENERS = 5, 3, 3


def _clean(text: str, card: Card) -> str:
    # Names in, user mentions kept for the filter, actions (*smiles*) out, one line.
    text = expand_macros(text, MacroContext(char=card.char_name, user="{{user}}"))
    return " ".join(_ACTION.sub(" ", text).replace('"', "").split())


def _sentences(text: str) -> list[str]:
    return [
        s.strip()
        for s in _SENTENCE.split(text)
        if 8 <= len(s.strip()) <= 140 and not _USER_MENTION.search(s) and "{{" not in s
    ]


def _character_lines(card: Card) -> list[str]:
    """What the character says in the example dialogues, one utterance per item."""
    names = {"{{char}}", "<bot>", "<char>", card.name.lower(), card.char_name.lower()}
    lines: list[str] = []
    for block in split_examples(card.mes_example):
        speaking = False
        for raw_line in block.splitlines():
            match = _SPEAKER.match(raw_line)
            if match:
                speaking = match.group(1).strip().lower() in names
                raw_line = match.group(2)
            if speaking and raw_line.strip():
                lines.append(_clean(raw_line, card))
    return lines


def _unique(items: Sequence[str], limit: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))[:limit]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def card_language_patterns(card: Card) -> LanguagePatterns:
    """How the character speaks, for the persona fallback and the plain persona prompt."""
    said = [s for line in _character_lines(card) for s in _sentences(line)]
    questions = [s for s in said if s.endswith("?")]
    return LanguagePatterns(
        common_phrases=_unique([s for s in said if not s.endswith("?")], _MAX_PHRASES),
        question_style=f'Asks in their own voice, e.g. "{questions[0]}"' if questions else "",
        reflection_style=f"Reflects back as someone {_short(_clean(card.personality, card), 120)}"
        if card.personality.strip()
        else "",
    )


def card_to_persona(card: Card) -> Persona:
    """The ``Persona`` for a card (what the store, the fallback and the plain prompt use)."""
    said = [s for line in _character_lines(card) for s in _sentences(line)]
    greeting_lines = [
        s for g in (card.first_mes, *card.alternate_greetings) for s in _sentences(_clean(g, card))[:1]
    ]
    persona_id = card_persona_id(card)
    slug = persona_id.rsplit("-", 1)[0]
    personality = _clean(card.personality, card)
    traits = [t.strip() for t in re.split(r"[,;]", personality) if t.strip()]
    description = _sentences(_clean(card.description, card))
    return Persona(
        id=persona_id,
        name=card.char_name,
        aliases=(slug,) if slug != "card" else (),
        description=_short(description[0], 200) if description else "",
        tone=_short(personality, 160),
        language_patterns=card_language_patterns(card),
        personality_traits=tuple(traits)
        if 2 <= len(traits) <= 12 and all(len(t) <= 30 for t in traits)
        else (),
        openers=_unique(greeting_lines, _MAX_OPENERS),
        closers=_unique([s for s in said if s.endswith("?")], _MAX_CLOSERS),
    )


@attrs.frozen
class CardPersona:
    """A card loaded as a persona: what a store keeps for each card file.

    Attributes:
        persona: The normalized persona (id, name, fallback words).
        card: The card, with its raw JSON for lossless export.
        path: The file it was read from, if any (its image is reused on PNG export).
    """

    persona: Persona
    card: Card
    path: Path | None = None

    @classmethod
    def from_card(cls, card: Card, path: Path | None = None) -> CardPersona:
        return cls(card_to_persona(card), card, path)

    def prompt(
        self,
        *,
        session_id: str = "",
        user: str = DEFAULT_USER,
        messages: Sequence[str] = (),
        seed: str = "",
        max_tokens: int | None = None,
        assistant_turns: int | None = None,
    ) -> CardPrompt:
        """The card's prompt for one message (see ``render_card_prompt`` for the arguments).

        For a runtime message: ``messages`` are the history's texts (user, assistant, ...) then the
        new message, ``assistant_turns`` the number of history turns, ``seed`` the message number.
        """
        return render_card_prompt(
            self.card,
            user=user,
            session_id=session_id,
            seed=seed,
            messages=messages,
            max_tokens=max_tokens,
            assistant_turns=assistant_turns,
        )

    def greeting(self, session_id: str, *, user: str = DEFAULT_USER) -> str:
        """The greeting that opens ``session_id`` (``first_mes``, macros expanded)."""
        return greeting_for_session(self.card, session_id, user=user)


def load_card_persona(path: str | Path, *, limits: CardLimits = DEFAULT_LIMITS) -> CardPersona:
    """Read a card file as a persona. Blocking: run it in a worker thread.

    Raises:
        CardError: The file is not a usable card.
    """
    file = Path(path)
    return CardPersona.from_card(read_card(file, limits=limits), file)
