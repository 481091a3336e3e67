"""The testing kit's install story: the `testing` extra, and import errors that name it."""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

import pytest

from valis_actors.testing import run_on_virtual_time

ROOT = Path(__file__).resolve().parent.parent
HINT = 'pip install "valis_actors[testing]"'


def extras() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["optional-dependencies"]  # type: ignore[no-any-return]


def test_the_testing_extra_holds_what_the_kit_imports_and_the_test_extra_includes_it() -> None:
    names = sorted(spec.split(">")[0].split("[")[0] for spec in extras()["testing"])
    assert names == ["hypothesis", "looptime", "trio"]
    assert "valis_actors[testing]" in extras()["test"]


def test_strategies_without_hypothesis_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    monkeypatch.setitem(sys.modules, "hypothesis.strategies", None)
    monkeypatch.delitem(sys.modules, "valis_actors.testing.strategies", raising=False)
    with pytest.raises(ModuleNotFoundError) as caught:
        importlib.import_module("valis_actors.testing.strategies")
    message = str(caught.value)
    assert "valis_actors.testing.strategies needs hypothesis" in message
    assert HINT in message
    assert caught.value.name == "hypothesis"


async def nothing() -> int:
    return 1


@pytest.mark.parametrize(
    ("backend", "modules", "package"),
    [
        ("trio", ["trio", "trio.testing"], "trio"),
        ("asyncio", ["looptime"], "looptime"),
    ],
)
def test_run_on_virtual_time_without_its_backend_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, backend: str, modules: list[str], package: str
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ModuleNotFoundError) as caught:
        run_on_virtual_time(nothing, backend=backend)
    message = str(caught.value)
    assert f"run_on_virtual_time(backend={backend!r})" in message
    assert f"needs {package}" in message
    assert HINT in message


def test_the_default_backend_is_trio_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trio.testing", None)
    with pytest.raises(ModuleNotFoundError, match=r"backend='trio'\) \(the default\)"):
        run_on_virtual_time(nothing)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_on_virtual_time_runs_with_the_extra_installed(backend: str) -> None:
    assert run_on_virtual_time(nothing, backend=backend) == 1
