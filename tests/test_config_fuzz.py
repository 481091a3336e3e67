"""Fuzzing load_config: any file loads, or raises ConfigError naming the file; nothing else.

Documents are config-shaped (the real keys, each with a plausible or a hostile value)
or any JSON at all: huge integers, deep nesting, NaN and Infinity, lone surrogates,
NUL. A config that loads must also print (``repr``, ``to_json`` as strict JSON), as
``valis config check`` does. Examples: ``hostile.EXAMPLES`` per test (``HYPOTHESIS_PROFILE=deep``
for the long run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import valis_actors as va
import valis_actors.testing  # registers the "scripted" provider type
from valis_actors.providers import provider_class, registered_provider_types

from .hostile import EXAMPLES, TIMEOUT, Raw, dump, json_values, shaped, texts

PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(1, 200) | st.integers(-2, 0),
    "float": st.floats(0.001, 100) | st.integers(1, 100) | st.floats(-1, 0),
    # The enums' valid choices too, so that plausible documents often load.
    "str": texts | st.sampled_from(["sqlite", "memory", "commit", "async", "neutral", "error", "stdin", "argument"]),
    "bool": st.booleans(),
}


def _plausible(type_name: str) -> st.SearchStrategy[Any]:
    options = [strategy for name, strategy in PLAUSIBLE.items() if name in type_name]
    if "None" in type_name:
        options.append(st.none())
    if "tuple" in type_name or "Mapping" in type_name or not options:
        options.append(json_values)
    return st.one_of(options)


def _fields(cls: type) -> dict[str, st.SearchStrategy[Any]]:
    return {f.name: _plausible(str(f.type)) for f in attrs.fields(cls)}


def _entry(type_name: str) -> st.SearchStrategy[Any]:
    options_type = provider_class(type_name).options_type
    fields = {"name": texts | st.sampled_from(["a", "b"]), "type": st.just(type_name), "enabled": st.booleans(),
              "timeout": _plausible("float | None")}
    if options_type is not None:
        fields |= _fields(options_type)
    return shaped(fields) | st.just(type_name)


entries = st.sampled_from(registered_provider_types()).flatmap(_entry)
top = _fields(va.Config)
top |= {
    "retry_schedule": st.lists(_plausible("float"), max_size=4),
    "providers": st.lists(entries, max_size=4),
    "session": shaped(_fields(va.SessionSettings)),
    "memory": shaped(_fields(va.MemorySettings)),
    "personas_dir": texts | st.none(),
}
plausible_top = {**top, "providers": st.lists(st.sampled_from(["anthropic", "openai", "desktop_commander"]),
                                             max_size=2, unique=True),
                 "session": shaped(_fields(va.SessionSettings), hostile=False),
                 "memory": shaped(_fields(va.MemorySettings), hostile=False)}
documents = st.one_of(shaped(top), shaped(top), shaped(plausible_top, hostile=False), json_values)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "config.json"


def _loads_or_config_error(path: Path, raw: bytes) -> None:
    path.write_bytes(raw)
    try:
        config = va.load_config(path)
    except va.ConfigError as exc:
        assert str(path) in str(exc), str(exc)
        event("ConfigError")
        return
    event("loaded")
    repr(config)
    text = json.dumps(config.to_json(), allow_nan=False)  # what `valis config check` prints
    for value in (config.provider_timeout, config.response_deadline, config.session.idle_timeout):
        assert math.isfinite(value) and value > 0
    assert text


@pytest.mark.timeout(TIMEOUT)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
@example({"max_concurrent_requests": Raw("9" * 5000)})
@example({"providers": Raw("[" * 2000 + "]" * 2000)})
@example({"memory": {"path": "a\x00b"}, "personas_dir": "\ud800"})
@example({"provider_timeout": math.nan, "retry_schedule": [math.inf]})
@example({"providers": [{"type": "desktop_commander", "command": ["x\x00"], "env": {"K": "\ud800"}}]})
def test_load_config_loads_or_raises_config_error(config_path: Path, document: Any) -> None:
    _loads_or_config_error(config_path, dump(document).encode("utf-8"))


@pytest.mark.timeout(TIMEOUT)
@settings(max_examples=EXAMPLES // 3, deadline=None)
@given(st.binary(max_size=200) | documents.map(lambda d: dump(d).encode("utf-8")[:-1]))
def test_load_config_survives_any_bytes(config_path: Path, raw: bytes) -> None:
    _loads_or_config_error(config_path, raw)


@pytest.mark.timeout(TIMEOUT)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_config_from_dict_raises_only_config_error(document: Any) -> None:
    # What a program hands Config.from_dict is parsed JSON: Raw leaves are parsed first.
    try:
        data = json.loads(dump(document))
    except (ValueError, RecursionError):
        return  # not JSON Python can read: load_config's tests cover that file
    try:
        va.Config.from_dict(data)
    except va.ConfigError:
        pass
