"""Load: 10 000 sessions x 20 messages with 20 % injected faults — nothing lost, reordered or doubled.

Asserts correctness only, never timing (it runs on a virtual clock).
"""

from __future__ import annotations

import os
from collections import defaultdict

import anyio
import pytest

import valis_actors as va

from .support import make_config

pytestmark = pytest.mark.anyio

SESSIONS = int(os.environ.get("VALIS_LOAD_SESSIONS", "10000"))
MESSAGES = 20


class OrderBook:
    """A light event hook: per session, the order messages were accepted and answered in."""

    def __init__(self) -> None:
        self.accepted: dict[str, list[int]] = defaultdict(list)
        self.answered: dict[str, list[int]] = defaultdict(list)
        self.other: list[va.RuntimeEvent] = []

    def __call__(self, event: va.RuntimeEvent) -> None:
        if event.kind == va.EventKind.MESSAGE_ACCEPTED:
            self.accepted[event.session_id or ""].append(event.seq or 0)
        elif event.kind == va.EventKind.REPLY_DELIVERED:
            self.answered[event.session_id or ""].append(event.seq or 0)
        elif event.kind in (va.EventKind.MESSAGE_DROPPED, va.EventKind.MESSAGE_FAILED):
            self.other.append(event)


@pytest.mark.timeout(900)  # ~1 min per backend alone; far longer on a loaded 2-core machine
async def test_ten_thousand_sessions_with_faults_lose_reorder_and_duplicate_nothing() -> None:
    faults = [{"kind": "transient"}, {"kind": "rate_limited", "retry_after": 0.5}, {"kind": "permanent"},
              {"kind": "hang"}]
    config = make_config(
        {"type": "scripted", "name": "p1", "seed": 7, "fault_rate": 0.2, "faults": faults,
         "default": {"kind": "answer", "delay": 0.05}},
        {"type": "scripted", "name": "p2", "seed": 8, "fault_rate": 0.2, "faults": faults,
         "default": {"kind": "answer", "delay": 0.05}},
        retry_schedule=[0.1], provider_timeout=1, response_deadline=5, max_concurrent_requests=256,
        circuit_breaker_threshold=1000, session={"mailbox_size": MESSAGES, "idle_timeout": 30},
        memory={"enabled": False},
    )
    book = OrderBook()
    replies: dict[str, list[str]] = defaultdict(list)
    async with va.open_runtime(config, event_hook=book) as runtime:
        async def ask(session: str, i: int) -> None:
            reply = await runtime.ask(session, "jane", f"{session}/{i}")
            if not reply.fallback_used:
                assert reply.text == f"{reply.provider}: {session}/{i}"
            replies[session].append(reply.text)

        async def session(n: int) -> None:
            async with anyio.create_task_group() as tg:
                for i in range(MESSAGES):
                    tg.start_soon(ask, f"s{n}", i)

        async with anyio.create_task_group() as tg:
            for n in range(SESSIONS):
                tg.start_soon(session, n)
        assert runtime.statistics().live_sessions == SESSIONS
        await anyio.sleep(38)
        assert runtime.statistics().live_sessions == 0
    assert book.other == []
    assert len(book.accepted) == SESSIONS
    for sid, accepted in book.accepted.items():
        assert len(accepted) == MESSAGES
        assert book.answered[sid] == accepted  # none lost, none reordered, none duplicated
        assert len(replies[sid]) == MESSAGES
