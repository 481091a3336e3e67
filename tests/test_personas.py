"""Personas: the shipped files, broken files, ids, the system prompt, and the fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --- ids: whole-string match, any case -------------------------------------------------------


@pytest.mark.parametrize("bad", ["jane\n", "jane\r\n", "evil\n"])
def test_a_trailing_newline_is_not_part_of_a_valid_id(store: va.PersonaStore, bad: str) -> None:
    with pytest.raises(va.InvalidPersonaIdError):
        store.get(bad)


def test_a_persona_file_with_a_newline_in_its_id_is_reported(tmp_path: Path) -> None:
    (tmp_path / "evil.json").write_text(json.dumps({"id": "evil\n", "name": "E", "aliases": ["ok", "bad\n"]}))
    store = va.PersonaStore.load_dir(tmp_path)
    assert list(store.personas) == []
    assert store.problems == ["evil.json: id 'evil\\n' is not a valid persona id @ $.id"]


@pytest.mark.parametrize("key", ["Jane", "JANE", "jane", "Sam", "ALEX", "Guide_Sam"])
def test_ids_and_aliases_match_in_any_case(store: va.PersonaStore, key: str) -> None:
    expected = {"jane": "jane", "sam": "guide_sam", "alex": "advisor_alex", "guide_sam": "guide_sam"}
    assert store.get(key).id == expected[key.lower()]


def test_unknown_ids_answer_as_neutral_under_their_own_id(store: va.PersonaStore) -> None:
    nobody, other = store.get("Nobody"), store.get("someone")
    assert (nobody.id, other.id) == ("nobody", "someone")  # memory is keyed by persona id: never shared
    assert nobody.name == NEUTRAL.name and nobody.openers == NEUTRAL.openers
    assert store.get("neutral") is NEUTRAL and not store.is_known("nobody")


def test_an_id_that_differs_from_the_file_name_loads_under_its_id_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "max.json").write_text(json.dumps({"id": "mentor_max", "name": "Max"}))
    store = va.PersonaStore.load_dir(tmp_path)
    assert store.problems == []
    assert store.get("mentor_max").name == "Max"
    assert store.warnings == ["max.json: id 'mentor_max' differs from the file name; loaded as 'mentor_max'"]


def test_an_alias_that_is_another_personas_id_gets_a_warning_and_the_id_wins(tmp_path: Path) -> None:
    (tmp_path / "jane.json").write_text(json.dumps({"id": "jane", "name": "Jane"}))
    (tmp_path / "sam.json").write_text(json.dumps({"id": "sam", "name": "Sam", "aliases": ["Jane", "helper"]}))
    (tmp_path / "zed.json").write_text(json.dumps({"id": "zed", "name": "Zed", "aliases": ["helper"]}))
    store = va.PersonaStore.load_dir(tmp_path)
    assert store.get("jane").name == "Jane" and store.get("helper").id == "sam"
    assert store.warnings == [
        "sam.json: alias 'Jane' of 'sam' is the id of 'jane'; it finds 'jane'",
        "zed.json: alias 'helper' of 'zed' is taken by 'sam'; ignored",
    ]


# --- one bad file never stops the others (issue 19, item 5) -------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        {"id": "bad", "name": "B", "language_patterns": [1, 2, 3]},
        {"id": "bad", "name": "B", "language_patterns": "loud"},
        {"id": "bad", "name": "B", "language_patterns": True},
        {"id": "bad", "name": "B", "language_patterns": 7, "common_phrases": ["x"]},
        {"id": "bad", "name": "B", "common_phrases": "x"},
        {"id": "bad", "name": "B", "language_patterns": {"common_phrases": [1]}},
        {"id": "bad", "name": 3},
        {"id": 10**5000, "name": "B"},
        {"id": True, "name": "B"},
        {"id": "bad", "name": "B", "aliases": "b"},
        {"id": "bad", "name": "B", "openers": [None]},
        [1, 2],
        "a persona",
        None,
    ],
)
def test_a_malformed_persona_file_is_a_problem_naming_the_file_and_path(tmp_path: Path, content: object) -> None:
    (tmp_path / "jane.json").write_text(json.dumps({"id": "jane", "name": "Jane"}))
    text = json.dumps(content) if not isinstance(content, dict) or not isinstance(content.get("id"), int) else (
        '{"id": ' + "9" * 5000 + ', "name": "B"}'
    )
    (tmp_path / "bad.json").write_text(text)
    store = va.PersonaStore.load_dir(tmp_path)
    assert list(store.personas) == ["jane"]
    [problem] = store.problems
    assert problem.startswith("bad.json: ") and "@ $" in problem or "unreadable value" in problem, problem


def test_a_lone_surrogate_escape_is_a_problem_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"id": "s", "name": "S", "openers": ["ok", "\\ud83d"]}')
    store = va.PersonaStore.load_dir(tmp_path)
    assert store.problems == ["s.json: text with a lone surrogate (not valid Unicode) @ $.openers[1]"]


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '{"id": "x", "name": ' + "[" * 5000 + "]" * 5000 + "}", "\ud800", b"\xff\xfe".decode("latin-1")]
)
def test_deep_nesting_and_bad_encodings_are_problems(tmp_path: Path, text: str) -> None:
    (tmp_path / "bad.json").write_bytes(text.encode("utf-8", "surrogatepass"))
    store = va.PersonaStore.load_dir(tmp_path)
    [problem] = store.problems
    assert problem.startswith("bad.json: ")


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None, exclude_categories=())),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_fields = st.sampled_from(
    ["id", "name", "aliases", "language_patterns", "common_phrases", "specialties", "openers", "spec", "data"]
)
_persona_like = (
    st.dictionaries(_fields, _json, max_size=6).map(lambda d: {"id": "fz", "name": "F", **d})
    | st.dictionaries(_fields, _json, max_size=6).map(lambda d: {"spec": "chara_card_v2", "data": d})
    | st.dictionaries(_fields, _json, max_size=6).map(lambda d: {"name": "F", "first_mes": "hi", **d})  # V1
    | _json
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_persona_like, raw=st.sampled_from(["", "big", "deep", "nan"]), ascii_only=st.booleans())
def test_fuzz_a_persona_file_loads_or_is_a_problem_never_raises(
    tmp_path: Path, content: object, raw: str, ascii_only: bool
) -> None:
    text = {
        "": None,
        "big": '{"id": "fz", "name": "F", "tone": ' + "7" * 4400 + "}",
        "deep": '{"id": "fz", "name": "F", "language_patterns": ' + "[" * 3000 + "]" * 3000 + "}",
        "nan": '{"id": "fz", "name": NaN, "aliases": [Infinity]}',
    }[raw]
    file = tmp_path / "fz.json"
    file.write_bytes(
        (text if text is not None else json.dumps(content, ensure_ascii=ascii_only)).encode("utf-8", "surrogatepass")
    )
    store = va.PersonaStore.load_dir(tmp_path)
    assert len(store.personas) + len(store.problems) == 1
    assert all(p.startswith("fz.json: ") for p in store.problems)
    for persona in store:  # what loaded is usable end to end
        va.render_system_prompt(persona).encode("utf-8")
        fallback_text(persona, "hello").encode("utf-8")
