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


def test_load_config_search_order_explicit_env_cwd_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("explicit.json", 1), ("env.json", 2), ("config.json", 3)):
        (tmp_path / name).write_text(json.dumps({"max_concurrent_requests": value}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VALIS_CONFIG", str(tmp_path / "env.json"))
    assert va.load_config(tmp_path / "explicit.json").max_concurrent_requests == 1
    assert va.load_config().max_concurrent_requests == 2
    monkeypatch.delenv("VALIS_CONFIG")
    assert va.load_config().max_concurrent_requests == 3
    (tmp_path / "config.json").unlink()
    assert va.load_config() == va.Config()  # no file anywhere: the defaults, not an error


def test_every_problem_is_reported_in_one_pass() -> None:
    assert problems({"retry_schedule": [1, -2, -3], "session": {"idle_timout": 5, "mailbox_size": 0},
                     "memory": {"durability": "sync"}, "provider_timeout": "20"}) == [
        "expected a number, got str '20' @ $.provider_timeout",
        "retry_schedule[1] must be >= 0 (got -2.0) @ $.retry_schedule[1]",
        "retry_schedule[2] must be >= 0 (got -3.0) @ $.retry_schedule[2]",
        "unknown key 'idle_timout'; did you mean 'idle_timeout'? @ $.session",
        "session.mailbox_size must be >= 1 (got 0) @ $.session.mailbox_size",
        "memory.durability must be one of 'commit', 'async' (got 'sync'); did you mean 'async'? @ $.memory.durability",
    ]


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


def load_text(tmp_path: Path, text: str | bytes) -> va.Config:
    path = tmp_path / "config.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return va.load_config(path)


def config_error(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(va.ConfigError) as info:
        load_text(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "config.json") in message, message  # every error names the file
    return message


def test_an_integer_past_the_digit_limit_is_a_config_error(tmp_path: Path) -> None:
    message = config_error(tmp_path, '{"max_concurrent_requests": ' + "9" * 5000 + "}")
    assert "integer with more than" in message


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_nesting_past_the_parser_limit_is_a_config_error(tmp_path: Path, depth: int) -> None:
    message = config_error(tmp_path, '{"providers": ' + "[" * depth + "]" * depth + "}")
    assert "nested" in message


@pytest.mark.parametrize("key", ["provider_timeout", "response_deadline", "circuit_breaker_timeout", "hedge_after"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_numbers_of_seconds(tmp_path: Path, key: str, value: str) -> None:
    message = config_error(tmp_path, f'{{"{key}": {value}}}')
    assert f"@ $.{key}" in message and "finite" in message


def test_nan_in_a_list_and_in_a_section_names_the_path(tmp_path: Path) -> None:
    text = '{"retry_schedule": [1, NaN], "session": {"idle_timeout": Infinity}}'
    message = config_error(tmp_path, text)
    assert "@ $.retry_schedule[1]" in message and "@ $.session.idle_timeout" in message


def test_integers_too_large_for_any_use_are_refused(tmp_path: Path) -> None:
    message = config_error(tmp_path, '{"memory": {"max_turns": ' + "9" * 40 + "}}")
    assert "@ $.memory.max_turns" in message
    message = config_error(tmp_path, '{"provider_timeout": 1' + "0" * 400 + "}")
    assert "@ $.provider_timeout" in message


@pytest.mark.parametrize("key", ["memory.path", "personas_dir"])
@pytest.mark.parametrize("bad", ["a\\u0000b", "\\ud800", ""])
def test_paths_that_cannot_name_a_file_are_config_errors(tmp_path: Path, key: str, bad: str) -> None:
    section, _, name = key.rpartition(".")
    inner = f'"{name}": "{bad}"'
    text = f'{{"{section}": {{{inner}}}}}' if section else f"{{{inner}}}"
    message = config_error(tmp_path, text)
    assert f"@ $.{key}" in message


def test_a_nul_in_the_config_path_itself_is_a_config_error() -> None:
    with pytest.raises(va.ConfigError, match="cannot read the config file"):
        va.load_config("con\x00fig.json")


@pytest.mark.parametrize(
    "text",
    [b"\xff\xfe{}", '{"a": "\\ud800"}', '"just a string"', "[]", "null", "{" * 50, '{"session": 1e999}'],
)
def test_anything_else_is_a_config_error_naming_the_file(tmp_path: Path, text: str | bytes) -> None:
    config_error(tmp_path, text)
