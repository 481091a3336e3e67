"""A small trio application embedding VALIS: ``python examples/trio_app.py``.

The same runtime as the asyncio example, under trio: a nursery of concurrent
callers, several sessions, a caller that gives up (its attempt is cancelled),
and a streamed answer.
"""

from __future__ import annotations

import trio

import valis_actors as va

CONFIG = va.Config.from_dict(
    {
        "providers": [{"type": "scripted", "name": "llm", "default": {"kind": "answer", "delay": 0.2}}],
        "response_deadline": 5,
        "memory": {"backend": "memory"},
    }
)


async def main() -> None:
    async with va.open_runtime(CONFIG) as runtime:
        async def talk(session: str, persona: str, *messages: str) -> None:
            for message in messages:  # one user, one message after another
                reply = await runtime.ask(session, persona, message)
                print(f"[{session} / {reply.persona_id}] {reply.text}")

        async with trio.open_nursery() as nursery:  # users in parallel
            nursery.start_soon(talk, "dana", "alex", "Should I take the startup offer?")
            nursery.start_soon(talk, "eve", "jane", "How do I ask for feedback?", "And how often?")
            nursery.start_soon(talk, "gus", "emma", "I keep skipping workouts.")

        with trio.move_on_after(0.05):  # this caller gives up: its attempt is cancelled
            await runtime.ask("frank", "sam", "Too slow for me")
        await trio.sleep(0.01)  # the session actor takes the cancellation on its next step
        print("frank gave up; attempts in flight:", runtime.statistics().attempts_in_flight)

        async with runtime.stream("dana", "alex", "Summarise the trade-offs.") as chunks:
            async for text in chunks:
                print(text, end="", flush=True)
        print(f"\n  ({chunks.provider}, model {chunks.model})")


if __name__ == "__main__":
    trio.run(main)
