"""A card as a persona: id, name, fallback words; and the CLI helpers (import, export, show)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cards_build import card_text_chunks, charx, png, text_chunk, v1, v2, v3
from valis_actors._cards import (
    CardError,
    card_persona_id,
    export_card,
    import_cards,
    parse_card_bytes,
    show_card,
)
from valis_actors._personas import (
    PERSONA_ID_PATTERN,
    CardPersona,
    PersonaStore,
    card_to_persona,
    load_card_persona,
)
from valis_actors._personas._fallback import fallback_text

EXAMPLES = (
    "<START>\n{{user}}: Is the lamp lit?\n{{char}}: *trims the wick* Always, before dusk. The sea forgives nothing.\n"
    "Will you stay for tea?\n<START>\n<USER>: Hello, {{char}}.\n<BOT>: Mind the stairs, {{user}}. Salt makes them slick."
)


def card_of(obj: dict[str, object]) -> CardPersona:
    return CardPersona.from_card(parse_card_bytes(json.dumps(obj).encode(), "t.json"))


def test_persona_id_is_a_slug_plus_a_stable_hash() -> None:
    card = card_of(v2(name="Élise d'Arc")).card
    persona_id = card_persona_id(card)
    assert persona_id.startswith("elise_d_arc-") and len(persona_id.rsplit("-", 1)[1]) == 8
    assert PERSONA_ID_PATTERN.match(persona_id)
    assert persona_id == card_persona_id(card_of(v2(name="Élise d'Arc")).card)
    assert persona_id != card_persona_id(card_of(v2(name="Élise d'Arc", description="changed")).card)


def test_persona_id_is_valid_for_any_name() -> None:
    for name in ("セラフィナ", "!!!", "a" * 300, "Zoë 2.0"):
        persona_id = card_persona_id(card_of(v2(name=name)).card)
        assert PERSONA_ID_PATTERN.match(persona_id), persona_id


def test_persona_name_is_the_nickname_or_the_name() -> None:
    assert card_of(v3(nickname="Miri")).persona.name == "Miri"
    assert card_of(v2()).persona.name == "Mira"
    assert card_of(v2()).persona.aliases == ("mira",)


def test_fallback_words_come_from_the_examples_and_personality() -> None:
    persona = card_of(v2(mes_example=EXAMPLES, personality="calm, dry humour, patient")).persona
    assert persona.common_phrases == (
        "Always, before dusk.",
        "The sea forgives nothing.",
        "Salt makes them slick.",
    )
    assert not any("{{" in p or "User" in p or "*" in p for p in persona.common_phrases)
    assert persona.closers == ("Will you stay for tea?",)
    assert persona.tone == "calm, dry humour, patient"
    assert persona.personality_traits == ("calm", "dry humour", "patient")
    assert persona.openers == ()  # the only greeting names the user: not a reusable line
    assert (
        persona.language_patterns.question_style == 'Asks in their own voice, e.g. "Will you stay for tea?"'
    )
    text = fallback_text(persona, "Is it safe?")
    assert "Will you stay for tea?" in text and any(p in text for p in persona.common_phrases)


def test_fallback_openers_come_from_the_greetings() -> None:
    persona = card_of(v2(first_mes="*waves* Welcome to the lighthouse. Sit.", alternate_greetings=[])).persona
    assert persona.openers == ("Welcome to the lighthouse.",)
    assert fallback_text(persona, "hi").startswith("Welcome to the lighthouse.")


def test_fallback_for_a_bare_card_uses_neutral_words() -> None:
    persona = card_of(v1(mes_example="", personality="", first_mes="")).persona
    text = fallback_text(persona, "tell me about the sea")
    assert text and "tell me about the sea" in text


def test_card_prompt_and_greeting_through_card_persona() -> None:
    card = card_of(v2())
    assert card.prompt(user="Ann").system.startswith(
        "Write Mira's next reply in a fictional chat between Mira and Ann"
    )
    assert card.greeting("s1", user="Ann") == "Come in, Ann, out of the rain."


def test_card_personas_sit_in_a_persona_store() -> None:
    card = card_of(v2())
    store = PersonaStore.from_personas([card.persona])
    assert store.get(card.persona.id) is card.persona and store.get("mira") is card.persona


@pytest.fixture
def cards_dir(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "personas").mkdir()
    (tmp_path / "in" / "mira.png").write_bytes(png(text_chunk("chara", v2())))
    (tmp_path / "in" / "nox.json").write_text(json.dumps(v3(name="Nox")))
    (tmp_path / "in" / "box.charx").write_bytes(charx({"card.json": json.dumps(v3(name="Box")).encode()}))
    (tmp_path / "in" / "bad.json").write_text("{not json")
    return tmp_path


def test_import_copies_cards_byte_for_byte_and_reports_bad_ones(cards_dir: Path) -> None:
    sources = sorted((cards_dir / "in").iterdir())
    results = import_cards(sources, cards_dir / "personas")
    by_name = {r.source.name: r for r in results}
    assert by_name["bad.json"].problem and by_name["bad.json"].problem.startswith("bad.json: ")
    for name in ("mira.png", "nox.json", "box.charx"):
        result = by_name[name]
        assert result.copied and result.path is not None and result.problem is None
        assert result.path.read_bytes() == (cards_dir / "in" / name).read_bytes()
        assert result.path.name == f"{result.persona_id}{Path(name).suffix}"
        assert load_card_persona(result.path).persona.id == result.persona_id
    again = import_cards(sources, cards_dir / "personas")
    assert not any(r.copied for r in again)  # identical files are left alone


def test_import_refuses_to_overwrite_a_different_file(cards_dir: Path) -> None:
    [result] = import_cards([cards_dir / "in" / "nox.json"], cards_dir / "personas")
    assert result.path is not None
    result.path.write_text(json.dumps(v3(name="Nox")) + " ")
    [clash] = import_cards([cards_dir / "in" / "nox.json"], cards_dir / "personas")
    assert clash.problem and "already exists" in clash.problem
    [replaced] = import_cards([cards_dir / "in" / "nox.json"], cards_dir / "personas", replace=True)
    assert replaced.copied


def test_import_into_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="does not exist"):
        import_cards([], tmp_path / "nope")


def test_export_json_is_lossless_and_png_reuses_the_image(cards_dir: Path) -> None:
    source = cards_dir / "in" / "mira.png"
    assert json.loads(export_card(source, "json")) == v2()
    exported = export_card(source, "png")
    assert card_text_chunks(exported)["chara"] == v2()
    assert export_card(cards_dir / "in" / "nox.json", "png").startswith(b"\x89PNG")
    with pytest.raises(CardError, match="unknown export format 'gif'"):
        export_card(source, "gif")


def test_png_export_of_a_charx_uses_its_embedded_icon(tmp_path: Path) -> None:
    icon = png(b"")  # a distinct 1x1 grey image
    obj = v3(
        name="Box",
        assets=[
            {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"}
        ],
    )
    path = tmp_path / "box.charx"
    path.write_bytes(charx({"card.json": json.dumps(obj).encode(), "assets/icon/images/main.png": icon}))
    exported = export_card(path, "png")
    assert exported.startswith(icon[: icon.index(b"IEND") - 4])  # the icon's chunks, then the card's
    assert card_text_chunks(exported)["ccv3"] == obj
    url_only = v3(
        assets=[{"type": "icon", "uri": "https://example.invalid/x.png", "name": "main", "ext": "png"}]
    )
    path.write_bytes(charx({"card.json": json.dumps(url_only).encode()}))
    assert card_text_chunks(export_card(path, "png"))["ccv3"] == url_only  # blank image; nothing fetched


def test_show_renders_the_prompt_authors_see(cards_dir: Path) -> None:
    text = show_card(cards_dir / "in" / "mira.png", user="Ann")
    assert text.startswith("Write Mira's next reply") and "[the conversation so far goes here]" in text
    assert "NOTES-NEVER-IN-PROMPT" not in text
    with pytest.raises(CardError, match=r"^bad\.json: "):
        show_card(cards_dir / "in" / "bad.json")


def test_persona_of_every_card_kind_is_usable() -> None:
    for obj in (v1(), v2(), v3()):
        persona = card_to_persona(parse_card_bytes(json.dumps(obj).encode(), "k.json"))
        assert persona.name == "Mira" and fallback_text(persona, "hi")


def test_a_folder_loads_its_cards_beside_persona_files_and_reports_bad_ones(cards_dir: Path) -> None:
    folder = cards_dir / "in"
    (folder / "jane.json").write_text(json.dumps({"id": "jane", "name": "Jane"}))  # a VALIS persona
    (folder / "broken.png").write_bytes(png()[:30])
    (folder / "copy.json").write_text(json.dumps(v3(name="Nox")))
    (folder / "newer.json").write_text(json.dumps({**v3(name="Neo"), "spec_version": "3.9"}))
    (folder / "notes.txt").write_text("ignored")
    loaded = PersonaStore.load_dir(folder)
    assert sorted(c.persona.name for c in loaded.cards.values()) == ["Box", "Mira", "Neo", "Nox"]
    assert loaded.get("jane").name == "Jane" and "jane" not in loaded.cards
    assert [line.split(":")[0] for line in loaded.problems] == ["bad.json", "broken.png", "nox.json"]
    assert "the same card as copy.json" in loaded.problems[2]
    assert [w for w in loaded.warnings if w.startswith("newer.json: ")]
    assert all(c.path is not None and c.path.parent == folder for c in loaded.cards.values())
