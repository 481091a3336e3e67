"""The kit's typed helpers: provider accessor, computed steps, steps in configs, fallback text, overrides."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import valis_actors as va
from valis_actors.providers import provider_options
from valis_actors.testing import ScriptedOptions, ScriptedProvider, Step, fallback_text, override_provider

from .support import make_config, scripted

pytestmark = pytest.mark.anyio

MEMORY = {"backend": "memory"}


# -- runtime.provider(name, kind) ----------------------------------------------------------


async def test_the_typed_provider_accessor_returns_the_provider_as_the_class_asked_for() -> None:
    async with va.open_runtime(make_config(scripted("llm"))) as runtime:
        llm = runtime.provider("llm", ScriptedProvider)
        llm.script(Step.answer("typed"))
        assert (await runtime.ask("s", "jane", "hi")).text == "typed"
        assert llm.messages() == ["hi"]
        assert runtime.provider("llm") is llm


async def test_the_typed_provider_accessor_names_the_actual_type_when_it_is_not_the_one_asked_for() -> None:
    class Other(va.BaseProvider):
        pass

    async with va.open_runtime(make_config(scripted("llm"))) as runtime:
        with pytest.raises(TypeError, match=r"'persona_fallback' is a PersonaFallback .* not a ScriptedProvider"):
            runtime.provider("persona_fallback", ScriptedProvider)
        with pytest.raises(TypeError, match="'llm' is a ScriptedProvider \\(type 'scripted'\\), not a Other"):
            runtime.provider("llm", Other)
        with pytest.raises(KeyError, match="no enabled provider named 'nope'; enabled: llm, persona_fallback"):
            runtime.provider("nope", ScriptedProvider)


# -- Step.compute ----------------------------------------------------------------------------


async def test_a_computed_step_answers_from_the_request_sync_or_async() -> None:
    async def later(request: va.ProviderRequest) -> str:
        await anyio.sleep(1)
        return f"{request.persona.id} heard {len(request.history)} turns, then {request.message!r}"

    script = [Step.compute(lambda request: request.message.upper()), Step.compute(later, delay=2)]
    config = make_config(scripted("llm", *script))
    async with va.open_runtime(config) as runtime:
        first = await runtime.ask("s", "jane", "hello")
        started = anyio.current_time()
        second = await runtime.ask("s", "jane", "again")
        took = anyio.current_time() - started
    assert first.text == "HELLO"
    assert second.text == "jane heard 1 turns, then 'again'"
    assert took == 3.0  # the step's delay, then the function's own sleep (virtual time)


async def test_a_computed_step_streams_its_text_and_can_be_cut() -> None:
    config = make_config(scripted("llm", Step.compute(lambda r: "abcdef"), chunks=3))
    async with va.open_runtime(config) as runtime:
        async with runtime.stream("s", "jane", "go") as stream:
            chunks = [chunk async for chunk in stream]
        assert chunks == ["ab", "cd", "ef"]
        runtime.provider("llm", ScriptedProvider).script(Step("cut", after_chunks=1, reply=lambda r: "abcdef"))
        with pytest.raises(va.IncompleteAnswerError):
            async with runtime.stream("s", "jane", "go") as stream:
                assert [chunk async for chunk in stream] == ["ab"]


async def test_a_computed_step_that_returns_no_text_is_a_provider_bug_and_the_cascade_goes_on() -> None:
    config = make_config(scripted("llm", Step.compute(lambda r: 42)))  # type: ignore[arg-type, return-value]
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
        (call,) = runtime.provider("llm", ScriptedProvider).calls
    assert reply.fallback_used
    assert call.outcome == "TypeError"


def test_a_step_takes_a_function_or_a_text_and_only_where_it_answers() -> None:
    with pytest.raises(ValueError, match="reply and text are both set"):
        Step("answer", text="fixed", reply=lambda r: "computed")
    with pytest.raises(ValueError, match="reply is only for answer, cut and stall steps"):
        Step("transient", reply=lambda r: "x")
    with pytest.raises(ValueError, match="reply must be a function of the request"):
        Step(reply="not callable")  # type: ignore[arg-type]


# -- steps in configs, losslessly -----------------------------------------------------------


def test_steps_go_into_a_config_as_they_are_and_come_out_whole() -> None:
    compute = Step.compute(lambda r: "x", delay=0.5)
    script = [Step.cut(3), Step("answer", 1.0, "text", None, 4, 0.25), compute, {"kind": "transient"}]
    config = va.Config.from_dict(
        {"providers": [{"type": "scripted", "name": "llm", "script": script, "default": Step.hang()}], "memory": MEMORY}
    )
    options = provider_options(config.providers[0], ScriptedOptions)
    assert options.script == (Step.cut(3), Step("answer", 1.0, "text", None, 4, 0.25), compute, Step.transient())
    assert options.default == Step.hang()


def test_bad_steps_in_a_config_are_named_by_path() -> None:
    bad = [{"kind": "bogus"}, {"kind": "answer", "reply": 3}, 5, {"kind": "answer", "txt": "typo"}]
    with pytest.raises(va.ConfigError) as caught:
        va.Config.from_dict({"providers": [{"type": "scripted", "name": "llm", "script": bad}], "memory": MEMORY})
    problems = caught.value.problems
    assert any("must be one of 'answer'" in p and p.endswith("$.providers[0].script[0].kind") for p in problems)
    assert any("a function of the request" in p and "script[1].reply" in p for p in problems)
    assert any("expected a step" in p and p.endswith("$.providers[0].script[2]") for p in problems)
    assert any("txt" in p and "script[3]" in p for p in problems)


def _reply(request: va.ProviderRequest) -> str:
    return request.message


finite = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
any_steps = st.one_of(
    st.builds(
        Step,
        kind=st.sampled_from(["answer", "cut", "stall"]),
        delay=finite,
        text=st.none() | st.text(max_size=20),
        retry_after=st.none() | finite,
        after_chunks=st.integers(0, 10),
        chunk_delay=finite,
    ),
    st.builds(Step, kind=st.sampled_from(["transient", "rate_limited", "permanent", "hang"]), delay=finite,
              retry_after=st.none() | finite, after_chunks=st.integers(0, 10), chunk_delay=finite),
    st.builds(Step.compute, st.just(_reply), delay=finite),
)
any_options = st.builds(
    ScriptedOptions,
    script=st.lists(any_steps, max_size=5).map(tuple),
    default=any_steps,
    fault_rate=st.floats(0, 1),
    faults=st.lists(any_steps, min_size=1, max_size=3).map(tuple),
    seed=st.none() | st.integers(0, 2**31),
    model=st.text(min_size=1, max_size=10),
    chunks=st.integers(1, 10),
)


@settings(max_examples=200, deadline=None)
@given(options=any_options)
def test_scripted_options_round_trip_through_the_options_structurer_without_loss(options: ScriptedOptions) -> None:
    config = override_provider(make_config(scripted("llm")), "llm", options)
    assert provider_options(config.providers[0], ScriptedOptions) == options


# -- fallback_text ------------------------------------------------------------------------------


async def test_fallback_text_is_what_the_runtime_answers_when_every_provider_fails() -> None:
    earlier = (va.Turn("my manager ignores me", "That sounds hard.", "jane", "llm"),)
    config = make_config(scripted("llm", default=Step.permanent()))
    async with va.open_runtime(config) as runtime:
        fresh = await runtime.ask("s1", "jane", "I have a conflict")
        resent = await runtime.ask("s2", "sam", "Where do I start?", history=earlier)
        jane, sam = runtime.personas.get("jane"), runtime.personas.get("sam")
    assert fresh.fallback_used and resent.fallback_used
    assert fresh.text == fallback_text(jane, "I have a conflict")
    assert resent.text == fallback_text(sam, "Where do I start?", history=earlier, session_id="s2")
    assert fallback_text(sam, "Where do I start?", history=earlier) != fallback_text(sam, "Where do I start?")


# -- override_provider -------------------------------------------------------------------------


def test_override_provider_swaps_one_entry_in_place_and_leaves_the_rest() -> None:
    config = va.Config.from_dict(
        {
            "providers": [
                {"type": "openai", "name": "llm", "timeout": 7, "model": "gpt-4o-mini"},
                {"type": "anthropic", "name": "backup"},
            ],
            "memory": MEMORY,
        }
    )
    options = ScriptedOptions(script=(Step.rate_limited(2), Step("answer", text="t", chunk_delay=0.5)))
    new = override_provider(config, "llm", options)
    assert [(p.name, p.type) for p in new.providers] == [
        ("llm", "scripted"), ("backup", "anthropic"), ("persona_fallback", "persona_fallback")
    ]
    assert new.providers[0].timeout == 7
    assert provider_options(new.providers[0], ScriptedOptions) == options
    assert new.providers[1:] == config.providers[1:]
    assert config.providers[0].type == "openai"  # the original is unchanged
    assert override_provider(config, "backup").providers[1].type == "scripted"
    spelled: dict[str, Any] = {"script": [{"kind": "transient"}], "seed": 3}
    assert provider_options(override_provider(config, "llm", spelled).providers[0], ScriptedOptions).seed == 3


async def test_an_overridden_config_runs_with_the_scripted_provider() -> None:
    config = override_provider(
        va.Config.from_dict({"providers": [{"type": "openai", "name": "llm"}], "memory": MEMORY}),
        "llm",
        ScriptedOptions(default=Step.compute(lambda r: f"scripted: {r.message}")),
    )
    async with va.open_runtime(config) as runtime:
        assert (await runtime.ask("s", "jane", "hi")).text == "scripted: hi"
        assert runtime.provider("llm", ScriptedProvider).messages() == ["hi"]


def test_override_provider_refuses_what_it_cannot_do_with_the_fix() -> None:
    config = make_config(scripted("llm"))
    with pytest.raises(va.ConfigError, match="no provider named 'nope'; the config has llm, persona_fallback"):
        override_provider(config, "nope", ScriptedOptions())
    with pytest.raises(va.ConfigError, match="is the persona fallback, which is always last and cannot be replaced"):
        override_provider(config, "persona_fallback", ScriptedOptions())
    with pytest.raises(va.ConfigError) as caught:
        override_provider(config, "llm", {"chunks": "three", "bogus": 1})
    assert caught.value.problems == (
        (
            "unknown key 'bogus'; known keys: script, default, fault_rate, faults, seed, model, chunks, prefill"
            " @ $.providers[0]"
        ),
        "expected an integer, got str 'three' @ $.providers[0].chunks",
    )
    with pytest.raises(va.ConfigError, match="must be ScriptedOptions or a mapping, got Step"):
        override_provider(config, "llm", Step.transient())
