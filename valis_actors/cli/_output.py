"""How the CLI shows a reply: the footer line and the ``--json`` form."""

from __future__ import annotations

from typing import Any

import attrs

from .._messages import AttemptOutcome, Reply

__all__ = ["describe", "reply_json"]


def describe(reply: Reply) -> str:
    """The second line of ``valis ask``: who answered, how fast, why others did not."""
    who = reply.provider + (f" ({reply.model})" if reply.model else "")
    line = f"-- {reply.persona_id} via {who} in {reply.elapsed * 1000:.0f} ms"
    skipped = reply.skipped()
    if skipped:
        line += "; " + "; ".join(dict.fromkeys(skipped))  # a retried failure is said once
    if reply.refusal:
        line += f"; refused: {reply.refusal}"
    return line


def reply_json(reply: Reply) -> dict[str, Any]:
    def convert(inst: Any, field: Any, value: Any) -> Any:
        return value.value if isinstance(value, AttemptOutcome) else value

    return attrs.asdict(reply, value_serializer=convert)
