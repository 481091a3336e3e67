"""Personas: the shipped files, broken files, ids, the system prompt, and the fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import valis_actors as va
from valis_actors._personas import NEUTRAL, builtin_personas_dir
from valis_actors._personas._fallback import fallback_text

SHIPPED = {"jane": (), "guide_sam": ("sam",), "advisor_alex": ("alex",), "coach_emma": ("emma",)}


@pytest.fixture(scope="module")
def store() -> va.PersonaStore:
    return va.PersonaStore.load_dir(None)


def test_every_shipped_persona_loads_with_its_aliases(store: va.PersonaStore) -> None:
    assert store.problems == []
    assert {p.id: p.aliases for p in store} == SHIPPED
    for persona_id, aliases in SHIPPED.items():
        for key in (persona_id, *aliases):
            assert store.get(key).id == persona_id


@pytest.mark.parametrize("persona_id", sorted(SHIPPED))
def test_system_prompt_renders_name_tone_approach_specialties_phrases(
    store: va.PersonaStore, persona_id: str
) -> None:
    persona = store.get(persona_id)
    prompt = va.render_system_prompt(persona)
    assert prompt.startswith(f"You are {persona.name}")
    assert persona.tone in prompt and persona.approach in prompt
    assert all(s in prompt for s in persona.specialties)
    assert persona.common_phrases[0] in prompt


@pytest.mark.parametrize("persona_id", sorted(SHIPPED))
def test_fallback_speaks_in_the_personas_own_words(store: va.PersonaStore, persona_id: str) -> None:
    persona = store.get(persona_id)
    text = fallback_text(persona, "I feel stuck at work")
    assert text and "I feel stuck at work" in text
    assert any(phrase in text for phrase in persona.common_phrases)
    assert persona.approach in text
    assert text == fallback_text(persona, "I feel stuck at work")  # deterministic


def test_sam_and_alex_never_get_janes_text(store: va.PersonaStore) -> None:
    jane = store.get("jane")
    jane_lines = {*jane.common_phrases, *jane.openers, *jane.closers, jane.approach}
    for persona_id in ("sam", "alex", "emma"):
        for message in ("help", "my manager ignores me", "what now?", "x" * 500):
            text = fallback_text(store.get(persona_id), message)
            assert not any(line in text for line in jane_lines), (persona_id, message)


def test_fallback_quotes_the_message_capped_and_on_one_line() -> None:
    text = fallback_text(NEUTRAL, "line one\nline two\x00\x1b[31m " + "y" * 500)
    assert "\n" not in text and "\x00" not in text and "\x1b" not in text
    assert "y" * 100 not in text


def test_fallback_acknowledges_continuity() -> None:
    assert "earlier conversation" in fallback_text(NEUTRAL, "hi", continuing=True)


def test_broken_files_are_reported_by_name_and_field_and_others_load(tmp_path: Path) -> None:
    for file in builtin_personas_dir().glob("*.json"):
        (tmp_path / file.name).write_text(file.read_text())
    (tmp_path / "broken.json").write_text("{ not json")
    (tmp_path / "badfield.json").write_text(json.dumps({"id": "badfield", "name": "B", "specialties": "x"}))
    (tmp_path / "noname.json").write_text(json.dumps({"id": "noname"}))
    (tmp_path / "evil.json").write_text(json.dumps({"id": "../evil", "name": "E"}))
    (tmp_path / "legacy.json").write_text(
        json.dumps({"id": "legacy", "name": "L", "common_phrases": ["Old style phrase."], "extra": 1})
    )
    store = va.PersonaStore.load_dir(tmp_path)
    problems = "\n".join(store.problems)
    assert "broken.json: invalid JSON at line 1, column 3" in problems
    assert "badfield.json:" in problems and "$.specialties" in problems
    assert "noname.json:" in problems and "'name'" in problems
    assert "evil.json: id '../evil' is not a valid persona id" in problems
    assert {"jane", "guide_sam", "legacy"} <= {p.id for p in store}
    assert store.get("legacy").common_phrases == ("Old style phrase.",)


def test_missing_personas_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(va.PersonaError, match="is not a directory; create it or fix personas_dir"):
        va.PersonaStore.load_dir(tmp_path / "nope")


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x" * 65, "a b"])
def test_malformed_ids_never_reach_the_file_system(store: va.PersonaStore, bad: str) -> None:
    with pytest.raises(va.InvalidPersonaIdError):
        store.get(bad)
