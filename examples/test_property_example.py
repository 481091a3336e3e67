"""A property-based test of *your* app with valis_actors.testing (see docs/testing.md).

The "app" is a tiny support bot: it answers each user in their own session and
tags the answer with the persona that spoke. The test drives it with random
workloads while the provider fails at random, on a virtual clock, on asyncio and
trio, and checks what the app promises plus the runtime's own invariants.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import valis_actors as va
from valis_actors.testing import EventRecorder, run_on_virtual_time
from valis_actors.testing import strategies as vst


async def support_bot(runtime: va.Runtime, user: str, text: str) -> str:
    """The app under test: one session per user; the answer says who spoke."""
    reply = await runtime.ask(f"user-{user}", "jane", text)
    return f"[{reply.persona_id}] {reply.text}"


def make_config(fault_plan: list[va.testing.Step], seed: int) -> va.Config:
    return va.Config.from_dict(
        {
            "providers": [  # steps go into the config as they are
                {"type": "scripted", "name": "llm", "script": fault_plan, "seed": seed, "fault_rate": 0.3},
            ],
            "retry_schedule": [0.5],
            "response_deadline": 10,
            "memory": {"backend": "memory"},
        }
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=25, deadline=None)
@given(
    workload=vst.workloads(max_sessions=4, max_messages=15),
    fault_plan=vst.fault_plans(max_steps=8),
    seed=st.integers(0, 1000),
)
def test_every_user_gets_one_tagged_answer_per_message_in_order(
    backend: str, workload: list[tuple[str, str]], fault_plan: list[va.testing.Step], seed: int
) -> None:
    async def scenario() -> None:
        import anyio

        recorder = EventRecorder()
        config = make_config(fault_plan, seed)
        answers: dict[str, list[str]] = {}
        async with va.open_runtime(config, event_hook=recorder) as runtime:
            async def user_session(user: str, texts: list[str]) -> None:
                for text in texts:  # one user types one message after another
                    answers.setdefault(user, []).append(await support_bot(runtime, user, text))

            by_user: dict[str, list[str]] = {}
            for user, text in workload:
                by_user.setdefault(user, []).append(text)
            async with anyio.create_task_group() as tg:
                for user, texts in by_user.items():
                    tg.start_soon(user_session, user, texts)
        # What the app promises:
        for user, texts in by_user.items():
            assert len(answers[user]) == len(texts)
            assert all(answer.startswith("[jane] ") for answer in answers[user])
        # What the runtime promises, checked over everything that happened:
        recorder.check_all(config)

    run_on_virtual_time(scenario, backend=backend)
