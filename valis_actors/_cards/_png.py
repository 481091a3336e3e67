"""PNG/APNG chunks: find the card's text chunks, and write them back.

Only the chunk layer is read (length, type, data, CRC); pixels are never
decoded. Text chunks may be ``tEXt``, ``zTXt`` or ``iTXt``; the compressed
ones are inflated with a cap, so a zlib bomb costs at most the cap.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from ._error import CardError
from ._limits import CardLimits

__all__ = ["CARD_KEYWORDS", "PNG_SIGNATURE", "blank_png", "read_card_chunks", "replace_card_chunks"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")


def _chunks(data: bytes, source: str, limits: CardLimits) -> Iterator[tuple[bytes, bytes, int, int]]:
    """Yield ``(type, payload, start, end)`` per chunk up to and including IEND."""
    if not data.startswith(PNG_SIGNATURE):
        raise CardError(source, "not a PNG file (bad signature)")
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise CardError(source, "truncated PNG: no IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if length > limits.max_chunk_bytes:
            raise CardError(
                source, f"PNG chunk {kind!r} is {length} bytes, over the {limits.max_chunk_bytes}-byte limit"
            )
        end = pos + 12 + length
        if end > len(data):
            raise CardError(source, f"truncated PNG: chunk {kind!r} runs past the end of the file")
        yield kind, data[pos + 8 : pos + 8 + length], pos, end
        if kind == b"IEND":
            return
        pos = end


def _inflate(payload: bytes, source: str, keyword: str, limits: CardLimits) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, limits.max_card_bytes + 1)
    except zlib.error as exc:
        raise CardError(source, f"PNG chunk {keyword!r}: invalid zlib data ({exc})") from None
    if len(out) > limits.max_card_bytes or inflater.unconsumed_tail:
        raise CardError(
            source,
            f"PNG chunk {keyword!r} inflates past the {limits.max_card_bytes}-byte limit (a zlib bomb?); refused",
        )
    return out


def _text_value(kind: bytes, payload: bytes, source: str, limits: CardLimits) -> tuple[str, bytes] | None:
    """The (lower-case keyword, raw text bytes) of a card text chunk, None for other chunks."""
    keyword_bytes, sep, rest = payload.partition(b"\0")
    if not sep:
        return None
    keyword = keyword_bytes.decode("latin-1").lower()
    if keyword not in CARD_KEYWORDS:
        return None
    if kind == b"tEXt":
        return keyword, rest
    if kind == b"zTXt":
        if not rest or rest[0] != 0:
            raise CardError(source, f"zTXt chunk {keyword!r}: unknown compression method")
        return keyword, _inflate(rest[1:], source, keyword, limits)
    # iTXt: flag, method, language\0, translated keyword\0, text (UTF-8, maybe compressed)
    if len(rest) < 2:
        raise CardError(source, f"iTXt chunk {keyword!r} is truncated")
    compressed, method = rest[0], rest[1]
    parts = rest[2:].split(b"\0", 2)
    if len(parts) != 3:
        raise CardError(source, f"iTXt chunk {keyword!r} is truncated")
    text = parts[2]
    if compressed:
        if method != 0:
            raise CardError(source, f"iTXt chunk {keyword!r}: unknown compression method")
        text = _inflate(text, source, keyword, limits)
    return keyword, text


def read_card_chunks(data: bytes, source: str, limits: CardLimits) -> dict[str, bytes]:
    """The card text chunks of a PNG, by lower-case keyword (``ccv3``, ``chara``); the first of each wins.

    Raises:
        CardError: Not a PNG, truncated, a bad CRC on a card chunk, or over a limit.
    """
    found: dict[str, bytes] = {}
    for kind, payload, start, end in _chunks(data, source, limits):
        if kind not in _TEXT_TYPES:
            continue
        value = _text_value(kind, payload, source, limits)
        if value is None or value[0] in found:
            continue
        # Check the CRC only where we read: a corrupt card chunk must not parse as a card.
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(kind + payload) != crc:
            raise CardError(source, f"PNG chunk {value[0]!r} has a bad CRC (the file is corrupt)")
        found[value[0]] = value[1]
    return found


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def blank_png() -> bytes:
    """A valid 1x1 transparent RGBA PNG, for exporting a card that came without an image."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def replace_card_chunks(image: bytes, texts: dict[str, str], source: str, limits: CardLimits) -> bytes:
    """``image`` without its old card chunks, with one ``tEXt`` per item of ``texts`` before IEND.

    Raises:
        CardError: ``image`` is not a readable PNG.
    """
    kept: list[bytes] = [PNG_SIGNATURE]
    for kind, payload, start, end in _chunks(image, source, limits):
        if kind in _TEXT_TYPES and payload.partition(b"\0")[0].decode("latin-1").lower() in CARD_KEYWORDS:
            continue
        if kind == b"IEND":
            kept.extend(
                _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("ascii"))
                for key, value in texts.items()
            )
        kept.append(image[start:end])
    return b"".join(kept)
