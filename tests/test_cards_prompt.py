"""Macros, the rendered card prompt (order, pruning, what never reaches it) and greetings."""

from __future__ import annotations

import json

import pytest

from tests.test_cards_build import v1, v2, v3
from valis_actors._cards import (
    DEFAULT_SYSTEM_PROMPT,
    Card,
    MacroContext,
    expand_macros,
    greeting_for_session,
    greetings,
    parse_card_bytes,
    render_card_prompt,
)

CTX = MacroContext(char="Mira", user="Ann", session_id="s1")


def card_of(obj: dict[str, object]) -> Card:
    return parse_card_bytes(json.dumps(obj).encode(), "t.json")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{char}} meets {{user}}", "Mira meets Ann"),
        ("{{CHAR}} / {{ User }}", "Mira / Ann"),
        ("<BOT> and <user>, <Char>", "Mira and Ann, Mira"),
        ("a{{// a comment with {{char}} inside}}b", "ab"),
        ("x{{comment: shown to users only}}y{{hidden_key: k}}z", "xyz"),
        ("{{reverse:abc}}", "cba"),
        ("{{unknown_macro}} stays", "{{unknown_macro}} stays"),
        ("unclosed {{char", "unclosed {{char"),
        ("{{roll:0}} {{roll:abc}}", "{{roll:0}} {{roll:abc}}"),
    ],
)
def test_macros_expand(text: str, expected: str) -> None:
    assert expand_macros(text, CTX) == expected


def test_replacement_names_are_not_expanded_again() -> None:
    assert expand_macros("{{user}}", MacroContext(char="Mira", user="{{char}}")) == "{{char}}"


def test_random_chooses_among_options_including_nested_and_escaped() -> None:
    for seed in map(str, range(30)):
        out = expand_macros("{{random:{{char}},b\\,c,d}}", MacroContext(char="Mira", seed=seed))
        assert out in {"Mira", "b,c", "d"}
    assert expand_macros("{{random::x::y}}", CTX) in {"x", "y"}


def test_random_and_roll_vary_with_the_seed_but_are_deterministic() -> None:
    outs = {
        expand_macros("{{random:a,b,c,d,e,f}}{{roll:d20}}", MacroContext("M", seed=str(i))) for i in range(40)
    }
    assert len(outs) > 5
    assert expand_macros("{{roll:2d6+3}}", CTX) == expand_macros("{{roll:2d6+3}}", CTX)


def test_roll_stays_in_range() -> None:
    for i in range(200):
        context = MacroContext("M", seed=str(i))
        assert 1 <= int(expand_macros("{{roll:6}}", context)) <= 6
        assert 5 <= int(expand_macros("{{roll:2d6+3}}", context)) <= 15
        assert 1 <= int(expand_macros("{{roll:D4}}", context)) <= 4


def test_pick_is_stable_per_session_whatever_the_message_seed() -> None:
    text = "{{pick:a,b,c,d,e,f,g,h}}"
    for session in ("s1", "s2", "s3"):
        values = {expand_macros(text, MacroContext("M", session_id=session, seed=str(i))) for i in range(10)}
        assert len(values) == 1
    by_session = {expand_macros(text, MacroContext("M", session_id=f"s{i}")) for i in range(40)}
    assert len(by_session) > 3


def test_macro_expansion_is_linear_on_hostile_text() -> None:
    expand_macros("{{" * 200_000 + "}}", CTX)
    expand_macros("{{a}}" * 50_000, CTX)
    assert expand_macros("{{random:" * 20 + "x" + "}}" * 20, CTX).count("x") == 1


