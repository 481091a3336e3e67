"""Hostile card files: bombs, zip-slip, oversized parts, broken encodings; and fuzzing.

Every failure must be one ``CardError`` naming the file, never another exception.
"""

from __future__ import annotations

import base64
import json
import struct
import zipfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_cards_build import charx, chunk, png, text_chunk, v2, v3, ztxt_chunk
from valis_actors import PersonaError
from valis_actors._cards import (
    CardError,
    CardLimits,
    card_to_json,
    card_to_png,
    greeting_for_session,
    parse_card_bytes,
    render_card_prompt,
)
from valis_actors._personas import card_to_persona

MIB = 1024 * 1024


def refused(data: bytes, source: str, match: str, limits: CardLimits | None = None) -> CardError:
    with pytest.raises(CardError, match=match) as info:
        parse_card_bytes(data, source, limits=limits or CardLimits())
    assert str(info.value).startswith(f"{source}: ")
    return info.value


def test_card_error_is_a_persona_error_with_source_and_problem() -> None:
    error = refused(b"{", "x.json", "not valid JSON")
    assert isinstance(error, PersonaError) and error.source == "x.json" and "line 1" in error.problem


def test_ztxt_bomb_is_refused() -> None:
    bomb = ztxt_chunk("chara", b"A" * (5 * MIB))  # about 5 KB on disk
    assert len(bomb) < 64 * 1024
    refused(png(bomb), "bomb.png", "inflates past the 4194304-byte limit")


def test_itxt_bomb_is_refused() -> None:
    import zlib

    payload = b"ccv3\0\x01\x00\0\0" + zlib.compress(b"A" * (5 * MIB))
    refused(png(chunk(b"iTXt", payload)), "bomb.png", "zlib bomb")


def test_zip_bomb_card_json_is_refused() -> None:
    refused(charx({"card.json": b" " * (5 * MIB)}), "bomb.charx", "over the 4194304-byte limit")


def test_zip_member_inflating_past_a_small_cap_is_refused() -> None:
    data = charx({"card.json": json.dumps(v3(description="x" * 5000)).encode()})
    refused(data, "big.charx", "over the 1000-byte limit", CardLimits(max_card_bytes=1000))


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "assets/../../x", "C:/windows/x", "a\\..\\b"])
def test_zip_slip_paths_are_refused(name: str) -> None:
    data = charx({"card.json": json.dumps(v3()).encode(), name: b"x"})
    refused(data, "slip.charx", "zip-slip")


def test_unsupported_zip_compression_is_refused() -> None:
    data = charx({"card.json": json.dumps(v3()).encode()}, compression=zipfile.ZIP_BZIP2)
    refused(data, "bz.charx", "unsupported compression")


def test_corrupt_zip_is_refused() -> None:
    data = charx({"card.json": json.dumps(v3()).encode()})
    refused(data[:40] + b"\xff" * 20 + data[60:], "broken.charx", "CHARX|JSON|UTF-8")


def test_file_over_the_size_cap_is_refused() -> None:
    data = json.dumps(v2(description="x" * 2000)).encode()
    refused(data, "big.json", "over the 1000-byte limit", CardLimits(max_file_bytes=1000))


def test_png_chunk_length_over_the_cap_is_refused_before_reading() -> None:
    huge = struct.pack(">I", 9 * MIB) + b"tEXt" + b"chara\0"
    refused(png()[:-12] + huge, "chunk.png", "over the 8388608-byte limit")


def test_truncated_png_is_refused() -> None:
    data = png(text_chunk("chara", v2()))
    refused(data[: len(data) // 2], "cut.png", "truncated PNG")


def test_bad_crc_on_the_card_chunk_is_refused() -> None:
    payload = b"chara\0" + base64.b64encode(json.dumps(v2()).encode())
    refused(png(chunk(b"tEXt", payload, crc=1)), "crc.png", "bad CRC")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"name": "\xff\xfe"}', r"not valid UTF-8 \(at byte"),
        (b'{"name": "Mira",}', r"not valid JSON: .* at line 1, column"),
        (b"[" * 200_000, "nests too deeply|deeper than"),
        (b'{"name": 1' + b"1" * 5000 + b"}", "unreadable value"),
        (b'"just a string"', "must be a JSON object"),
        (b'{"name": "M", "extensions": {"x": 1e400}}', "out of range"),
        (b'{"name": "M", "extensions": {"x": NaN}}', "NaN is not JSON"),
    ],
)
def test_broken_json_is_named_with_the_file(data: bytes, match: str) -> None:
    refused(data, "broken.json", match)


