"""Personas: the data, the folder they load from, character cards, the system prompt, and the fallback.

``_persona`` is the schema (parsing one file, ids, the system prompt); ``_card`` maps a
character card (``valis_actors._cards``) to a persona; ``_store`` loads a folder of both
and looks them up; ``_fallback`` is the persona-aware provider that answers when no LLM can.
"""

from ._card import CardPersona as CardPersona
from ._card import card_language_patterns as card_language_patterns
from ._card import card_to_persona as card_to_persona
from ._card import load_card_persona as load_card_persona
from ._persona import NEUTRAL as NEUTRAL
from ._persona import PERSONA_ID_PATTERN as PERSONA_ID_PATTERN
from ._persona import LanguagePatterns as LanguagePatterns
from ._persona import Persona as Persona
from ._persona import check_persona_id as check_persona_id
from ._persona import parse_persona as parse_persona
from ._persona import render_system_prompt as render_system_prompt
from ._store import PersonaStore as PersonaStore
from ._store import builtin_personas_dir as builtin_personas_dir

__all__ = [
    "NEUTRAL",
    "PERSONA_ID_PATTERN",
    "CardPersona",
    "LanguagePatterns",
    "Persona",
    "PersonaStore",
    "builtin_personas_dir",
    "card_language_patterns",
    "card_to_persona",
    "check_persona_id",
    "load_card_persona",
    "parse_persona",
    "render_system_prompt",
]
