"""Matching lorebook keys against the scanned text: plain substrings or regexes.

A key is a regex when the entry says ``use_regex`` or when it is written
``/pattern/flags`` (SillyTavern's form; ``i``, ``m`` and ``s`` are honoured). Card
authors are not trusted: an invalid, over-long or nested-quantifier pattern such
as ``(a+)+`` never matches, as the V3 spec says of invalid patterns. That check
is a heuristic against catastrophic backtracking, not a proof.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

__all__ = ["ScanText", "any_key"]

MAX_PATTERN = 300
_REGEX_KEY = re.compile(r"^/(.+)/([a-z]*)$", re.DOTALL)
# A quantified group holding a quantifier or an alternation: (a+)+, (a|a)*, (x{2,})*
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[+*}|][^()]*\)\s*[+*{]")


class ScanText:
    """The text keys are searched in, with its case-folded form computed once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._folded: str | None = None

    @property
    def folded(self) -> str:
        if self._folded is None:
            self._folded = self.text.casefold()
        return self._folded


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str, flags: int) -> re.Pattern[str] | None:
    if len(pattern) > MAX_PATTERN or _NESTED_QUANTIFIER.search(pattern):
        return None
    try:
        return re.compile(pattern, flags)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None


def _matches(key: str, scan: ScanText, use_regex: bool, case_sensitive: bool) -> bool:
    if not key:
        return False
    slashed = _REGEX_KEY.match(key)
    if slashed or use_regex:
        pattern, letters = (slashed.group(1), slashed.group(2)) if slashed else (key, "")
        # A /pattern/flags key says its own case rule; a bare regex key follows case_sensitive.
        ignore_case = "i" in letters if slashed else not case_sensitive
        flags = re.IGNORECASE if ignore_case else 0
        flags |= (re.MULTILINE if "m" in letters else 0) | (re.DOTALL if "s" in letters else 0)
        compiled = _compile(pattern, flags)
        return compiled is not None and compiled.search(scan.text) is not None
    return key in scan.text if case_sensitive else key.casefold() in scan.folded


def any_key(keys: Iterable[str], scan: ScanText, *, use_regex: bool, case_sensitive: bool) -> bool:
    """Whether any of ``keys`` occurs in ``scan``."""
    return any(_matches(k, scan, use_regex, case_sensitive) for k in keys)
