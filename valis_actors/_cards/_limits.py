"""Size caps for card files: a hostile card is refused before it costs memory."""

from __future__ import annotations

import attrs

__all__ = ["DEFAULT_LIMITS", "CardLimits"]

_MIB = 1024 * 1024


@attrs.frozen
class CardLimits:
    """How large a card may be, in bytes unless said otherwise.

    The defaults follow the hardened parsers of the ecosystem (about 10 MB file,
    8 MB chunk, 4 MB inflated); a CHARX archive may be larger because it carries
    assets, which are never extracted.

    Attributes:
        max_file_bytes: A ``.json`` or ``.png`` file.
        max_charx_bytes: A ``.charx`` archive (assets included).
        max_chunk_bytes: One PNG chunk.
        max_card_bytes: The card JSON once decoded (after base64, zlib or unzip).
        max_zip_members: Entries in a CHARX archive.
        max_json_depth: Nesting of arrays and objects in the card JSON.
    """

    max_file_bytes: int = 10 * _MIB
    max_charx_bytes: int = 64 * _MIB
    max_chunk_bytes: int = 8 * _MIB
    max_card_bytes: int = 4 * _MIB
    max_zip_members: int = 4096
    max_json_depth: int = 64


DEFAULT_LIMITS = CardLimits()
