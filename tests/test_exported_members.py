"""The public surface: __all__ complete and sorted; no SDK imported by the package."""

from __future__ import annotations

import subprocess
import sys

import valis_actors
import valis_actors.testing


def test_all_is_sorted_and_complete() -> None:
    for module in (valis_actors, valis_actors.testing):
        public = {name for name in dir(module) if not name.startswith("_")}
        public -= {"annotations", "testing", "providers", "cli", "strategies", "server", "observability"}
        assert module.__all__ == sorted(module.__all__)
        assert set(module.__all__) == public, public ^ set(module.__all__)


def test_exported_members_claim_the_public_module() -> None:
    for name in valis_actors.__all__:
        member = getattr(valis_actors, name)
        assert getattr(member, "__doc__", None), f"{name} has no docstring"


def test_import_does_not_import_provider_sdks() -> None:
    code = "import sys, valis_actors; bad = {'openai', 'anthropic', 'httpx', 'aiohttp'} & set(sys.modules); print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "set()"
