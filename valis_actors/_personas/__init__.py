"""Personas: the data, the folder they load from, the system prompt, and the local fallback.

``_store`` parses persona files and holds them (ids, aliases, the neutral persona);
``_fallback`` is the persona-aware provider that answers when no LLM can.
"""

from ._store import NEUTRAL as NEUTRAL
from ._store import LanguagePatterns as LanguagePatterns
from ._store import Persona as Persona
from ._store import PersonaStore as PersonaStore
from ._store import builtin_personas_dir as builtin_personas_dir
from ._store import check_persona_id as check_persona_id
from ._store import parse_persona as parse_persona
from ._store import render_system_prompt as render_system_prompt

__all__ = [
    "NEUTRAL",
    "LanguagePatterns",
    "Persona",
    "PersonaStore",
    "builtin_personas_dir",
    "check_persona_id",
    "parse_persona",
    "render_system_prompt",
]
