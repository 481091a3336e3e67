"""CHARX archives: a zip with ``card.json`` at its root and assets beside it.

Nothing is ever extracted to disk. The archive is checked as a whole first: the
entry count is capped, and one unsafe member name (absolute, ``..``,
backslashes, drive letters: zip-slip) refuses the whole archive. Then single
members are read into memory, each within its cap, both declared and actual (a
zip bomb costs at most the cap).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._error import CardError
from ._limits import CardLimits
from ._png import PNG_SIGNATURE

__all__ = ["charx_card_json", "charx_icon"]

_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    RuntimeError,  # encrypted members
    NotImplementedError,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    OverflowError,
)
_EMBEDDED = ("embeded://", "embedded://")  # the spec's spelling, and the one people type


def _unsafe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return (
        name.startswith(("/", "\\"))
        or "\\" in name
        or "\0" in name
        or bool(_DRIVE.match(name))
        or ".." in parts
    )


@contextmanager
def _open(data: bytes, source: str, limits: CardLimits) -> Iterator[zipfile.ZipFile]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > limits.max_zip_members:
                raise CardError(
                    source, f"the CHARX archive has {len(members)} entries, over {limits.max_zip_members}"
                )
            for member in members:
                if _unsafe(member.filename):
                    raise CardError(
                        source,
                        f"the CHARX archive has an unsafe path {member.filename[:80]!r} "
                        "(absolute or with '..': zip-slip); refused",
                    )
            yield archive
    except CardError:
        raise
    except _ZIP_ERRORS as exc:
        raise CardError(source, f"not a readable CHARX (zip) archive ({type(exc).__name__}: {exc})") from None


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, source: str) -> bytes:
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CardError(source, f"{info.filename} in the CHARX archive uses an unsupported compression")
    if info.file_size > cap:
        raise CardError(
            source, f"{info.filename} declares {info.file_size} bytes, over the {cap}-byte limit; refused"
        )
    with archive.open(info) as stream:
        raw = stream.read(cap + 1)
    if len(raw) > cap:
        raise CardError(source, f"{info.filename} inflates past the {cap}-byte limit (a zip bomb?); refused")
    return raw


def charx_card_json(data: bytes, source: str, limits: CardLimits) -> bytes:
    """The bytes of ``card.json`` in a CHARX archive.

    Raises:
        CardError: Not a readable zip, zip-slip, no ``card.json``, or over a cap.
    """
    with _open(data, source, limits) as archive:
        info = next((m for m in archive.infolist() if m.filename == "card.json"), None)
        if info is None:
            raise CardError(source, "the CHARX archive has no card.json at its root")
        try:
            return _read(archive, info, limits.max_card_bytes, source)
        except _ZIP_ERRORS as exc:
            raise CardError(
                source, f"card.json in the CHARX archive cannot be read ({type(exc).__name__}: {exc})"
            ) from None


def _icon_path(card_data: Mapping[str, Any]) -> str | None:
    assets = card_data.get("assets")
    icons = [
        a
        for a in (assets if isinstance(assets, list) else ())
        if isinstance(a, dict) and a.get("type") == "icon" and isinstance(a.get("uri"), str)
    ]
    icons.sort(key=lambda a: a.get("name") != "main")  # the main icon first
    for icon in icons:
        uri: str = icon["uri"]
        for prefix in _EMBEDDED:
            if uri.startswith(prefix):
                return uri[len(prefix) :]
    return None


def charx_icon(data: bytes, card_data: Mapping[str, Any], source: str, limits: CardLimits) -> bytes | None:
    """The card's main icon from a CHARX archive when it is an embedded PNG, else None.

    Only ``embeded://`` assets are looked at; URLs are never fetched.

    Raises:
        CardError: The archive is unreadable or unsafe, or the icon is over the file cap.
    """
    path = _icon_path(card_data)
    if path is None:
        return None
    with _open(data, source, limits) as archive:
        info = next((m for m in archive.infolist() if m.filename == path), None)
        if info is None:
            return None
        try:
            image = _read(archive, info, limits.max_file_bytes, source)
        except _ZIP_ERRORS as exc:
            raise CardError(
                source, f"{path} in the CHARX archive cannot be read ({type(exc).__name__}: {exc})"
            ) from None
    return image if image.startswith(PNG_SIGNATURE) else None