def test_invalid_base64_in_the_chunk_is_named() -> None:
    refused(png(chunk(b"tEXt", b"chara\0" + b"@@@@")), "b64.png", "'chara' chunk is not valid base64")


def test_invalid_utf8_inside_base64_is_named() -> None:
    refused(
        png(chunk(b"tEXt", b"chara\0" + base64.b64encode(b"\xff\xff"))),
        "u.png",
        "'chara' chunk is not valid UTF-8",
    )


def test_urls_in_assets_and_source_are_kept_as_data() -> None:
    # Nothing is fetched: the card reads without a network and keeps the URLs for export.
    obj = v3(
        assets=[{"type": "icon", "uri": "https://example.invalid/x.png", "name": "main", "ext": "png"}],
        source=["https://example.invalid/card"],
    )
    card = parse_card_bytes(json.dumps(obj).encode(), "urls.json")
    assert json.loads(card_to_json(card)) == obj


def _exercise(card: Any) -> None:
    render_card_prompt(card, user="U", session_id="s", messages=["hello", "key"])
    greeting_for_session(card, "s", index=None)
    card_to_persona(card)
    for blob in (card_to_json(card), card_to_png(card)):
        parse_card_bytes(blob, "again")


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes_load_or_raise_card_error(data: bytes) -> None:
    try:
        card = parse_card_bytes(data, "fuzz.bin")
    except CardError as exc:
        assert str(exc).startswith("fuzz.bin: ")
        return
    _exercise(card)


@FUZZ
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=400), st.binary(max_size=16))
def test_fuzz_damaged_pngs_and_zips_load_or_raise_card_error(prefix: bytes, cut: int, junk: bytes) -> None:
    for good in (png(text_chunk("chara", v2())), charx({"card.json": json.dumps(v3()).encode()})):
        damaged = good[:cut] + junk + good[cut + len(junk) :]
        for data in (damaged, good[:cut], good[:8] + prefix + good[8:]):
            try:
                parse_card_bytes(data, "damaged")
            except CardError:
                pass


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = [
    "name",
    "nickname",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "system_prompt",
    "post_history_instructions",
    "alternate_greetings",
    "group_only_greetings",
    "tags",
    "character_book",
    "creator_notes",
    "extensions",
]
BOOK = st.fixed_dictionaries(
    {},
    optional={
        "scan_depth": JSON,
        "token_budget": JSON,
        "recursive_scanning": JSON,
        "entries": st.lists(
            st.dictionaries(
                st.sampled_from(
                    [
                        "keys",
                        "content",
                        "enabled",
                        "constant",
                        "selective",
                        "secondary_keys",
                        "priority",
                        "insertion_order",
                        "use_regex",
                        "case_sensitive",
                        "position",
                    ]
                ),
                JSON | st.text(max_size=30),
                max_size=8,
            ),
            max_size=4,
        ),
    },
)
CARD_FIELDS = st.dictionaries(st.sampled_from(FIELDS), JSON | st.text(max_size=40), max_size=10).map(
    lambda d: {"name": "N", **d}
)


@FUZZ
@given(JSON)
def test_fuzz_arbitrary_json_loads_or_raises_card_error(value: Any) -> None:
    try:
        card = parse_card_bytes(json.dumps(value).encode(), "fuzz.json")
    except CardError:
        return
    _exercise(card)


@FUZZ
@given(st.sampled_from([None, "chara_card_v2", "chara_card_v3", "chara_card_v9", 3]), CARD_FIELDS, BOOK)
def test_fuzz_card_shaped_json_loads_or_raises_card_error(
    spec: Any, fields: dict[str, Any], book: Any
) -> None:
    fields = {**fields, "character_book": book} if "character_book" in fields else fields
    obj = fields if spec is None else {"spec": spec, "spec_version": "x", "data": fields}
    try:
        card = parse_card_bytes(json.dumps(obj).encode(), "shaped.json")
    except CardError:
        return
    _exercise(card)


def test_a_lone_surrogate_escape_is_refused() -> None:
    text = json.dumps(v2(description="caf\ud800")).encode()  # ensure_ascii: written as an escape
    refused(text, "s.json", "lone surrogate")
