"""Character cards (V1, V2, V3; JSON, PNG/APNG, CHARX): read, render and write them.

The public face of the card reader and writer that ``PersonaStore`` uses to load cards
beside persona files (see docs/personas.md)::

    from valis_actors.cards import read_card, card_to_json, card_to_png

    card = read_card("personas/mira.png")
    print(card.name, card_to_json(card))

Every failure is a ``valis_actors.CardError`` naming the file and the problem.
"""

from __future__ import annotations

from ._cards import (
    Card,
    CardLimits,
    card_persona_id,
    card_to_json,
    card_to_png,
    greeting_for_session,
    greetings,
    is_card_json,
    parse_card_bytes,
    read_card,
    render_card_prompt,
    render_lore,
    select_entries,
)

__all__ = [
    "Card",
    "CardLimits",
    "card_persona_id",
    "card_to_json",
    "card_to_png",
    "greeting_for_session",
    "greetings",
    "is_card_json",
    "parse_card_bytes",
    "read_card",
    "render_card_prompt",
    "render_lore",
    "select_entries",
]
