"""The persona fallback: a local provider that never fails.

It builds the reply from the persona's own metadata, shaped by the kind of message:

- a greeting (``hi``, ``hello there``) gets a greeting: one of the persona's openers that
  is itself a greeting, or an introduction from its name and description, and an offer
  of its specialties; the message is not quoted back;
- a problem (``my manager ignores me``) gets one of its openers, the message quoted, one
  of its common phrases, its approach and a closing question;
- a question, or anything else, gets the same minus the sympathetic openers
  (``I'm sorry you're dealing with this`` answers a complaint, not a question).

With earlier turns it says so, quoting the *previous* user turn (never the current
message as "earlier"). Every sentence ends with exactly one mark: a quote that ends in
``?`` is not followed by another ``.``. The choice of lines is a pure function of the
inputs (persona, message, previous turn), so Sam never answers with Jane's words and the
same message gets the same reply, which keeps tests deterministic.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import AsyncIterator, Sequence

from .._messages import ProviderRequest, ProviderResponse, Usage
from ..providers._base import BaseProvider, register_provider
from ._persona import NEUTRAL, Persona

__all__ = ["MessageKind", "PersonaFallback", "fallback_text", "message_kind"]

MODEL_NAME = "persona-fallback"
_QUOTE_CHARS = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_WORD = re.compile(r"[a-z']+")
# What ends a sentence; a closing quote or bracket may follow it.
_TERMINAL = re.compile(r"[.!?…][\"')\]]*$")

_GREETINGS = frozenset({
    "hi", "hello", "hey", "hiya", "howdy", "greetings", "yo", "heya", "hallo", "hola", "bonjour", "morning",
    "evening", "afternoon", "good", "sup",
})
_GREETING_WORDS = 6  # "hi jane, how are you today" is still a greeting; a longer message says more
_QUESTION_STARTS = frozenset({
    "what", "how", "why", "when", "where", "who", "whom", "whose", "which", "can", "could", "should",
    "would", "will", "shall", "may", "might", "is", "are", "am", "was", "were", "do", "does", "did",
    "have", "has", "any", "anything",
})
_PROBLEM_WORDS = frozenset({
    "problem", "problems", "issue", "issues", "conflict", "stuck", "struggle", "struggling", "worried",
    "worry", "stress", "stressed", "stressful", "anxious", "anxiety", "upset", "angry", "frustrated",
    "frustrating", "unfair", "hard", "difficult", "can't", "cannot", "won't", "broke", "broken", "fail",
    "failed", "failing", "lost", "hate", "ignores", "ignored", "ignoring", "bullied", "bullying", "sad",
    "tired", "overwhelmed", "complain", "complaint", "wrong", "fired", "burnout", "burned", "lonely",
    "scared", "afraid", "procrastinating", "procrastinate", "behind", "mess", "crisis", "hurt", "blame",
})
# An opener that condoles or presumes a difficulty only answers a problem.
_SYMPATHY_WORDS = ("sorry", "hard", "difficult", "weigh", "tough", "dealing with", "sounds like", "must be")
_GREETING_OPENER = re.compile(
    r"^(hello|hi|hey|welcome|good (morning|afternoon|evening|to see you)|greetings)\b", re.IGNORECASE
)


class MessageKind(enum.Enum):
    """What a message is, as far as the fallback can tell without a model."""

    GREETING = "greeting"
    PROBLEM = "problem"
    QUESTION = "question"
    OTHER = "other"


def message_kind(message: str) -> MessageKind:
    """Greeting, problem, question or other; English keywords, deterministic."""
    text = message.strip().lower()
    words = _WORD.findall(text)
    problem = bool(_PROBLEM_WORDS & set(words))
    # "good" greets only as "good morning"; "good luck" is not a greeting.
    greets = bool(words) and words[0] in _GREETINGS
    if greets and words[0] == "good":
        greets = words[1:2] in (["morning"], ["afternoon"], ["evening"], ["day"])
    if greets and len(words) <= _GREETING_WORDS and not problem:
        return MessageKind.GREETING
    if problem:
        return MessageKind.PROBLEM
    if text.endswith("?") or (words and words[0] in _QUESTION_STARTS):
        return MessageKind.QUESTION
    return MessageKind.OTHER


def _pick(options: Sequence[str], seed: bytes, salt: str) -> str:
    digest = hashlib.blake2b(seed + salt.encode(), digest_size=4).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def _quote(message: str) -> str:
    """A short, single-line, safe echo of the user's message."""
    text = " ".join(_CONTROL.sub(" ", message).split())
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 1].rstrip() + "…"
    return text.replace('"', "'")


