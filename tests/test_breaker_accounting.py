"""What the circuit breaker counts, as docs/providers.md says: retries count, so a circuit opens mid-message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import valis_actors as va
from valis_actors._cascade._outcomes import RULES
from valis_actors.testing import EventRecorder, ScriptedProvider, Step

from .support import make_config, scripted

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.anyio
async def test_a_circuit_opens_between_the_retries_of_one_message() -> None:
    recorder = EventRecorder()
    config = make_config(
        scripted("llm", default=Step.rate_limited(retry_after=1)), retry_schedule=[1, 1, 1], circuit_breaker_threshold=2
    )
    async with va.open_runtime(config, event_hook=recorder) as runtime:
        reply = await runtime.ask("s", "jane", "hello")
        breaker = runtime.statistics().breakers["llm"]
        calls = runtime.provider("llm", ScriptedProvider).calls
    assert [a.outcome.value for a in reply.attempts] == ["rate_limited", "rate_limited", "circuit_open"]
    assert (reply.provider, reply.fallback_used) == ("persona_fallback", True)
    assert len(calls) == 2  # the third try never reached the provider
    assert (breaker.state, breaker.consecutive_failures, breaker.times_opened) == (va.CircuitState.OPEN, 2, 1)
    (transition,) = recorder.of_kind(va.EventKind.BREAKER_TRANSITION)
    assert (transition.data["from"], transition.data["to"]) == ("closed", "open")
    assert transition.time == 1.0  # after the second 429, which came one Retry-After after the first
    recorder.check_all(config)


@pytest.mark.anyio
async def test_permanent_failures_count_as_the_provider_being_up() -> None:
    config = make_config(scripted("llm", default=Step.permanent()), circuit_breaker_threshold=1)
    async with va.open_runtime(config) as runtime:
        for index in range(3):
            await runtime.ask("s", "jane", f"message {index}")
        breaker = runtime.statistics().breakers["llm"]
    assert (breaker.state, breaker.consecutive_failures) == (va.CircuitState.CLOSED, 0)


def test_the_breaker_table_of_providers_md_is_the_outcome_rules() -> None:
    text = (ROOT / "docs" / "providers.md").read_text()
    table = text.split("<!-- breaker-table -->")[1].split("<!-- /breaker-table -->")[0]
    rows = re.findall(r"^\| `(\w+)` \| .*? \| (success|failure|release)\b", table, re.MULTILINE)
    documented = dict(rows)
    assert len(rows) == len(documented)  # no outcome twice
    assert documented == {outcome.value: rule.breaker.value for outcome, rule in RULES.items()}
