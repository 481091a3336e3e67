"""The persona fallback: a local provider that never fails.

It builds the reply from the persona's own metadata (an opener in its tone, a
short, safe reference to what the user asked, one of its common phrases, its
approach, a closing question), so Sam never answers with Jane's words. The
choice of lines is a pure function of the inputs: the same message gets the
same reply, which keeps tests deterministic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence

from .._messages import ProviderRequest, ProviderResponse, Usage
from ..providers._base import BaseProvider, register_provider
from ._persona import NEUTRAL, Persona

__all__ = ["PersonaFallback", "fallback_text"]

MODEL_NAME = "persona-fallback"
_QUOTE_CHARS = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def _pick(options: Sequence[str], seed: bytes, salt: str) -> str:
    digest = hashlib.blake2b(seed + salt.encode(), digest_size=4).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def _quote(message: str) -> str:
    """A short, single-line, safe echo of the user's message."""
    text = " ".join(_CONTROL.sub(" ", message).split())
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 1].rstrip() + "…"
    return text.replace('"', "'")


def fallback_text(persona: Persona, message: str, *, continuing: bool = False) -> str:
    """The fallback reply for ``message`` as ``persona``: never empty, deterministic."""
    seed = f"{persona.id}\x00{message}".encode()
    openers = persona.openers or NEUTRAL.openers
    phrases = persona.common_phrases or NEUTRAL.common_phrases
    closers = persona.closers or NEUTRAL.closers
    opener = _pick(openers, seed, "opener").replace("{name}", persona.name)
    parts = [opener]
    if continuing:
        parts.append("Picking up from our earlier conversation:")
    parts.append(f'You asked about "{_quote(message)}".')
    parts.append(_pick(phrases, seed, "phrase"))
    if persona.approach:
        parts.append(persona.approach)
    parts.append(_pick(closers, seed, "closer"))
    return " ".join(p.strip() for p in parts if p.strip())


@register_provider("persona_fallback", aliases=("hardcoded_fallback", "fallback"))
class PersonaFallback(BaseProvider):
    """Answers locally from the persona's metadata; never raises, never waits."""

    local = True

    async def get_response(self, request: ProviderRequest) -> ProviderResponse:
        text = fallback_text(request.persona, request.message, continuing=bool(request.history))
        return ProviderResponse(text=text, model=MODEL_NAME, usage=Usage(0, 0))

    def stream_response(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        return _stream_sentences(fallback_text(request.persona, request.message, continuing=bool(request.history)))


async def _stream_sentences(text: str) -> AsyncIterator[str | ProviderResponse]:
    # Sentence-sized chunks: the fallback streams like any provider, without delays.
    sentences = re.split(r"(?<=[.!?…])\s+", text)
    for index, sentence in enumerate(sentences):
        yield sentence if index == len(sentences) - 1 else sentence + " "
    yield ProviderResponse(text=text, model=MODEL_NAME, usage=Usage(0, 0))
