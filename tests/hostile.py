"""Hypothesis strategies for hostile input: JSON documents no parser should crash on.

A document is a tree of Python values plus ``Raw`` leaves, written by :func:`dump`:
``Raw`` is JSON text that ``json.dumps`` cannot produce (an integer past the digit
limit, a literal nested thousands of levels deep, ``1e999``). Strings may hold lone
surrogates (``json.dumps`` writes them as ``\\ud800`` escapes, as a web client would).

Examples per test: ``EXAMPLES`` (modest, for CI); ``HYPOTHESIS_PROFILE=deep`` raises it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs
from hypothesis import strategies as st

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "")
EXAMPLES = {"deep": 10_000}.get(PROFILE, 200)
# The per-test timeout the deep profile needs (pytest's default is 120 s).
TIMEOUT = {"deep": 3_600}.get(PROFILE, 120)


@attrs.frozen
class Raw:
    """JSON text written as it is."""

    text: str


def dump(value: Any) -> str:
    """``value`` as JSON text, ``Raw`` leaves verbatim, NaN and Infinity as Python writes them."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def _nested(depth: int, open_: str, close: str, inner: str = "") -> Raw:
    return Raw(open_ * depth + inner + close * depth)


surrogates = st.integers(0xD800, 0xDFFF).map(chr)
texts = st.text(st.one_of(st.characters(), surrogates, st.sampled_from("\x00\u202e\u200b\ufeff")), max_size=20)
raws = st.one_of(
    st.integers(4_301, 20_000).map(lambda n: Raw("9" * n)),  # past int's default digit limit
    st.integers(300, 4_300).map(lambda n: Raw("-" + "9" * n)),  # parses; no setting takes it
    st.integers(10, 5_000).map(lambda d: _nested(d, "[", "]")),
    st.integers(10, 5_000).map(lambda d: _nested(d, '{"a": ', "}", "1")),
    st.sampled_from([Raw(t) for t in ("1e999", "-1e999", "1E400", "-0", "0.0", "5e-324", "1e308", "NaN", "-Infinity")]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    raws,
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


def shaped(fields: dict[str, st.SearchStrategy[Any]], *, hostile: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of ``fields``: each value plausible or hostile, and now and then stray keys.

    With ``hostile=False`` only the plausible values: documents that often load, so the
    paths after validation (path resolution, printing) are exercised too.
    """
    if not hostile:
        return st.fixed_dictionaries({}, optional=fields)
    return st.fixed_dictionaries(
        {}, optional={key: st.one_of(strategy, json_values) for key, strategy in fields.items()}
    ) | st.dictionaries(st.sampled_from(list(fields)) | texts, json_values, max_size=3)
