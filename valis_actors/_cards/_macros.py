"""Card macros ("curly braced syntaxes"): ``{{char}}``, ``{{user}}``, ``<BOT>``, ``{{random:...}}``, ...

Expansion is deterministic: ``{{pick:...}}`` is seeded by the session id (the same
choice for the whole session), ``{{random:...}}`` and ``{{roll:...}}`` by the session
id and ``MacroContext.seed`` (pass a message number to vary them per message).
Macros nest (``{{random:{{char}},{{user}}}}``); inner ones expand first, and the
replacement texts (names, choices) are never expanded again. Unknown macros stay
as written. Matching is case-insensitive, as the specs require.
"""

from __future__ import annotations

import random
import re

import attrs

__all__ = ["MacroContext", "expand_macros"]

_ANGLE = re.compile(r"<(bot|char|user)>", re.IGNORECASE)
_ROLL = re.compile(r"^\s*(?:(\d{1,3})?d)?(\d{1,9})\s*([+-]\s*\d{1,9})?\s*$", re.IGNORECASE)
_SPLIT_COMMA = re.compile(r"(?<!\\),")
_MAX_NESTING = 8
_MAX_DICE = 100


@attrs.frozen
class MacroContext:
    """What macros expand to.

    Attributes:
        char: ``{{char}}``/``<BOT>``: the card's nickname or name.
        user: ``{{user}}``/``<USER>``: the user's display name.
        session_id: Seeds ``{{pick}}`` (stable per session) and, with ``seed``, ``{{random}}``/``{{roll}}``.
        seed: Varies ``{{random}}`` and ``{{roll}}`` (for example the message number).
        original: What ``{{original}}`` becomes; None leaves it as written.
    """

    char: str
    user: str = "User"
    session_id: str = ""
    seed: str = ""
    original: str | None = None


class _Expander:
    def __init__(self, context: MacroContext) -> None:
        self.context = context
        self.count = 0  # occurrences so far: two {{random}} in one text choose independently

    def rng(self, kind: str, body: str, per_message: bool) -> random.Random:
        self.count += 1
        seed = self.context.seed if per_message else ""
        return random.Random(f"{kind}\0{self.context.session_id}\0{seed}\0{self.count}\0{body}")

    def literal(self, text: str) -> str:
        def name(match: re.Match[str]) -> str:
            return self.context.user if match.group(1).lower() == "user" else self.context.char

        return _ANGLE.sub(name, text)

    def expand(self, text: str, depth: int = 0) -> str:
        out: list[str] = []
        pos = 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                out.append(self.literal(text[pos:]))
                return "".join(out)
            end = _closing(text, start + 2)
            if end < 0 or depth >= _MAX_NESTING:
                out.append(self.literal(text[pos:]))
                return "".join(out)
            out.append(self.literal(text[pos:start]))
            raw_body = text[start + 2 : end]
            if raw_body.lstrip().startswith("//"):
                pos = end + 2  # a comment: its inside is not expanded at all
                continue
            out.append(self.evaluate(self.expand(raw_body, depth + 1)))
            pos = end + 2

    def evaluate(self, body: str) -> str:
        word = body.strip().lower()
        context = self.context
        if word == "char":
            return context.char
        if word == "user":
            return context.user
        if word == "original" and context.original is not None:
            return context.original
        name, colon, rest = body.partition(":")
        key = name.strip().lower()
        if colon and key in ("comment", "hidden_key"):
            return ""
        if colon and key == "reverse":
            return rest[::-1]
        if colon and key in ("random", "pick"):
            options = _options(rest)
            return self.rng(key, rest, key == "random").choice(options) if options else ""
        if colon and key == "roll":
            rolled = self.roll(rest)
            if rolled is not None:
                return rolled
        return "{{" + body + "}}"

    def roll(self, spec: str) -> str | None:
        match = _ROLL.match(spec)
        if match is None:
            return None
        dice, sides = int(match.group(1) or 1), int(match.group(2))
        if sides < 1 or not 1 <= dice <= _MAX_DICE:
            return None
        rng = self.rng("roll", spec, True)
        bonus = int(match.group(3).replace(" ", "")) if match.group(3) else 0
        return str(sum(rng.randint(1, sides) for _ in range(dice)) + bonus)


def _closing(text: str, pos: int) -> int:
    """The index of the ``}}`` closing a macro whose body starts at ``pos``, or -1.

    Linear in the text: each search starts where the previous one stopped.
    """
    level = 0
    closing = text.find("}}", pos)
    while closing >= 0:
        opening = text.find("{{", pos, closing)
        if opening >= 0:
            level += 1
            pos = opening + 2
            continue
        if level == 0:
            return closing
        level -= 1
        pos = closing + 2
        closing = text.find("}}", pos)
    return -1


def _options(rest: str) -> list[str]:
    rest = rest.removeprefix(":")  # {{random::a::b}} or {{pick::a,b}}
    parts = rest.split("::") if "::" in rest else _SPLIT_COMMA.split(rest)
    return [part.replace("\\,", ",").strip() for part in parts]


def expand_macros(text: str, context: MacroContext) -> str:
    """``text`` with every known macro expanded (see the module docstring)."""
    if "{{" not in text and "<" not in text:
        return text
    return _Expander(context).expand(text)
