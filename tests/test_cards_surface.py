"""The cards package's surface: __all__ complete and documented; only stdlib, attrs and the errors module imported."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import valis_actors._cards as cards

PACKAGE = Path(cards.__file__).parent
ALLOWED_INTERNAL = {"valis_actors._errors"}  # the cards know formats, not personas


def test_all_is_complete_and_every_member_documented() -> None:
    public = {name for name in dir(cards) if not name.startswith("_")} - {"annotations"}
    assert set(cards.__all__) == public, public ^ set(cards.__all__)
    assert len(cards.__all__) == len(set(cards.__all__))
    for name in cards.__all__:
        member = getattr(cards, name)
        if callable(member):
            assert member.__doc__, f"{name} has no docstring"


def test_only_the_standard_library_attrs_and_the_errors_module_are_imported() -> None:
    for file in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert f"valis_actors.{node.module}" in ALLOWED_INTERNAL, (file.name, node.module)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = node.module.split(".")[0]
                assert top in sys.stdlib_module_names or top in {"attrs", "__future__"}, (file.name, top)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    assert top in sys.stdlib_module_names or top == "attrs", (file.name, top)


def test_nothing_in_the_package_can_reach_the_network() -> None:
    banned = {"socket", "urllib", "http", "ssl", "httpx", "requests", "aiohttp"}
    for file in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & banned, (file.name, names & banned)
