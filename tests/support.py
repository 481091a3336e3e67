"""Shared helpers for the test suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import attrs

import valis_actors as va
from valis_actors.testing import ScriptedProvider, Step


def scripted(name: str, *steps: Step, default: Step | None = None, **options: Any) -> dict[str, Any]:
    """A ``scripted`` provider entry for ``providers``."""
    entry: dict[str, Any] = {"name": name, "type": "scripted", **options}
    if steps:
        entry["script"] = [_step_json(s) for s in steps]
    if default is not None:
        entry["default"] = _step_json(default)
    return entry


def _step_json(step: Step) -> dict[str, Any]:
    return attrs.asdict(step)


def make_config(*providers: dict[str, Any] | str, **overrides: Any) -> va.Config:
    """A config with in-process memory, short defaults, and the given providers."""
    data: dict[str, Any] = {
        "providers": list(providers) or [scripted("p1")],
        "memory": {"backend": "memory"},
        "retry_schedule": [1, 2],
        "response_deadline": 30,
        "provider_timeout": 10,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return va.Config.from_dict(data)


def provider(runtime: va.Runtime, name: str = "p1") -> ScriptedProvider:
    p = runtime.provider(name)
    assert isinstance(p, ScriptedProvider)
    return p


async def settle() -> None:
    """Let every task run until all are blocked."""
    await anyio.wait_all_tasks_blocked()


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (polling; bounded by ``timeout``, then TimeoutError)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.002)
