"""``fallback_text``: the answer the persona fallback gives, without a runtime."""

from __future__ import annotations

from collections.abc import Sequence

from .._config import ProviderSettings
from .._messages import ProviderRequest, Turn
from .._personas import Persona, render_system_prompt
from .._personas._fallback import PersonaFallback

__all__ = ["fallback_text"]


def fallback_text(persona: Persona, message: str, *, history: Sequence[Turn] = (), session_id: str = "session") -> str:
    """The text the persona fallback answers ``message`` with, as the runtime would.

    The fallback is a pure function of its inputs, so a test can assert on the exact
    text it expects (``reply.text == fallback_text(runtime.personas.get("jane"), "hi")``)
    without a second runtime.

    Args:
        persona: The persona answering (``runtime.personas.get(persona_id)``).
        message: The user's message.
        history: The earlier turns the runtime would send (the stored ones, or
            ``ask(history=...)``).
        session_id: The session the message belongs to.
    """
    request = ProviderRequest(session_id, persona, message, render_system_prompt(persona), tuple(history))
    provider = PersonaFallback(ProviderSettings(name="persona_fallback", type="persona_fallback"))
    # The runtime's own code path, driven without an event loop: the fallback never
    # waits, so its coroutine finishes on the first step.
    coroutine = provider.get_response(request)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value.text  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the persona fallback waited on something; it must answer at once")
