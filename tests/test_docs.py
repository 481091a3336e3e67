"""Docs stay true: every config key is documented, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from valis_actors._config._schema import config_schema

ROOT = Path(__file__).resolve().parent.parent


def _schema_keys(schema: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, sub in schema.get("properties", {}).items():
        keys.add(prefix + name)
        if sub.get("type") == "object" and "properties" in sub and name != "providers":
            keys |= _schema_keys(sub, f"{prefix}{name}.")
    return keys


def test_every_config_key_is_documented_and_no_other() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.MULTILINE))
    provider_keys = {"name", "type", "enabled", "timeout"}
    assert documented - provider_keys == _schema_keys(config_schema())


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    second = re.search(r"# 2\. .*\n(.+)\n", readme)
    assert second is not None
    test_command = second.group(1).split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == test_command
