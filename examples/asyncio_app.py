"""A small asyncio application embedding VALIS: ``python examples/asyncio_app.py``.

Three users talk to different personas at once; one of them sends two messages
concurrently (answered in order); the last answer is streamed. The provider is
a scripted stand-in with realistic delays and a failure, so no API key is needed:
swap the config for config.json to use real providers.
"""

from __future__ import annotations

import asyncio

import valis_actors as va

CONFIG = va.Config.from_dict(
    {
        "providers": [
            {
                "type": "scripted",
                "name": "llm",
                "script": [{"kind": "transient"}],  # the first call fails: retried after 0.1 s
                "default": {"kind": "answer", "delay": 0.2},
            }
        ],
        "retry_schedule": [0.1],
        "memory": {"backend": "memory"},
    }
)


async def main() -> None:
    async with va.open_runtime(CONFIG) as runtime:
        replies = await asyncio.gather(
            runtime.ask("alice", "jane", "My manager keeps moving my deadlines."),
            runtime.ask("bob", "sam", "I just moved to Lisbon. Where do I start?"),
            runtime.ask("carol", "emma", "I want to run three times a week."),
            runtime.ask("carol", "emma", "And how do I keep it up?"),  # after carol's first, in order
        )
        for reply in replies:
            print(f"[{reply.session_id} / {reply.persona_id} via {reply.provider}] {reply.text}")

        async with runtime.stream("alice", "jane", "Can you help me plan that conversation?") as chunks:
            print("[alice / jane, streamed] ", end="")
            async for text in chunks:
                print(text, end="", flush=True)
        print(f"\n  ({chunks.provider}, {len(chunks.attempts)} attempt(s))")
        print(runtime.statistics().live_sessions, "live sessions")


if __name__ == "__main__":
    asyncio.run(main())
