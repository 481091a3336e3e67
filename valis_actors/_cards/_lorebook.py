"""The lorebook (``character_book``): parsing entries and choosing which reach the prompt.

Selection is a pure function of the book and the recent messages
(``select_entries``): keys (plain or regex) and, for ``selective`` entries, secondary
keys are searched in the last ``scan_depth`` messages; ``constant`` entries always
match; disabled or empty entries never do; the token budget drops the lowest
``priority`` first (entries without one before those with one, then the lowest
``insertion_order``); the survivors are ordered by ``insertion_order``.

V3 decorators (``@@name value`` lines at the top of ``content``) are parsed and
stripped. Honoured: ``@@activate``, ``@@dont_activate``, ``@@scan_depth``,
``@@additional_keys``, ``@@exclude_keys``, ``@@activate_only_after``,
``@@activate_only_every``, ``@@position``, ``@@ignore_on_max_context``. Others are
recognized but have no effect here (``@@depth``, ``@@role``, ...), and unknown
ones fall through to their ``@@@`` fallbacks or are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ._decorators import parse_decorators
from ._error import CardError
from ._keys import ScanText, any_key

__all__ = [
    "DEFAULT_SCAN_DEPTH",
    "LoreEntry",
    "Lorebook",
    "estimate_tokens",
    "parse_book",
    "render_lore",
    "select_entries",
]

DEFAULT_SCAN_DEPTH = 2  # SillyTavern's default when a book does not say
_RECURSION_ROUNDS = 3
_PLACEMENTS = {
    "before_char": "before_char",
    "after_char": "after_char",
    "before_desc": "before_char",
    "after_desc": "after_desc",
    "personality": "personality",
    "scenario": "scenario",
}


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about four characters per token."""
    return (len(text) + 3) // 4


@attrs.frozen
class LoreEntry:
    """One lorebook entry, normalized; ``content`` has its decorators stripped."""

    index: int
    keys: tuple[str, ...] = ()
    content: str = ""
    secondary_keys: tuple[str, ...] = ()
    selective: bool = False
    constant: bool = False
    enabled: bool = True
    case_sensitive: bool = False
    use_regex: bool = False
    insertion_order: float = 0.0
    priority: float | None = None
    position: str = "before_char"
    decorators: Mapping[str, str] = attrs.field(factory=dict, eq=False)

    @property
    def placement(self) -> str:
        """Where the content goes: ``before_char``, ``after_desc``, ``personality``, ``scenario``, ``after_char``."""
        wanted = self.decorators.get("position", "").strip().lower() or self.position
        return _PLACEMENTS.get(wanted, "before_char")


@attrs.frozen
class Lorebook:
    """A card's lorebook; ``entries`` keep the file's order."""

    entries: tuple[LoreEntry, ...] = ()
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False


