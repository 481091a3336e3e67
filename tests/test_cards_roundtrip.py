"""Round trips: import then export gives back every field of the original, unknown keys included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_cards_build import card_text_chunks, png, png_chunks, text_chunk, v2, v3
from valis_actors._cards import card_persona_id, card_to_json, card_to_png, parse_card_bytes

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
UNKNOWN = st.dictionaries(st.text(max_size=8).map(lambda k: "x_" + k), JSON, max_size=3)
TEXT = st.text(max_size=40)
ENTRY = st.fixed_dictionaries(
    {
        "keys": st.lists(TEXT, max_size=3),
        "content": TEXT,
        "enabled": st.booleans(),
        "insertion_order": st.integers(-100, 100),
        "extensions": UNKNOWN,
    },
    optional={
        "case_sensitive": st.booleans(),
        "priority": st.integers(0, 100),
        "constant": st.booleans(),
        "selective": st.booleans(),
        "secondary_keys": st.lists(TEXT, max_size=2),
        "id": st.integers(0, 99),
        "comment": TEXT,
        "position": st.sampled_from(["before_char", "after_char"]),
        "use_regex": st.booleans(),
    },
).flatmap(lambda e: UNKNOWN.map(lambda extra: {**extra, **e}))
BOOK = st.fixed_dictionaries(
    {"entries": st.lists(ENTRY, max_size=3), "extensions": UNKNOWN},
    optional={
        "name": TEXT,
        "scan_depth": st.integers(0, 20),
        "token_budget": st.integers(1, 5000),
        "recursive_scanning": st.booleans(),
    },
)
DATA = st.fixed_dictionaries(
    {
        "name": st.text(min_size=1, max_size=20).filter(str.strip),
        "description": TEXT,
        "personality": TEXT,
        "scenario": TEXT,
        "first_mes": TEXT,
        "mes_example": TEXT,
    },
    optional={
        "system_prompt": TEXT,
        "post_history_instructions": TEXT,
        "creator_notes": TEXT,
        "alternate_greetings": st.lists(TEXT, max_size=3),
        "tags": st.lists(TEXT, max_size=3),
        "creator": TEXT,
        "character_version": TEXT,
        "extensions": st.dictionaries(TEXT, JSON, max_size=3),
        "character_book": BOOK,
        "nickname": TEXT,
        "group_only_greetings": st.lists(TEXT, max_size=2),
        "source": st.lists(TEXT, max_size=2),
        "creation_date": st.integers(0, 2**31),
    },
).flatmap(lambda d: UNKNOWN.map(lambda extra: {**extra, **d}))


@st.composite
def cards(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(DATA)
    kind = draw(st.sampled_from(["v1", "v2", "v3", "st_v2"]))
    if kind == "v1":
        return data
    top = draw(UNKNOWN)
    if kind == "st_v2":  # SillyTavern repeats the V1 fields at the top level
        top = {**top, **{k: data[k] for k in ("name", "description", "first_mes")}, "fav": False}
    spec = "chara_card_v3" if kind == "v3" else "chara_card_v2"
    return {**top, "spec": spec, "spec_version": "3.0" if kind == "v3" else "2.0", "data": data}


ROUND_TRIP = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(cards())
def test_json_export_gives_back_the_original_exactly(obj: dict[str, Any]) -> None:
    card = parse_card_bytes(json.dumps(obj).encode(), "c.json")
    exported = card_to_json(card)
    assert json.loads(exported) == obj
    assert parse_card_bytes(exported, "again.json").raw == obj


@ROUND_TRIP
@given(cards())
def test_png_export_keeps_every_field_in_both_chunks(obj: dict[str, Any]) -> None:
    card = parse_card_bytes(json.dumps(obj).encode(), "c.json")
    exported = card_to_png(card)
    chunks = card_text_chunks(exported)
    assert set(chunks) == {"chara", "ccv3"}
    back = parse_card_bytes(exported, "c.png")
    if obj.get("spec") == "chara_card_v3":
        assert chunks["ccv3"] == obj and back.raw == obj
    else:
        assert chunks["chara"] == obj and back.companion == obj  # the original, verbatim
        upgraded = back.raw["data"]
        original = obj if "spec" not in obj else obj["data"]
        assert {k: upgraded[k] for k in original} == original
        assert back.raw["spec"] == "chara_card_v3"
    assert card_persona_id(back) == card_persona_id(card)  # the same id whatever the container
    again = card_to_png(back)
    assert card_text_chunks(again) == chunks  # export of the re-import is a fixed point


def test_png_export_reuses_the_image_and_replaces_old_card_chunks() -> None:
    image = png(text_chunk("chara", v2(name="Old")), text_chunk("CCV3", v3(name="Older")))
    card = parse_card_bytes(json.dumps(v3(name="New")).encode(), "new.json")
    exported = card_to_png(card, image)
    kinds = [kind for kind, _ in png_chunks(exported)]
    assert kinds == [b"IHDR", b"IDAT", b"tEXt", b"tEXt", b"IEND"]
    assert {k: v["data"]["name"] for k, v in card_text_chunks(exported).items()} == {
        "chara": "New",
        "ccv3": "New",
    }


def test_v3_backfill_in_chara_drops_decorators_and_says_v2() -> None:
    book = {
        "entries": [
            {
                "keys": ["k"],
                "content": "@@depth 2\nLore.",
                "enabled": True,
                "insertion_order": 0,
                "extensions": {},
            }
        ],
        "extensions": {},
    }
    card = parse_card_bytes(json.dumps(v3(character_book=book)).encode(), "c.json")
    chara = card_text_chunks(card_to_png(card))["chara"]
    assert chara["spec"] == "chara_card_v2" and chara["spec_version"] == "2.0"
    assert chara["data"]["character_book"]["entries"][0]["content"] == "Lore."
    assert card.raw["data"]["character_book"]["entries"][0]["content"] == "@@depth 2\nLore."  # raw untouched


def test_json_export_as_v2_or_v3() -> None:
    card = parse_card_bytes(json.dumps(v2()).encode(), "c.json")
    assert json.loads(card_to_json(card, spec="v3"))["spec"] == "chara_card_v3"
    assert json.loads(card_to_json(card, spec="v2")) == v2()