def test_prompt_follows_the_usual_order_and_expands_names() -> None:
    card = card_of(v2(system_prompt="SYS {{original}} END", post_history_instructions="POST for {{user}}"))
    prompt = render_card_prompt(card, user="Ann")
    text = prompt.system
    default = DEFAULT_SYSTEM_PROMPT.replace("{{char}}", "Mira").replace("{{user}}", "Ann")
    order = [
        f"SYS {default} END",
        "Mira is a lighthouse keeper.",
        "Mira's personality: calm, dry humour",
        "Scenario: A storm night.",
        "Ann: Hello?",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert prompt.post_history == "POST for Ann"
    full = prompt.text()
    assert full.index("[the conversation so far goes here]") < full.index("POST for Ann")


def test_empty_system_prompt_means_the_default_and_metadata_never_reaches_the_prompt() -> None:
    prompt = render_card_prompt(card_of(v2()), user="Ann")
    assert prompt.system.startswith("Write Mira's next reply")
    for secret in ("NOTES-NEVER-IN-PROMPT", "TAG-NEVER-IN-PROMPT", "CREATOR-NEVER-IN-PROMPT", "1.2"):
        assert secret not in prompt.text()
    assert prompt.post_history == ""


def test_system_prompt_without_original_replaces_the_default() -> None:
    prompt = render_card_prompt(card_of(v2(system_prompt="Only this.")), default_system="IGNORED")
    assert prompt.system.startswith("Only this.") and "IGNORED" not in prompt.system


def test_v3_nickname_replaces_char() -> None:
    assert "Miri is a lighthouse keeper." in render_card_prompt(card_of(v3(nickname="Miri"))).system


def test_v1_uses_the_default_user_name() -> None:
    card = card_of(v1(mes_example="<START>\n<USER>: hi\n<BOT>: hello"))
    assert "User: hi\nMira: hello" in render_card_prompt(card).system


def test_examples_are_pruned_first_when_over_budget() -> None:
    examples = "\n".join(f"<START>\n{{{{user}}}}: q{i}\n{{{{char}}}}: {'answer ' * 30}{i}" for i in range(6))
    card = card_of(v2(mes_example=examples))
    full = render_card_prompt(card)
    assert full.examples_dropped == 0 and "q5" in full.system
    tight = render_card_prompt(card, max_tokens=len(full.system) // 4 - 60)
    assert 0 < tight.examples_dropped < 6 and "q0" in tight.system and "q5" not in tight.system
    assert "Mira is a lighthouse keeper." in tight.system  # the character itself is never pruned
    none_left = render_card_prompt(card, max_tokens=1)
    assert none_left.examples_dropped == 6 and "Example dialogues" not in none_left.system


def test_prompt_is_deterministic_per_session() -> None:
    card = card_of(v2(description="{{pick:red,green,blue,violet,amber}} lamp"))
    assert render_card_prompt(card, session_id="a").system == render_card_prompt(card, session_id="a").system


def test_greetings_first_then_alternates_with_macros() -> None:
    card = card_of(v2())
    assert greetings(card) == ("Come in, {{user}}, out of the rain.", "Another wet traveller, {{user}}?")
    assert greeting_for_session(card, "s1", user="Ann") == "Come in, Ann, out of the rain."
    assert greeting_for_session(card, "s1", user="Ann", index=1) == "Another wet traveller, Ann?"
    assert greeting_for_session(card, "s1", index=99) == "Another wet traveller, User?"
    chosen = {greeting_for_session(card, f"s{i}", index=None) for i in range(20)}
    assert len(chosen) == 2
    assert greeting_for_session(card, "s7", index=None) == greeting_for_session(card, "s7", index=None)


def test_no_greeting_is_an_empty_string() -> None:
    assert greeting_for_session(card_of(v1(first_mes="")), "s") == ""


def test_post_history_original_expands_to_the_default() -> None:
    card = card_of(v2(post_history_instructions="{{original}} Keep it short, {{user}}."))
    prompt = render_card_prompt(card, user="Ann", default_post_history="Stay in character.")
    assert prompt.post_history == "Stay in character. Keep it short, Ann."
    assert (
        render_card_prompt(card_of(v2()), default_post_history="Default after.").post_history
        == "Default after."
    )


def test_group_only_greetings_do_not_greet_a_one_to_one_session() -> None:
    card = card_of(v3(group_only_greetings=["Hello, everyone."]))
    assert "Hello, everyone." not in greetings(card)


def test_original_outside_the_two_prompts_is_left_as_written() -> None:
    assert "{{original}}" in render_card_prompt(card_of(v2(description="see {{original}}"))).system