def _bool(value: object, default: bool, source: str, path: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise CardError(source, f"{path} must be true or false (got {type(value).__name__})")
    return value


def _number(value: object, source: str, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CardError(source, f"{path} must be a number (got {type(value).__name__})")
    return float(value) if math.isfinite(value) else None


def _strings(value: object, source: str, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # V3 allows "a,b,c" for secondary keys
        return tuple(k.strip() for k in value.split(",") if k.strip())
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise CardError(source, f"{path} must be a list of strings")
    return tuple(value)


def _entry(obj: object, index: int, source: str, path: str) -> LoreEntry:
    if not isinstance(obj, dict):
        raise CardError(source, f"{path} must be an object (got {type(obj).__name__})")
    content = obj.get("content")
    if content is not None and not isinstance(content, str):
        raise CardError(source, f"{path}.content must be a string (got {type(content).__name__})")
    decorators, text = parse_decorators(content or "")
    position = obj.get("position")
    return LoreEntry(
        index=index,
        keys=_strings(obj.get("keys"), source, f"{path}.keys"),
        content=text,
        secondary_keys=_strings(obj.get("secondary_keys"), source, f"{path}.secondary_keys"),
        selective=_bool(obj.get("selective"), False, source, f"{path}.selective"),
        constant=_bool(obj.get("constant"), False, source, f"{path}.constant"),
        enabled=_bool(obj.get("enabled"), True, source, f"{path}.enabled"),
        case_sensitive=_bool(obj.get("case_sensitive"), False, source, f"{path}.case_sensitive"),
        use_regex=_bool(obj.get("use_regex"), False, source, f"{path}.use_regex"),
        insertion_order=_number(obj.get("insertion_order"), source, f"{path}.insertion_order") or 0.0,
        priority=_number(obj.get("priority"), source, f"{path}.priority"),
        position=position if isinstance(position, str) else "before_char",
        decorators=decorators,
    )


def parse_book(obj: object, source: str, path: str) -> Lorebook:
    """Build a ``Lorebook`` from a ``character_book`` object.

    Raises:
        CardError: A field has the wrong type; the message names its path.
    """
    if not isinstance(obj, dict):
        raise CardError(source, f"{path} must be an object (got {type(obj).__name__})")
    entries = obj.get("entries") or []
    if not isinstance(entries, list):
        raise CardError(source, f"{path}.entries must be a list (got {type(entries).__name__})")
    depth = _number(obj.get("scan_depth"), source, f"{path}.scan_depth")
    budget = _number(obj.get("token_budget"), source, f"{path}.token_budget")
    return Lorebook(
        entries=tuple(_entry(e, i, source, f"{path}.entries[{i}]") for i, e in enumerate(entries)),
        scan_depth=None if depth is None else max(0, min(int(depth), 10_000)),
        token_budget=None if budget is None or budget <= 0 else int(min(budget, 1e12)),
        recursive_scanning=_bool(obj.get("recursive_scanning"), False, source, f"{path}.recursive_scanning"),
    )


def _any(keys: Sequence[str], scan: ScanText, entry: LoreEntry) -> bool:
    return any_key(keys, scan, use_regex=entry.use_regex, case_sensitive=entry.case_sensitive)


def _int_decorator(entry: LoreEntry, name: str) -> int | None:
    try:
        return int(entry.decorators[name])
    except (KeyError, ValueError):
        return None


def _activated(entry: LoreEntry, window: ScanText, turns: int | None) -> bool:
    deco = entry.decorators
    if "activate" in deco:
        return True
    if "dont_activate" in deco:
        return False
    after, every = _int_decorator(entry, "activate_only_after"), _int_decorator(entry, "activate_only_every")
    if turns is not None and ((after is not None and turns < after) or (every and turns % every)):
        return False
    if entry.constant:
        return True
    if not _any(entry.keys, window, entry):
        return False
    if entry.selective and entry.secondary_keys and not _any(entry.secondary_keys, window, entry):
        return False
    extra = [k.strip() for k in deco.get("additional_keys", "").split(",") if k.strip()]
    if extra and not _any(extra, window, entry):
        return False
    excluded = [k.strip() for k in deco.get("exclude_keys", "").split(",") if k.strip()]
    return not (excluded and _any(excluded, window, entry))


def select_entries(
    book: Lorebook,
    messages: Sequence[str],
    *,
    token_budget: int | None = None,
    count_tokens: Callable[[str], int] = estimate_tokens,
    assistant_turns: int | None = None,
) -> tuple[LoreEntry, ...]:
    """The entries of ``book`` that the recent ``messages`` (oldest first) activate, in prompt order.

    Args:
        book: The lorebook.
        messages: Recent message texts, oldest first (user and character alike).
        token_budget: Overrides the book's ``token_budget``; None keeps the book's (unbounded if unset).
        count_tokens: Token counter for the budget.
        assistant_turns: Character messages so far, for ``@@activate_only_after``/``_every`` (None: ignore them).
    """
    default_depth = DEFAULT_SCAN_DEPTH if book.scan_depth is None else book.scan_depth
    candidates = [e for e in book.entries if e.enabled and e.content.strip()]
    active: dict[int, LoreEntry] = {}
    extra = ""
    for _ in range(_RECURSION_ROUNDS if book.recursive_scanning else 1):
        added = False
        windows: dict[int, ScanText] = {}  # one text (and one case-folded copy) per scan depth
        for entry in candidates:
            if entry.index in active:
                continue
            depth = _int_decorator(entry, "scan_depth")
            depth = default_depth if depth is None else max(0, depth)
            window = windows.get(depth)
            if window is None:
                recent = messages[len(messages) - depth :] if depth else ()
                window = windows[depth] = ScanText("\n".join(recent) + extra)
            if _activated(entry, window, assistant_turns):
                active[entry.index] = entry
                added = True
        if not added:
            break
        extra = "\n" + "\n".join(e.content for e in active.values())
    budget = book.token_budget if token_budget is None else token_budget
    chosen = list(active.values())
    if budget is not None and budget > 0:
        ranked = sorted(
            chosen,
            key=lambda e: (
                "ignore_on_max_context" not in e.decorators,
                e.priority is not None,
                e.priority or 0.0,
                e.insertion_order,
                -e.index,
            ),
            reverse=True,
        )
        kept, used = [], 0
        for entry in ranked:  # keep the best prefix that fits: the lowest-ranked are dropped first
            used += count_tokens(entry.content)
            if used > budget:
                break
            kept.append(entry)
        chosen = kept
    return tuple(sorted(chosen, key=lambda e: (e.insertion_order, e.index)))


def render_lore(book: Lorebook, messages: Sequence[str], **options: Any) -> str:
    """The selected entries' contents joined by newlines (see ``select_entries`` for ``options``)."""
    return "\n".join(e.content for e in select_entries(book, messages, **options))
