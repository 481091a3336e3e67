"""The persona fallback fits the message, punctuates once, and quotes the earlier turn, not this one."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import valis_actors as va
from tests.hostile import EXAMPLES
from tests.support import make_config, scripted
from valis_actors._personas import NEUTRAL, PersonaStore
from valis_actors._personas._fallback import MessageKind, _quote, fallback_text, message_kind
from valis_actors.cli import main
from valis_actors.testing import Step

ROOT = Path(__file__).resolve().parent.parent

STORE = PersonaStore.load_dir(None)
PERSONAS = [*(STORE.get(p) for p in sorted(STORE.personas)), NEUTRAL]
JANE = STORE.get("jane")
TERMINAL = re.compile(r"[.!?…][\"')\]]*$")
DOUBLED = re.compile(r"[.!?…][\"')\]]*[.!?]")

SEEDS = [
    "hi", "hello", "hey there", "good morning", "What should I say in my review", "is it safe",
    "my manager ignores me", "I feel stuck at work", "ok", "thanks", "x", "", "…", "'quoted'", '"double"',
]
MARKS = ["", ".", "?", "!", "...", "?!", "…", "?.", " ?", ":", ";", "-", "'", ")"]
MESSAGES = st.one_of(
    st.text(max_size=160),
    st.tuples(st.sampled_from(SEEDS), st.sampled_from(MARKS)).map("".join),
)


def without_quotes(text: str, *messages: str | None) -> str:
    """``text`` with each quoted message replaced by a stand-in that ends as the quote does."""
    for message in messages:
        if message is None:
            continue
        quote = _quote(message)
        text = text.replace(f'"{quote}"', '"Q?"' if TERMINAL.search(quote) else '"Q"')
    return text


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    persona=st.sampled_from(PERSONAS),
    message=MESSAGES,
    previous=st.none() | MESSAGES,
)
def test_fallback_punctuates_once_is_deterministic_and_quotes_only_the_previous_turn_as_earlier(
    persona: va.Persona, message: str, previous: str | None
) -> None:
    text = fallback_text(persona, message, continuing=previous is not None, previous=previous)
    assert text and text == fallback_text(persona, message, continuing=previous is not None, previous=previous)
    assert "\n" not in text
    template = without_quotes(text, message, previous)
    assert not DOUBLED.search(template), text
    assert not re.search(r"\s[.!?,;:]", template), text
    if previous is None:
        assert "earlier conversation" not in template
    else:
        earlier = re.search(r"earlier conversation[^\"]*\"", text)
        assert earlier is not None, text
        quoted = text[earlier.end() - 1:]
        # The quote after "earlier conversation" is the previous turn, whatever this message is.
        assert quoted.startswith(f'"{_quote(previous)}"'), text


def test_fallback_without_the_previous_turn_says_continuing_without_quoting() -> None:
    text = fallback_text(JANE, "what now?", continuing=True)
    assert "Picking up from our earlier conversation." in text
    assert text.count('"what now?"') == 1  # only as the current message


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("hi", MessageKind.GREETING),
        ("Hello there!", MessageKind.GREETING),
        ("good morning Jane", MessageKind.GREETING),
        ("hi, my manager ignores me", MessageKind.PROBLEM),
        ("What is the leave policy?", MessageKind.QUESTION),
        ("can we talk", MessageKind.QUESTION),
        ("My manager ignores me", MessageKind.PROBLEM),
        ("I need a plan for Monday", MessageKind.OTHER),
        ("good luck", MessageKind.OTHER),
    ],
)
def test_message_kinds(message: str, kind: MessageKind) -> None:
    assert message_kind(message) is kind


@pytest.mark.parametrize("persona", PERSONAS, ids=lambda p: p.id)
def test_a_greeting_gets_a_greeting_not_a_condolence_nor_its_own_echo(persona: va.Persona) -> None:
    text = fallback_text(persona, "hi")
    assert '"hi"' not in text and "You asked" not in text and "You wrote" not in text
    assert "sorry" not in text.lower() and "hard situation" not in text
    assert persona.name in text
    assert text.endswith("?")  # it offers something to talk about


def test_jane_says_hello_and_what_she_helps_with() -> None:
    text = fallback_text(JANE, "hi")
    assert text.startswith("Hello. I'm Jane, an HR business partner who helps people with workplace conflicts")
    assert "I'm sorry you're dealing with this" not in text
    assert "workplace conflict, conversations with managers, or something else?" in text


def test_only_a_problem_gets_a_sympathetic_opener() -> None:
    sympathetic = [o for o in JANE.openers if "sorry" in o or "hard" in o or "weigh" in o]
    assert sympathetic
    questions = [f"What does the policy say about topic {n}?" for n in range(40)]
    assert not any(line in fallback_text(JANE, q) for q in questions for line in sympathetic)
    problems = [f"my manager ignores me about topic {n}" for n in range(40)]
    assert any(line in fallback_text(JANE, p) for p in problems for line in sympathetic)


def test_a_quoted_question_is_not_followed_by_a_second_mark() -> None:
    text = fallback_text(JANE, "Can we talk about my performance review?")
    assert 'You asked: "Can we talk about my performance review?" ' in text
    assert '?".' not in text


def test_the_fallback_is_persona_specific() -> None:
    texts = {p.id: fallback_text(p, "hello") for p in PERSONAS}
    assert len(set(texts.values())) == len(texts)
    for persona in PERSONAS:
        others = [p for p in PERSONAS if p.id != persona.id and p.name != persona.name]
        assert not any(f"I'm {o.name}" in texts[persona.id] for o in others)


@pytest.mark.anyio
async def test_the_second_message_of_a_session_quotes_the_first_as_earlier() -> None:
    config = make_config(scripted("p1", default=Step.permanent()))
    async with va.open_runtime(config) as runtime:
        first = await runtime.ask("s", "jane", "my review was unfair")
        second = await runtime.ask("s", "jane", "what should I do now?")
    assert first.fallback_used and second.fallback_used
    assert "earlier conversation" not in first.text
    assert 'Picking up from our earlier conversation, where you wrote "my review was unfair".' in second.text
    assert second.text.count('"what should I do now?"') == 1
    assert 'You asked: "what should I do now?"' in second.text


def _cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], providers: list[Any], *argv: str) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"personas_dir": str(ROOT / "personas"), "providers": providers, "retry_schedule": []}))
    assert main(["ask", "jane", "what now?", "--config", str(path), *argv]) == 0
    return capsys.readouterr().out


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REMOTE = [{"name": "anthropic", "type": "anthropic"}, {"name": "openai", "type": "openai"}]


@pytest.mark.usefixtures("no_keys")
def test_cli_says_no_llm_answered_and_which_keys_and_servers_would_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = f"http://127.0.0.1:{closed_port()}/v1"
    providers = [*REMOTE, {"name": "local", "type": "openai", "base_url": local, "api_key_optional": True}]
    footer = _cli(tmp_path, capsys, [*providers, "persona_fallback"]).strip().split("\n")[-1]
    how = f"set ANTHROPIC_API_KEY or OPENAI_API_KEY, or start the server at {local}"
    assert f"; no LLM answered, this is a template reply (to get one: {how}); anthropic: " in footer
    reply = json.loads(_cli(tmp_path, capsys, [*providers, "persona_fallback"], "--json"))
    assert reply["fallback"] is True and reply["how"] == how
    assert [(w["provider"], w["outcome"], w["fix"]) for w in reply["why"]] == [
        ("anthropic", "unavailable", "set ANTHROPIC_API_KEY"),
        ("openai", "unavailable", "set OPENAI_API_KEY"),
        ("local", "unreachable", f"start the server at {local}"),
    ]
    assert reply["why"][2]["reason"].startswith(f"cannot connect to {local} (connection refused)")


@pytest.mark.usefixtures("no_keys")
def test_cli_with_only_the_fallback_configured_says_to_add_a_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    footer = _cli(tmp_path, capsys, ["persona_fallback"]).strip().split("\n")[-1]
    assert footer.endswith(
        "; no LLM answered, this is a template reply (no LLM provider is configured: add one to config.json)"
    )
    reply = json.loads(_cli(tmp_path, capsys, ["persona_fallback"], "--json"))
    assert (reply["fallback"], reply["why"], reply["how"]) == (True, [], None)


def test_cli_when_an_llm_answered_says_nothing_of_the_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    providers = [{"name": "llm", "type": "scripted", "default": {"kind": "answer", "text": "A real answer."}}]
    out = _cli(tmp_path, capsys, [*providers, "persona_fallback"])
    assert out.startswith("A real answer.\n-- jane via llm") and "no LLM answered" not in out
    reply = json.loads(_cli(tmp_path, capsys, [*providers, "persona_fallback"], "--json"))
    assert (reply["fallback"], reply["why"], reply["how"]) == (False, [], None)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    lines=st.lists(st.sampled_from(["", " ", "I'm so sorry", "Hello there", "ok", "Fine", "sorry, hard"]), max_size=3),
    message=MESSAGES,
)
def test_fallback_never_fails_on_sparse_or_odd_persona_lines(lines: list[str], message: str) -> None:
    persona = va.Persona(id="odd", name="Odd", openers=tuple(lines), closers=tuple(lines))
    text = fallback_text(persona, message)
    assert text.strip() and text == fallback_text(persona, message)
    assert not DOUBLED.search(without_quotes(text, message)), text
