"""How the CLI shows a reply: the footer line and the ``--json`` form.

When the persona fallback answered, both say so plainly, and how to get an LLM's
answer: one fix per provider that did not answer, read from the reply's attempts
(the outcome and the reason our providers wrote), never guessed from the config.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from .._messages import Attempt, AttemptOutcome, Reply

__all__ = ["Why", "describe", "how_to_get_an_llm", "reply_json", "why_fallback"]

# The reasons our providers give (providers/_http.py, _common.py), read back for the fix.
_KEY_NOT_SET = re.compile(r"([A-Z][A-Z0-9_]*) not set")
_CANNOT_CONNECT = re.compile(r"cannot connect to (\S+) \((.*)\) — ")
_CHECK_KEY = re.compile(r"; check ([A-Z][A-Z0-9_]*)\b")


@attrs.frozen
class Why:
    """Why one provider did not answer, and what would let it.

    Attributes:
        provider: The config entry's name.
        outcome: How its last attempt for the message ended.
        reason: What it said (secrets redacted).
        fix: What to do about it (``set OPENAI_API_KEY``), when the reason says.
    """

    provider: str
    outcome: str
    reason: str
    fix: str | None


def _fix(attempt: Attempt) -> str | None:
    error = attempt.error or ""
    if attempt.outcome is AttemptOutcome.UNAVAILABLE:
        key = _KEY_NOT_SET.fullmatch(error)
        return f"set {key.group(1)}" if key else None
    if attempt.outcome is AttemptOutcome.UNREACHABLE:
        connect = _CANNOT_CONNECT.match(error)
        if connect is None:
            return None
        url, reason = connect.groups()
        if reason == "connection refused":
            return f"start the server at {url}"
        if reason.startswith("cannot resolve"):
            return f"check the network connection and the host of {url}"
        return f"check {url}"
    if attempt.outcome is AttemptOutcome.PERMANENT:
        check = _CHECK_KEY.search(error)
        return f"check {check.group(1)}" if check else None
    return None


def why_fallback(reply: Reply) -> list[Why]:
    """One entry per provider that did not answer, in config order (empty if an LLM answered).

    A provider tried several times is described by its last attempt (a retry the
    deadline left no room for says less than the failure before it).
    """
    if not reply.fallback_used:
        return []
    last: dict[str, Attempt] = {}
    for attempt in reply.attempts:
        earlier = last.get(attempt.provider)
        if earlier is None or attempt.outcome is not AttemptOutcome.DEADLINE:
            last[attempt.provider] = attempt
    return [Why(a.provider, a.outcome.value, a.error or a.outcome.value, _fix(a)) for a in last.values()]


def how_to_get_an_llm(whys: list[Why]) -> str | None:
    """``set ANTHROPIC_API_KEY or OPENAI_API_KEY, or start the server at ...``; None if no reason says."""
    fixes = list(dict.fromkeys(w.fix for w in whys if w.fix))
    keys = [f.removeprefix("set ") for f in fixes if f.startswith("set ")]
    others = [f for f in fixes if not f.startswith("set ")]
    steps = ([f"set {' or '.join(keys)}"] if keys else []) + others
    return ", or ".join(steps) or None


def _no_llm(reply: Reply) -> str:
    whys = why_fallback(reply)
    if not whys:
        return "no LLM answered, this is a template reply (no LLM provider is configured: add one to config.json)"
    how = how_to_get_an_llm(whys)
    return "no LLM answered, this is a template reply" + (f" (to get one: {how})" if how else "")


def describe(reply: Reply) -> str:
    """The second line of ``valis ask``: who answered, how fast, why others did not."""
    who = reply.provider + (f" ({reply.model})" if reply.model else "")
    line = f"-- {reply.persona_id} via {who} in {reply.elapsed * 1000:.0f} ms"
    if reply.fallback_used:
        line += "; " + _no_llm(reply)
    skipped = reply.skipped()
    if skipped:
        line += "; " + "; ".join(dict.fromkeys(skipped))  # a retried failure is said once
    if reply.refusal:
        line += f"; refused: {reply.refusal}"
    return line


def reply_json(reply: Reply) -> dict[str, Any]:
    """The reply as JSON, plus ``fallback``, ``why`` (one entry per provider that did not
    answer) and ``how`` (what would get an LLM's answer) when the fallback answered."""

    def convert(inst: Any, field: Any, value: Any) -> Any:
        return value.value if isinstance(value, AttemptOutcome) else value

    data = attrs.asdict(reply, value_serializer=convert)
    whys = why_fallback(reply)
    data["fallback"] = reply.fallback_used
    data["why"] = [attrs.asdict(w) for w in whys]
    data["how"] = how_to_get_an_llm(whys) if reply.fallback_used else None
    return data
