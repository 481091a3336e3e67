"""Bad input at the API is refused at once, with a clear error, before reaching a mailbox."""

from __future__ import annotations

from typing import Any

import pytest

import valis_actors as va

from .support import make_config, provider, scripted

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("session", "persona", "message", "error", "match"),
    [
        ("s", "jane", "", va.EmptyMessageError, "message is empty"),
        ("s", "jane", "   \n\t", va.EmptyMessageError, "message is empty"),
        ("s", "jane", "x" * 101, va.MessageTooLongError, "101 characters, over max_message_chars=100"),
        ("", "jane", "hi", va.InvalidSessionIdError, "1 to 256 characters"),
        ("s" * 257, "jane", "hi", va.InvalidSessionIdError, r"1 to 256 characters \(got 257\)"),
        (7, "jane", "hi", va.InvalidSessionIdError, "must be a string, got int"),
        ("s", "jane", b"hi", va.InvalidRequestError, "message must be a string, got bytes"),
        ("s", None, "hi", va.InvalidRequestError, "persona id must be a string"),
        ("s", "../etc/passwd", "hi", va.InvalidPersonaIdError, "invalid persona id"),
        ("s", "", "hi", va.InvalidPersonaIdError, "invalid persona id"),
    ],
)
async def test_bad_arguments_are_refused_before_any_mailbox(
    session: Any, persona: Any, message: Any, error: type[Exception], match: str
) -> None:
    async with va.open_runtime(make_config(scripted("p1"), max_message_chars=100)) as runtime:
        with pytest.raises(error, match=match):
            await runtime.ask(session, persona, message)
        stats = runtime.statistics()
        assert stats.live_sessions == 0
        assert provider(runtime).calls == []
        assert isinstance(error("x"), va.ValisError)


async def test_bad_deadline_is_refused() -> None:
    async with va.open_runtime(make_config()) as runtime:
        for bad in (0, -1, "5", True):
            with pytest.raises(va.InvalidRequestError, match="deadline must be a number of seconds > 0"):
                await runtime.ask("s", "jane", "hi", deadline=bad)


async def test_unknown_persona_gets_the_neutral_persona_never_jane() -> None:
    async with va.open_runtime(make_config(scripted("p1", default=va_step_permanent()))) as runtime:
        reply = await runtime.ask("s", "nobody", "hello there")
        other = await runtime.ask("s", "someone", "hello there")
    # The neutral persona answers under the id asked for: two unknown ids never share memory.
    assert (reply.persona_id, other.persona_id) == ("nobody", "someone")
    assert "Jane" not in reply.text
    assert "earlier conversation" not in other.text


async def test_unknown_persona_is_an_error_when_configured() -> None:
    async with va.open_runtime(make_config(unknown_persona="error")) as runtime:
        with pytest.raises(va.UnknownPersonaError, match="unknown persona 'nobody'; known: .*jane"):
            await runtime.ask("s", "nobody", "hello")


def va_step_permanent() -> Any:
    from valis_actors.testing import Step

    return Step.permanent()
