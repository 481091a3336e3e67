"""Character cards (V1, V2 ``chara_card_v2``, V3 ``chara_card_v3``) as VALIS personas.

Self-contained: standard library and attrs only; it knows the card formats, not
VALIS personas (``valis_actors._personas`` maps a card to a ``Persona`` and loads
card files beside persona files). The surface:

- Loading: ``read_card(path)`` / ``parse_card_bytes(data, source)`` -> ``Card``;
  ``read_card_bytes`` + ``decode_card_json`` read a file under the caps;
  ``is_card_json(obj)`` tells a card ``.json`` from a VALIS persona file;
  ``card_persona_id(card)`` is its stable persona id; ``CARD_SUFFIXES`` lists the file kinds.
- Per message: ``render_card_prompt(card, ...)`` -> ``CardPrompt(system, post_history, ...)``.
- Greetings: ``greeting_for_session(card, session_id, user=)``, ``greetings(card)``.
- Lorebook: ``select_entries(book, messages)``, ``render_lore(book, messages)``.
- Export: ``card_to_json(card)``, ``card_to_png(card, image)``.
- CLI: ``import_cards``, ``export_card``, ``show_card``.

Every failure is a ``CardError`` (a ``PersonaError``, in ``valis_actors._errors``) naming the file.
"""

from __future__ import annotations

from ._card import Card as Card
from ._card import card_persona_id as card_persona_id
from ._card import is_card_json as is_card_json
from ._commands import CARD_SUFFIXES as CARD_SUFFIXES
from ._commands import ImportResult as ImportResult
from ._commands import export_card as export_card
from ._commands import import_cards as import_cards
from ._commands import show_card as show_card
from ._error import CardError as CardError
from ._limits import DEFAULT_LIMITS as DEFAULT_LIMITS
from ._limits import CardLimits as CardLimits
from ._lorebook import Lorebook as Lorebook
from ._lorebook import LoreEntry as LoreEntry
from ._lorebook import estimate_tokens as estimate_tokens
from ._lorebook import render_lore as render_lore
from ._lorebook import select_entries as select_entries
from ._macros import MacroContext as MacroContext
from ._macros import expand_macros as expand_macros
from ._prompt import DEFAULT_SYSTEM_PROMPT as DEFAULT_SYSTEM_PROMPT
from ._prompt import DEFAULT_USER as DEFAULT_USER
from ._prompt import CardPrompt as CardPrompt
from ._prompt import greeting_for_session as greeting_for_session
from ._prompt import greetings as greetings
from ._prompt import render_card_prompt as render_card_prompt
from ._prompt import split_examples as split_examples
from ._read import decode_card_json as decode_card_json
from ._read import parse_card_bytes as parse_card_bytes
from ._read import read_card as read_card
from ._read import read_card_bytes as read_card_bytes
from ._write import card_to_json as card_to_json
from ._write import card_to_png as card_to_png

__all__ = [
    "CARD_SUFFIXES",
    "DEFAULT_LIMITS",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_USER",
    "Card",
    "CardError",
    "CardLimits",
    "CardPrompt",
    "ImportResult",
    "LoreEntry",
    "Lorebook",
    "MacroContext",
    "card_persona_id",
    "card_to_json",
    "card_to_png",
    "decode_card_json",
    "estimate_tokens",
    "expand_macros",
    "export_card",
    "greeting_for_session",
    "greetings",
    "import_cards",
    "is_card_json",
    "parse_card_bytes",
    "read_card",
    "read_card_bytes",
    "render_card_prompt",
    "render_lore",
    "select_entries",
    "show_card",
    "split_examples",
]
