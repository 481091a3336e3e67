"""docs/embedding.md's error -> HTTP status table agrees with `valis serve` and the support bot; the README lists every error."""

from __future__ import annotations

import re
from pathlib import Path

import valis_actors as va
from examples.support_bot.app import STATUS, status_for
from valis_actors.server._errors import ERROR_MAP

ROOT = Path(__file__).resolve().parent.parent

PUBLIC_ERRORS = sorted(
    name for name in va.__all__ if isinstance(getattr(va, name), type) and issubclass(getattr(va, name), va.ValisError)
)


def section(path: Path, marker: str) -> str:
    return path.read_text().split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]


def server_status(cls: type[va.ValisError]) -> int:
    """The status `valis serve` gives an error of this class (as from_valis_error resolves it)."""
    for base in cls.__mro__:
        if base in ERROR_MAP:
            return ERROR_MAP[base][0]
    return 500


def test_the_status_table_lists_every_public_error_once_with_the_servers_status() -> None:
    table_text = section(ROOT / "docs" / "embedding.md", "status-table")
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \|", table_text, re.MULTILINE)
    table = {name: int(status) for name, status in rows}
    assert len(rows) == len(table)
    assert sorted(table) == PUBLIC_ERRORS
    assert table == {name: server_status(getattr(va, name)) for name in PUBLIC_ERRORS}


def test_the_support_bot_maps_errors_like_the_server() -> None:
    for name in PUBLIC_ERRORS:
        cls = getattr(va, name)
        error = cls.__new__(cls)  # the status depends on the class only
        assert status_for(error) == server_status(cls), name
    assert set(STATUS) <= set(ERROR_MAP)


def test_the_readme_lists_every_public_error() -> None:
    listed = set(re.findall(r"`(\w+Error)`", section(ROOT / "README.md", "error-list"))) - {"ValueError", "LookupError"}
    assert listed == set(PUBLIC_ERRORS) - {"ValisError"}
