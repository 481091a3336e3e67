"""The support bot's property test, written with valis_actors.testing (see docs/embedding.md).

Random conversations (several sessions, messages sent without waiting for the answers,
some asking for a human) go through the real app — Starlette routes and lifespan, over
``httpx.ASGITransport`` — while the provider answers slowly and fails at random. On a
virtual clock, on asyncio and trio, the test checks what the app promises (one answer
per message; handoff exactly for the messages asking for a human) and, through the
recorder, that every handoff happened in its session's order.

The last test shows the property has teeth: with the handoff answered at once instead
of through ``run_in_session``, Hypothesis finds the violation and shrinks it to two
messages (a slow question, then a request for a human).
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import httpx
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import valis_actors as va
from valis_actors.testing import (
    EventRecorder,
    InvariantViolation,
    ScriptedOptions,
    ScriptedProvider,
    Step,
    override_provider,
    run_on_virtual_time,
)
from valis_actors.testing import strategies as vst

from .app import HANDOFF_TEXT, Answer, Chat, HandoffDesk, answer, create_app, wants_human

BACKENDS = ["asyncio", "trio"]

# The app's production config; each test swaps its provider for a scripted one.
PRODUCTION = va.Config.from_dict(
    {
        "providers": [{"type": "openai", "name": "llm", "model": "gpt-4o-mini"}],
        "retry_schedule": [0.5],
        "provider_timeout": 3,
        "response_deadline": 10,
        "memory": {"backend": "memory"},
    }
)

messages = st.one_of(vst.messages(30), st.sampled_from(["Can I talk to a human?", "HUMAN please", "human"]))
conversations = st.lists(st.tuples(vst.session_ids(3), messages), min_size=1, max_size=12)


@attrs.define
class RecordingDesk:
    """The handoff desk of the tests: each handoff is an app event of the recorder."""

    recorder: EventRecorder
    tickets: list[tuple[str, str]] = attrs.field(factory=list)

    async def hand_off(self, session_id: str, message: str) -> None:
        self.recorder.record_app(session_id, "handoff", message=message)
        self.tickets.append((session_id, message))


async def bypassing_answer(runtime: va.Runtime, desk: HandoffDesk, session_id: str, message: str) -> Answer:
    """The rule as a first version would write it: the handoff is done at once, beside the runtime."""
    if wants_human(message):
        await desk.hand_off(session_id, message)
        return Answer(HANDOFF_TEXT, "handoff", handed_off=True)
    return await answer(runtime, desk, session_id, message)


async def run_conversation(
    conversation: list[tuple[str, str]], faults: list[Step], seed: int, chat: Chat = answer
) -> tuple[EventRecorder, va.Config, RecordingDesk, list[dict[str, Any]]]:
    """Send every message (each reaches the app before the next is sent); return what happened."""
    recorder = EventRecorder()
    desk = RecordingDesk(recorder)
    options = ScriptedOptions(script=tuple(faults), default=Step.answer(delay=1), seed=seed, fault_rate=0.2)
    config = override_provider(PRODUCTION, "llm", options)
    app = create_app(config, desk=desk, event_hook=recorder, chat=chat)
    results: list[dict[str, Any]] = [{} for _ in conversation]
    async with app.router.lifespan_context(app):  # what a server does at startup and shutdown
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:

            async def send(index: int, session_id: str, message: str) -> None:
                response = await client.post("/chat", json={"session_id": session_id, "message": message})
                assert response.status_code == 200, response.text
                results[index] = response.json()

            async with anyio.create_task_group() as tg:
                for index, (session_id, message) in enumerate(conversation):
                    tg.start_soon(send, index, session_id, message)
                    await anyio.wait_all_tasks_blocked()
        assert app.state.runtime.provider("llm", ScriptedProvider).options == options
    return recorder, config, desk, results


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversation=conversations, faults=vst.fault_plans(max_steps=6), seed=st.integers(0, 1000))
def test_every_message_is_answered_or_handed_off_in_its_session_order(
    backend: str, conversation: list[tuple[str, str]], faults: list[Step], seed: int
) -> None:
    recorder, config, desk, results = run_on_virtual_time(run_conversation, conversation, faults, seed, backend=backend)
    # The app's promises.
    assert [result["handed_off"] for result in results] == [wants_human(m) for _, m in conversation]
    assert all(r["text"] == HANDOFF_TEXT for r in results if r["handed_off"])
    for session in {s for s, _ in conversation}:  # each session's handoffs, in the order sent
        sent = [m for s, m in conversation if s == session and wants_human(m)]
        assert [m for s, m in desk.tickets if s == session] == sent
    # The runtime's, the app's steps included: FIFO per session (handoffs too), one outcome each.
    recorder.check_all(config)
    assert len(recorder.app_events(name="handoff")) == len(desk.tickets)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_handoff_that_bypasses_the_session_order_is_caught_and_shrunk(backend: str) -> None:
    def violates(conversation: list[tuple[str, str]]) -> bool:
        recorder, *_ = run_on_virtual_time(run_conversation, conversation, [], 0, bypassing_answer, backend=backend)
        try:
            recorder.check_fifo()
        except InvariantViolation:
            return True
        return False

    # Plain words shrink fast; the property test above uses arbitrary text.
    words = st.sampled_from(["hello", "my order is late", "a human please"])
    small_conversations = st.lists(st.tuples(vst.session_ids(2), words), min_size=1, max_size=8)
    smallest = find(small_conversations, violates, settings=settings(max_examples=200, deadline=None, database=None))
    # Two messages of one session: a question still being answered, then a request for a human.
    assert len(smallest) == 2
    (first_session, first), (second_session, second) = smallest
    assert first_session == second_session
    assert not wants_human(first) and wants_human(second)
    # The same conversation through run_in_session keeps the order.
    recorder, *_ = run_on_virtual_time(run_conversation, smallest, [], 0, backend=backend)
    recorder.check_fifo()
