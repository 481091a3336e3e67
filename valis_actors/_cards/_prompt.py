"""The prompt a card gives the model, and its greetings.

The order is SillyTavern's default: the card's ``system_prompt`` (``{{original}}``
expands to VALIS's default; empty means the default), lorebook entries placed
before the character, ``description``, ``personality``, ``scenario``, entries placed
after the character, the example dialogues (pruned first when over budget), then
the history (sent by the provider as messages), then ``post_history_instructions``.
``creator_notes``, ``tags``, ``creator`` and ``character_version`` never reach a prompt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import attrs

from ._card import Card
from ._lorebook import estimate_tokens, select_entries
from ._macros import MacroContext, expand_macros

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_USER",
    "CardPrompt",
    "greeting_for_session",
    "greetings",
    "render_card_prompt",
    "split_examples",
]

DEFAULT_USER = "User"
DEFAULT_SYSTEM_PROMPT = (
    "Write {{char}}'s next reply in a fictional chat between {{char}} and {{user}}. "
    "Stay in character and answer in the user's language."
)
HISTORY_MARKER = "[the conversation so far goes here]"
_START = re.compile(r"^\s*<START>\s*$", re.IGNORECASE | re.MULTILINE)


@attrs.frozen
class CardPrompt:
    """A rendered card prompt.

    Attributes:
        system: Everything before the history: send it as the system prompt.
        post_history: What goes after the history (``""`` when none): a final system message,
            or appended to ``system`` by providers that take one system text.
        examples_dropped: Example dialogues pruned to fit ``max_tokens``.
        lore: The lorebook entries inserted (expanded), in insertion order, wherever each was placed.
    """

    system: str
    post_history: str = ""
    examples_dropped: int = 0
    lore: tuple[str, ...] = ()

    def text(self) -> str:
        """The whole prompt as one text, with a marker where the history goes (for ``valis personas show``)."""
        parts = [self.system, HISTORY_MARKER]
        if self.post_history:
            parts.append(self.post_history)
        return "\n\n".join(parts)


def split_examples(mes_example: str) -> tuple[str, ...]:
    """The example dialogues of ``mes_example``, split at ``<START>`` lines; empty ones dropped."""
    return tuple(block.strip() for block in _START.split(mes_example) if block.strip())


def _context(card: Card, user: str, session_id: str, seed: str, original: str | None = None) -> MacroContext:
    return MacroContext(
        char=card.char_name, user=user or DEFAULT_USER, session_id=session_id, seed=seed, original=original
    )


def render_card_prompt(
    card: Card,
    *,
    user: str = DEFAULT_USER,
    session_id: str = "",
    seed: str = "",
    messages: Sequence[str] = (),
    default_system: str = DEFAULT_SYSTEM_PROMPT,
    default_post_history: str = "",
    max_tokens: int | None = None,
    lore_budget: int | None = None,
    count_tokens: Callable[[str], int] = estimate_tokens,
    assistant_turns: int | None = None,
) -> CardPrompt:
    """Render ``card`` for one model call. Pure: the same arguments give the same prompt.

    Args:
        card: The card.
        user: The user's display name (``{{user}}``).
        session_id: Seeds ``{{pick}}`` (stable per session) and ``{{random}}``/``{{roll}}``.
        seed: Varies ``{{random}}``/``{{roll}}`` between messages (for example the message number).
        messages: Recent message texts, oldest first, the new user message last: what the lorebook scans.
        default_system: What an empty ``system_prompt`` or ``{{original}}`` stands for.
        default_post_history: What an empty ``post_history_instructions`` or its ``{{original}}`` stands for.
        max_tokens: Budget for ``system`` + ``post_history``; example dialogues are dropped (last first) to fit.
        lore_budget: Overrides the lorebook's ``token_budget``.
        count_tokens: Token counter for both budgets.
        assistant_turns: Character messages so far (for ``@@activate_only_after``/``_every``).
    """
    plain = _context(card, user, session_id, seed)

    def expand(text: str) -> str:
        return expand_macros(text, plain).strip()

    system = expand_macros(
        card.system_prompt.strip() or "{{original}}",
        _context(card, user, session_id, seed, expand(default_system)),
    ).strip()
    post = expand_macros(
        card.post_history_instructions.strip() or "{{original}}",
        _context(card, user, session_id, seed, expand(default_post_history)),
    ).strip()
    entries = (
        ()
        if card.book is None
        else select_entries(
            card.book,
            messages,
            token_budget=lore_budget,
            count_tokens=count_tokens,
            assistant_turns=assistant_turns,
        )
    )
    lore = [(entry.placement, expand(entry.content)) for entry in entries]
    placed: dict[str, list[str]] = {}
    for placement, content in lore:
        if content:  # a macro-only entry can expand to nothing
            placed.setdefault(placement, []).append(content)
    char = card.char_name
    blocks = [system, *placed.get("before_char", ())]
    if card.description.strip():
        blocks.append(expand(card.description))
    blocks.extend(placed.get("after_desc", ()))
    if card.personality.strip():
        blocks.append(f"{char}'s personality: {expand(card.personality)}")
    blocks.extend(placed.get("personality", ()))
    if card.scenario.strip():
        blocks.append(f"Scenario: {expand(card.scenario)}")
    blocks.extend(placed.get("scenario", ()))
    blocks.extend(placed.get("after_char", ()))
    head = "\n\n".join(b for b in blocks if b)
    examples = [expand(block) for block in split_examples(card.mes_example)]
    dropped = 0

    def assemble() -> str:
        if not examples:
            return head
        shown = "\n\n".join(f"<example>\n{block}\n</example>" for block in examples)
        return f"{head}\n\nExample dialogues (how {char} speaks; not part of this conversation):\n{shown}"

    text = assemble()
    while max_tokens is not None and examples and count_tokens(text) + count_tokens(post) > max_tokens:
        examples.pop()  # the examples are pruned first, from the last one
        dropped += 1
        text = assemble()
    return CardPrompt(
        system=text,
        post_history=post,
        examples_dropped=dropped,
        lore=tuple(content for _, content in lore if content),
    )


def greetings(card: Card) -> tuple[str, ...]:
    """The card's greetings as written: ``first_mes`` then ``alternate_greetings`` (empty ones left out)."""
    return tuple(g for g in (card.first_mes, *card.alternate_greetings) if g.strip())


def greeting_for_session(
    card: Card, session_id: str, *, user: str = DEFAULT_USER, index: int | None = 0
) -> str:
    """The greeting that opens a new session, macros expanded; ``""`` when the card has none.

    Args:
        card: The card.
        session_id: The session; seeds the macros (and the choice when ``index`` is None).
        user: The user's display name.
        index: 0 for ``first_mes``, n for the n-th alternate greeting (clamped), None to pick one
            per session (stable: the same session always gets the same greeting).
    """
    options = greetings(card)
    if not options:
        return ""
    if index is None:
        digest = hashlib.blake2b(f"greeting\0{session_id}".encode(), digest_size=4).digest()
        chosen = options[int.from_bytes(digest, "big") % len(options)]
    else:
        chosen = options[max(0, min(index, len(options) - 1))]
    return expand_macros(chosen, _context(card, user, session_id, "greeting")).strip()
