"""config.json: defaults, legacy names, and errors that name the path and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import valis_actors as va


def problems(data: Any) -> list[str]:
    with pytest.raises(va.ConfigError) as info:
        va.Config.from_dict(data)
    assert isinstance(info.value, ValueError)
    return list(info.value.problems)


def test_config_defaults_need_no_file() -> None:
    config = va.Config()
    assert config.retry_schedule == (1.0, 2.0, 4.0)
    assert [p.type for p in config.providers][-1] == "persona_fallback"
    assert va.Config.from_dict({}) == config


def test_repository_config_json_is_valid() -> None:
    config = va.load_config(Path(__file__).parent.parent / "config.json")
    assert [p.type for p in config.providers] == [
        "desktop_commander_mcp", "anthropic", "openai", "hardcoded_fallback"
    ]
    assert Path(config.personas_dir or "").is_absolute()


def test_legacy_provider_names_work_as_strings() -> None:
    config = va.Config.from_dict({"providers": ["desktop_commander_mcp", "anthropic_api", "openai_api"]})
    assert [p.name for p in config.providers] == [
        "desktop_commander_mcp", "anthropic_api", "openai_api", "persona_fallback"
    ]


def test_fallback_is_added_last_when_absent() -> None:
    config = va.Config.from_dict({"providers": [{"type": "openai", "name": "local"}]})
    assert [p.name for p in config.providers] == ["local", "persona_fallback"]


def test_fallback_not_last_is_an_error_saying_move_it() -> None:
    assert problems({"providers": ["hardcoded_fallback", "openai"]}) == [
        "providers[0] the persona fallback must be the last provider; move it to the end @ $.providers[0]"
    ]


def test_negative_retry_delay_names_index_and_value() -> None:
    assert problems({"retry_schedule": [1, -2]}) == [
        "retry_schedule[1] must be >= 0 (got -2.0) @ $.retry_schedule[1]"
    ]


def test_unknown_key_gets_did_you_mean() -> None:
    assert problems({"retry_schedul": [1]}) == ["unknown key 'retry_schedul'; did you mean 'retry_schedule'? @ $"]
    assert problems({"session": {"idle_timout": 3}}) == [
        "unknown key 'idle_timout'; did you mean 'idle_timeout'? @ $.session"
    ]


def test_wrong_types_are_not_coerced() -> None:
    assert problems({"max_concurrent_requests": True}) == [
        "expected an integer, got bool True @ $.max_concurrent_requests"
    ]
    assert problems({"provider_timeout": "10"}) == ["expected a number, got str '10' @ $.provider_timeout"]
    assert problems({"retry_schedule": "1,2"}) == ["expected a list, got str '1,2' @ $.retry_schedule"]


def test_unknown_provider_type_lists_registered_ones() -> None:
    (line,) = problems({"providers": [{"type": "opena"}]})
    assert "unknown provider type 'opena'; did you mean 'openai'?" in line
    assert "registered types:" in line and "anthropic" in line
    assert line.endswith("@ $.providers[0].type")


def test_problems_in_several_sections_are_reported_together() -> None:
    found = problems({"session": {"mailbox_size": 0}, "memory": {"durability": "x"}, "retry_schedule": ["a"]})
    assert sorted(found) == [
        "expected a number, got str 'a' @ $.retry_schedule[0]",
        "memory.durability must be one of 'commit', 'async' (got 'x') @ $.memory.durability",
        "session.mailbox_size must be >= 1 (got 0) @ $.session.mailbox_size",
    ]


def test_duplicate_provider_names_are_refused() -> None:
    (line,) = problems({"providers": ["openai", "openai"]})
    assert "'openai' is used twice" in line


def test_scripted_provider_options_are_validated_with_paths() -> None:
    (line,) = problems({"providers": [{"type": "scripted", "sede": 3}]})
    assert line == "unknown key 'sede'; did you mean 'seed'? @ $.providers[0]"


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "retry_schedule": [1, 2,]\n}\n')
    with pytest.raises(va.ConfigError, match=r"invalid JSON at line 2, column 27"):
        va.load_config(path)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(va.ConfigError, match="no such config file; create it or set VALIS_CONFIG"):
        va.load_config(tmp_path / "nope.json")


def test_valis_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"max_concurrent_requests": 7, "personas_dir": "p"}))
    monkeypatch.setenv("VALIS_CONFIG", str(path))
    config = va.load_config()
    assert config.max_concurrent_requests == 7
    assert config.personas_dir == str(tmp_path / "p")


positive = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)
entries = st.sampled_from(["anthropic", "openai_api", "desktop_commander", {"type": "scripted", "name": "x"}])


@settings(max_examples=100, deadline=None)
@given(
    max_concurrent_requests=st.integers(1, 10_000),
    provider_timeout=positive,
    response_deadline=positive,
    retry_schedule=st.lists(st.floats(0, 1e4, allow_nan=False), max_size=5),
    providers=st.lists(entries, max_size=3, unique_by=lambda e: json.dumps(e)),
    mailbox_size=st.integers(1, 10_000),
    hedge_after=st.none() | positive,
)
def test_valid_configs_round_trip_through_json(**values: Any) -> None:
    data = {k: v for k, v in values.items() if k != "mailbox_size"}
    data["session"] = {"mailbox_size": values["mailbox_size"]}
    config = va.Config.from_dict(data)
    again = va.Config.from_dict(json.loads(json.dumps(config.to_json())))
    assert again == config
    assert again.to_json() == config.to_json()


def test_a_server_section_is_accepted_and_its_keys_are_never_printed() -> None:
    config = va.Config.from_dict({"server": {"api_keys": ["sk-server-secret"], "cors": {"allow_origins": ["*"]}}})
    shown = config.to_json()["server"]
    assert shown == {"api_keys": "***", "cors": {"allow_origins": ["*"]}}
    assert "sk-server-secret" not in repr(config)
