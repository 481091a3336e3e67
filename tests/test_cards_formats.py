"""Reading every card format (V1, V2, V3) from every container (JSON, PNG tEXt/zTXt/iTXt, CHARX)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cards_build import charx, chunk, itxt_chunk, png, text_chunk, v1, v2, v3, ztxt_chunk
from valis_actors._cards import Card, CardError, is_card_json, parse_card_bytes, read_card


def parse(data: bytes, source: str = "card.bin") -> Card:
    return parse_card_bytes(data, source)


@pytest.mark.parametrize(
    ("obj", "spec"), [(v1(), "chara_card_v1"), (v2(), "chara_card_v2"), (v3(), "chara_card_v3")]
)
def test_cards_read_from_json_with_their_spec_and_fields(obj: dict[str, object], spec: str) -> None:
    card = parse(json.dumps(obj).encode(), "mira.json")
    assert card.spec == spec and card.name == "Mira" and card.source == "mira.json"
    assert card.description == "{{char}} is a lighthouse keeper."
    assert card.first_mes.startswith("Come in") and card.mes_example.startswith("<START>")
    assert card.raw == obj and card.warnings == ()


def test_v2_reads_data_not_the_top_level_copies_sillytavern_writes() -> None:
    obj = {**v2(), "name": "Old top-level name", "description": "stale", "talkativeness": "0.5", "fav": False}
    card = parse(json.dumps(obj).encode())
    assert card.name == "Mira" and card.description.startswith("{{char}}")
    assert card.raw["talkativeness"] == "0.5"  # unknown keys kept for export


def test_v3_fields_nickname_and_group_greetings() -> None:
    card = parse(json.dumps(v3(nickname="Miri", group_only_greetings=["Hello, all."])).encode())
    assert card.char_name == "Miri" and card.group_only_greetings == ("Hello, all.",)


def test_a_newer_v3_spec_version_imports_with_a_warning() -> None:
    card = parse(json.dumps({**v3(), "spec_version": "3.5"}).encode(), "new.json")
    assert card.spec == "chara_card_v3"
    assert card.warnings and "new.json" in card.warnings[0] and "newer" in card.warnings[0]


def test_a_v4_spec_reads_as_v3_with_a_warning() -> None:
    card = parse(json.dumps({**v3(), "spec": "chara_card_v4", "spec_version": "4.0"}).encode())
    assert card.spec == "chara_card_v3" and card.warnings


def test_a_standalone_lorebook_is_not_a_card() -> None:
    with pytest.raises(CardError, match="lorebook"):
        parse(json.dumps({"spec": "lorebook_v3", "data": {"entries": []}}).encode(), "book.json")


@pytest.mark.parametrize("obj", [v1(), v2(), v3()])
def test_png_tEXt_chara_or_ccv3_holds_the_card(obj: dict[str, object]) -> None:
    keyword = "ccv3" if obj.get("spec") == "chara_card_v3" else "chara"
    card = parse(png(text_chunk(keyword, obj)), "mira.png")
    assert card.raw == obj and card.name == "Mira"


def test_png_with_both_chunks_prefers_ccv3_and_keeps_chara_as_companion() -> None:
    old, new = v2(name="Old"), v3(name="New")
    for order in (
        (text_chunk("chara", old), text_chunk("ccv3", new)),
        (text_chunk("ccv3", new), text_chunk("chara", old)),
    ):
        card = parse(png(*order))
        assert card.name == "New" and card.companion == old


def test_png_keywords_are_case_insensitive() -> None:
    assert parse(png(text_chunk("Chara", v2()))).name == "Mira"
    assert parse(png(text_chunk("CCV3", v3(name="Up")), text_chunk("CHARA", v2()))).name == "Up"


def test_png_zTXt_card_is_inflated() -> None:
    import base64

    card = parse(png(ztxt_chunk("chara", base64.b64encode(json.dumps(v2()).encode()))))
    assert card.name == "Mira"


@pytest.mark.parametrize("compressed", [False, True])
def test_png_iTXt_card_plain_or_compressed(compressed: bool) -> None:
    import base64

    payload = base64.b64encode(json.dumps(v3()).encode())
    assert parse(png(itxt_chunk("ccv3", payload, compressed=compressed))).spec == "chara_card_v3"


def test_png_chunk_holding_json_instead_of_base64_is_accepted() -> None:
    raw_json = chunk(b"tEXt", b"chara\0" + json.dumps(v1()).encode())
    assert parse(png(raw_json)).name == "Mira"


def test_unusable_ccv3_falls_back_to_chara_with_a_warning() -> None:
    bad_ccv3 = chunk(b"tEXt", b"ccv3\0" + b"!!!not base64!!!")
    card = parse(png(bad_ccv3, text_chunk("chara", v2())), "both.png")
    assert card.name == "Mira" and any("ccv3" in w for w in card.warnings)


def test_png_without_a_card_says_so() -> None:
    with pytest.raises(CardError, match=r"plain\.png: .*no 'chara' or 'ccv3'"):
        parse(png(chunk(b"tEXt", b"Comment\0hello")), "plain.png")


def test_charx_reads_card_json_at_the_root() -> None:
    data = charx(
        {
            "card.json": json.dumps(v3()).encode(),
            "assets/icon/images/main.png": png(),
            "module.risum": b"\x00\x01",
        }
    )
    card = parse(data, "mira.charx")
    assert card.spec == "chara_card_v3" and card.raw == v3()


def test_charx_without_card_json_says_so() -> None:
    with pytest.raises(CardError, match=r"x\.charx: .*no card\.json"):
        parse(charx({"sub/card.json": b"{}"}), "x.charx")


def test_read_card_reads_a_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "mira.png"
    path.write_bytes(png(text_chunk("chara", v2())))
    assert read_card(path).source == "mira.png"
    with pytest.raises(CardError, match=r"missing\.json: cannot read"):
        read_card(tmp_path / "missing.json")


def test_is_card_json_tells_cards_from_valis_personas() -> None:
    assert is_card_json(v1()) and is_card_json(v2()) and is_card_json(v3())
    assert not is_card_json({"id": "jane", "name": "Jane", "description": "HR"})
    assert not is_card_json([v1()])


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (v2(description=3), r"\$\.data\.description must be a string \(got int\)"),
        (v2(alternate_greetings="hi"), r"\$\.data\.alternate_greetings must be a list"),
        (v2(alternate_greetings=["a", 2]), r"alternate_greetings\[1\] must be a string"),
        (v2(name=""), r"\$\.data\.name is missing"),
        ({"spec": "chara_card_v2", "data": []}, r"\$\.data must be an object"),
        (
            v2(character_book={"entries": [{"keys": "x", "content": 5}]}),
            r"entries\[0\]\.content must be a string",
        ),
        (
            v2(character_book={"entries": [{"enabled": "yes"}]}),
            r"entries\[0\]\.enabled must be true or false",
        ),
    ],
)
def test_wrong_field_types_name_the_file_and_the_path(obj: dict[str, object], path: str) -> None:
    with pytest.raises(CardError, match=r"^bad\.json: .*" + path):
        parse(json.dumps(obj).encode(), "bad.json")


def test_metadata_of_odd_types_is_shown_not_refused() -> None:
    card = parse(json.dumps(v2(character_version=2, tags=["a", 3], creator=None)).encode())
    assert card.character_version == "2" and card.tags == ("a",) and card.creator == ""


def test_a_newer_v2_spec_version_reads_as_v2_with_a_warning() -> None:
    card = parse(json.dumps({**v2(), "spec_version": "2.1"}).encode(), "v21.json")
    assert card.spec == "chara_card_v2" and card.warnings and "newer than 2.0" in card.warnings[0]
