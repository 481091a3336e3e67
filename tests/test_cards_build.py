"""Card fixtures built in code: PNGs assembled with struct+zlib, CHARX zips, card objects.

No downloaded cards: every fixture is made here, so each test says what it carries.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from typing import Any

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, payload: bytes, *, crc: int | None = None) -> bytes:
    value = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", value)


def b64(obj: Any) -> bytes:
    return base64.b64encode(json.dumps(obj).encode())


def text_chunk(keyword: str, obj: Any) -> bytes:
    return chunk(b"tEXt", keyword.encode() + b"\0" + b64(obj))


def ztxt_chunk(keyword: str, payload: bytes) -> bytes:
    return chunk(b"zTXt", keyword.encode() + b"\0\0" + zlib.compress(payload))


def itxt_chunk(keyword: str, payload: bytes, *, compressed: bool = False) -> bytes:
    body = zlib.compress(payload) if compressed else payload
    return chunk(b"iTXt", keyword.encode() + b"\0" + bytes([int(compressed), 0]) + b"en\0\0" + body)


def png(*extra: bytes) -> bytes:
    """A 1x1 grey PNG with ``extra`` chunks before IEND."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + b"".join(extra)
        + chunk(b"IEND", b"")
    )


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, checking lengths and CRCs: a strict reader for our output."""
    assert data.startswith(SIGNATURE)
    pos, out = 8, []
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(kind + payload), kind
        out.append((kind, payload))
        pos += 12 + length
    assert out[0][0] == b"IHDR" and out[-1][0] == b"IEND"
    return out


def card_text_chunks(data: bytes) -> dict[str, Any]:
    found = {}
    for kind, payload in png_chunks(data):
        if kind == b"tEXt":
            key, _, value = payload.partition(b"\0")
            found[key.decode()] = json.loads(base64.b64decode(value))
    return found


def charx(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name), content, compress_type=compression)
    return buffer.getvalue()


def v1(name: str = "Mira", **fields: Any) -> dict[str, Any]:
    card = {
        "name": name,
        "description": "{{char}} is a lighthouse keeper.",
        "personality": "calm, dry humour",
        "scenario": "A storm night.",
        "first_mes": "Come in, {{user}}, out of the rain.",
        "mes_example": "<START>\n{{user}}: Hello?\n{{char}}: The lamp needs oil. Can you hold this?",
    }
    card.update(fields)
    return card


def v2(name: str = "Mira", **fields: Any) -> dict[str, Any]:
    data = {
        **v1(name),
        "creator_notes": "NOTES-NEVER-IN-PROMPT",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": ["Another wet traveller, {{user}}?"],
        "tags": ["TAG-NEVER-IN-PROMPT"],
        "creator": "CREATOR-NEVER-IN-PROMPT",
        "character_version": "1.2",
        "extensions": {"depth_prompt": {"x": 1}},
    }
    data.update(fields)
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


def v3(name: str = "Mira", **fields: Any) -> dict[str, Any]:
    card = v2(
        name,
        group_only_greetings=[],
        nickname="",
        assets=[{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
    )
    card["data"].update(fields)
    return {**card, "spec": "chara_card_v3", "spec_version": "3.0"}


def test_fixture_png_is_well_formed() -> None:
    kinds = [kind for kind, _ in png_chunks(png(text_chunk("chara", v2())))]
    assert kinds == [b"IHDR", b"IDAT", b"tEXt", b"IEND"]