def _quoted(prefix: str, message: str) -> str:
    """``prefix "message".``, or ``prefix "message?"`` when the quote already ends the sentence."""
    quote = _quote(message)
    return f'{prefix} "{quote}"' + ("" if _TERMINAL.search(quote) else ".")


def _sentence(text: str) -> str:
    """``text`` stripped, ending with one terminal mark (a persona line may lack one)."""
    text = " ".join(text.split())
    if not text or _TERMINAL.search(text):
        return text
    return text.rstrip(",;:—-– ") + "."


def _sympathetic(line: str) -> bool:
    lowered = line.lower()
    return any(word in lowered for word in _SYMPATHY_WORDS)


def _introduction(persona: Persona) -> str:
    """``I'm Jane, an HR business partner who ...``: the description when it reads as a role."""
    description = " ".join(persona.description.split()).rstrip(".")
    first = description.split(" ", 1)[0].lower() if description else ""
    if first in {"a", "an", "the"}:
        return f"I'm {persona.name}, {description[0].lower()}{description[1:]}."
    return f"I'm {persona.name}."


def _offer(persona: Persona) -> str:
    topics = [t for t in (persona.specialties or persona.expertise_areas) if t.strip()][:2]
    if not topics:
        return "What would you like to talk about?"
    return f"What would you like to talk about: {', '.join(' '.join(t.split()) for t in topics)}, or something else?"


def _greeting(persona: Persona, seed: bytes, previous: str | None, continuing: bool) -> list[str]:
    openers = [o for o in persona.openers if _GREETING_OPENER.match(o.strip())]
    parts: list[str] = []
    if openers:
        opener = _pick(openers, seed, "opener")
        parts.append(opener.replace("{name}", persona.name))
        if "{name}" not in opener:
            parts.append(_introduction(persona))
    else:
        parts.append("Hello.")
        parts.append(_introduction(persona))
    if previous is not None:
        parts.append(_quoted("Good to see you again; in our earlier conversation you wrote", previous))
    elif continuing:
        parts.append("Good to see you again after our earlier conversation.")
    parts.append(_offer(persona))
    return parts


def fallback_text(
    persona: Persona, message: str, *, continuing: bool = False, previous: str | None = None
) -> str:
    """The fallback reply for ``message`` as ``persona``: never empty, deterministic.

    Args:
        continuing: There are earlier turns in this conversation.
        previous: The user's previous message (the last earlier turn), quoted as the
            earlier conversation; implies ``continuing``.
    """
    seed = f"{persona.id}\x00{message}\x00{previous or ''}".encode()
    kind = message_kind(message)
    if kind is MessageKind.GREETING:
        parts = _greeting(persona, seed, previous, continuing)
    else:
        openers = [o for o in persona.openers if o.strip()] or list(NEUTRAL.openers)
        if kind is not MessageKind.PROBLEM:
            openers = [o for o in openers if not _sympathetic(o)] or list(NEUTRAL.openers)
        phrases = persona.common_phrases or NEUTRAL.common_phrases
        closers = persona.closers or NEUTRAL.closers
        parts = [_pick(openers, seed, "opener").replace("{name}", persona.name)]
        if previous is not None:
            parts.append(_quoted("Picking up from our earlier conversation, where you wrote", previous))
        elif continuing:
            parts.append("Picking up from our earlier conversation.")
        parts.append(_quoted("You asked:" if kind is MessageKind.QUESTION else "You wrote:", message))
        parts.append(_pick(phrases, seed, "phrase"))
        if persona.approach:
            parts.append(persona.approach)
        parts.append(_pick(closers, seed, "closer"))
    return " ".join(s for s in (_sentence(p) for p in parts) if s)


def _text(request: ProviderRequest) -> str:
    previous = request.history[-1].user if request.history else None
    return fallback_text(request.persona, request.message, continuing=bool(request.history), previous=previous)


@register_provider("persona_fallback", aliases=("hardcoded_fallback", "fallback"))
class PersonaFallback(BaseProvider):
    """Answers locally from the persona's metadata; never raises, never waits."""

    local = True

    async def get_response(self, request: ProviderRequest) -> ProviderResponse:
        return ProviderResponse(text=_text(request), model=MODEL_NAME, usage=Usage(0, 0))

    def stream_response(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        return _stream_sentences(_text(request))


async def _stream_sentences(text: str) -> AsyncIterator[str | ProviderResponse]:
    # Sentence-sized chunks: the fallback streams like any provider, without delays.
    sentences = re.split(r"(?<=[.!?…])\s+", text)
    for index, sentence in enumerate(sentences):
        yield sentence if index == len(sentences) - 1 else sentence + " "
    yield ProviderResponse(text=text, model=MODEL_NAME, usage=Usage(0, 0))
