"""Lorebook selection: keys, secondary keys, depth, case, constant, enabled, order, budget, regex, decorators."""

from __future__ import annotations

import json
from typing import Any

from tests.test_cards_build import v2
from valis_actors._cards import Lorebook, parse_card_bytes, render_card_prompt, render_lore, select_entries
from valis_actors._cards._decorators import parse_decorators
from valis_actors._cards._lorebook import parse_book


def book(*entries: dict[str, Any], **fields: Any) -> Lorebook:
    return parse_book({"entries": list(entries), **fields}, "t.json", "$.character_book")


def entry(content: str, keys: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    return {"keys": list(keys), "content": content, "enabled": True, "insertion_order": 0, **fields}


def chosen(lore: Lorebook, *messages: str, **options: Any) -> list[str]:
    return [e.content for e in select_entries(lore, messages, **options)]


def test_a_key_in_recent_messages_activates_its_entry_once() -> None:
    lore = book(entry("Dragons breathe fire.", ("dragon", "wyrm")), entry("Elves live long.", ("elf",)))
    assert chosen(lore, "a dragon! a wyrm! dragon again") == ["Dragons breathe fire."]
    assert chosen(lore, "nothing here") == []


def test_only_the_last_scan_depth_messages_are_searched() -> None:
    lore = book(entry("Dragons.", ("dragon",)), scan_depth=2)
    assert chosen(lore, "dragon", "b", "c") == []
    assert chosen(lore, "a", "dragon", "c") == ["Dragons."]
    assert chosen(book(entry("Dragons.", ("dragon",)), scan_depth=0), "dragon") == []


def test_case_sensitivity_is_per_entry() -> None:
    lore = book(entry("loose", ("Moon",)), entry("strict", ("Moon",), case_sensitive=True))
    assert chosen(lore, "the moon rises") == ["loose"]
    assert chosen(lore, "the Moon rises") == ["loose", "strict"]


def test_selective_entries_need_a_secondary_key_too() -> None:
    lore = book(entry("Royal dragon.", ("dragon",), selective=True, secondary_keys=["king", "queen"]))
    assert chosen(lore, "a dragon") == []
    assert chosen(lore, "the queen's dragon") == ["Royal dragon."]
    unselective = book(entry("Any dragon.", ("dragon",), selective=False, secondary_keys=["king"]))
    assert chosen(unselective, "a dragon") == ["Any dragon."]


def test_constant_entries_always_and_disabled_or_empty_never() -> None:
    lore = book(
        entry("Always.", constant=True),
        entry("Off.", ("x",), enabled=False, constant=True),
        entry("", ("x",)),
        entry("   ", constant=True),
    )
    assert chosen(lore, "x") == ["Always."]
    assert chosen(lore) == ["Always."]


def test_insertion_order_decides_the_prompt_order() -> None:
    lore = book(
        entry("third", constant=True, insertion_order=30),
        entry("first", constant=True, insertion_order=-1),
        entry("second", constant=True, insertion_order=5),
    )
    assert chosen(lore) == ["first", "second", "third"]
    assert render_lore(lore, []) == "first\nsecond\nthird"


def test_budget_drops_the_lowest_priority_first_and_keeps_the_order() -> None:
    words = "word " * 40  # about 50 tokens each
    lore = book(
        entry("A " + words, constant=True, insertion_order=1, priority=10),
        entry("B " + words, constant=True, insertion_order=2, priority=1),
        entry("C " + words, constant=True, insertion_order=3, priority=5),
        token_budget=110,
    )
    assert [c[0] for c in chosen(lore)] == ["A", "C"]
    assert [c[0] for c in chosen(lore, token_budget=60)] == ["A"]
    assert [c[0] for c in chosen(lore, token_budget=10_000)] == ["A", "B", "C"]


def test_without_priority_the_lowest_insertion_order_is_dropped_first() -> None:
    words = "word " * 40
    lore = book(
        entry("A " + words, constant=True, insertion_order=1),
        entry("B " + words, constant=True, insertion_order=2),
        token_budget=60,
    )
    assert [c[0] for c in chosen(lore)] == ["B"]


def test_regex_keys_slashed_or_use_regex() -> None:
    lore = book(
        entry("slashed", ("/drag(o|00)n/i",)),
        entry("flagged", (r"\bwyrms?\b",), use_regex=True),
        entry("sensitive", ("/Moon/",)),
    )
    assert chosen(lore, "DRAG00N and wyrms") == ["slashed", "flagged"]
    assert chosen(lore, "moon") == [] and chosen(lore, "Moon") == ["sensitive"]


def test_invalid_or_dangerous_regex_keys_never_match() -> None:
    lore = book(
        entry("broken", ("/([a-z/",)),
        entry("nested", ("/(a+)+$/",)),
        entry("alternation", ("/(a|aa)*$/",)),
        entry("long", ("/" + "a" * 400 + "/",)),
    )
    assert chosen(lore, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!" + "a" * 400) == []


def test_decorators_are_parsed_and_stripped_and_unknown_ones_ignored() -> None:
    found, content = parse_decorators(
        "@@depth 4\n@@risu_only 3\n@@@scan_depth 5\n@@future_thing x\n\nThe text.\n"
    )
    assert found == {"depth": "4", "scan_depth": "5"} and content == "The text."
    lore = book(entry("@@role system\n@@nonsense_decorator 12\nFire lore.", ("fire",)))
    assert chosen(lore, "fire") == ["Fire lore."]


def test_fallback_decorators_apply_only_when_the_one_above_is_unknown() -> None:
    found, _ = parse_decorators("@@scan_depth 1\n@@@scan_depth 9\ntext")
    assert found == {"scan_depth": "1"}


def test_activation_decorators() -> None:
    lore = book(
        entry("@@activate\nforced", ("never-said",)),
        entry("@@dont_activate\nsilenced", constant=True),
        entry("@@scan_depth 3\ndeep", ("old",)),
        entry("@@exclude_keys peace\nwar", ("sword",)),
        entry("@@additional_keys night\nnocturne", ("owl",)),
        entry("@@activate_only_after 2\nlater", constant=True),
    )
    assert chosen(lore, "old", "x", "sword and peace, owl") == ["forced", "deep", "later"]
    assert chosen(lore, "sword, owl at night") == ["forced", "war", "nocturne", "later"]
    assert chosen(lore, "x", assistant_turns=1) == ["forced"]
    assert chosen(lore, "x", assistant_turns=2) == ["forced", "later"]


def test_recursive_scanning_lets_entries_trigger_entries() -> None:
    entries = (entry("The dragon guards the crown.", ("dragon",)), entry("The crown is cursed.", ("crown",)))
    assert chosen(book(*entries), "dragon") == ["The dragon guards the crown."]
    assert chosen(book(*entries, recursive_scanning=True), "dragon") == [
        "The dragon guards the crown.",
        "The crown is cursed.",
    ]


def test_entries_land_before_or_after_the_character_in_the_prompt() -> None:
    character_book = {
        "entries": [
            entry("BEFORE {{char}}", constant=True),
            entry("AFTER", constant=True, position="after_char"),
            entry("@@position after_desc\nAFTER-DESC", constant=True),
            entry("KEYED", ("storm",)),
        ]
    }
    card = parse_card_bytes(json.dumps(v2(character_book=character_book)).encode(), "t.json")
    prompt = render_card_prompt(card, messages=["a storm comes"])
    text = prompt.system
    marks = ["BEFORE Mira", "KEYED", "Mira is a lighthouse keeper.", "AFTER-DESC", "Scenario:", "AFTER\n"]
    assert [text.index(m) for m in marks] == sorted(text.index(m) for m in marks)
    assert text.index("AFTER\n") < text.index("Example dialogues")
    assert prompt.lore == ("BEFORE Mira", "AFTER", "AFTER-DESC", "KEYED")  # insertion order
    assert "KEYED" not in render_card_prompt(card, messages=["calm"]).system
