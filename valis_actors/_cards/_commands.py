"""What the CLI's ``valis personas import|export|show`` do, as plain functions.

Blocking (file I/O): the CLI calls them directly; inside the event loop run them
in a worker thread. They never touch the network.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from ._card import card_persona_id
from ._charx import charx_icon
from ._error import CardError
from ._limits import DEFAULT_LIMITS, CardLimits
from ._png import PNG_SIGNATURE
from ._prompt import DEFAULT_USER, render_card_prompt
from ._read import parse_card_bytes, read_card, read_card_bytes
from ._write import card_to_json, card_to_png

__all__ = [
    "CARD_SUFFIXES",
    "ImportResult",
    "export_card",
    "import_cards",
    "show_card",
]

CARD_SUFFIXES = (".json", ".png", ".apng", ".charx")


@attrs.frozen
class ImportResult:
    """The outcome of importing one file.

    Attributes:
        source: The file given.
        persona_id: The card's persona id (None when it failed).
        path: Where the card now lives in the personas folder (None when it failed).
        problem: Why it failed, naming the file (None on success).
        copied: False when an identical file was already there.
    """

    source: Path
    persona_id: str | None = None
    path: Path | None = None
    problem: str | None = None
    copied: bool = False


def _suffix(data: bytes) -> str:
    return ".png" if data.startswith(PNG_SIGNATURE) else ".charx" if data.startswith(b"PK") else ".json"


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".import-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_cards(
    paths: Iterable[str | Path],
    personas_dir: str | Path,
    *,
    replace: bool = False,
    limits: CardLimits = DEFAULT_LIMITS,
) -> list[ImportResult]:
    """Copy card files into ``personas_dir`` as ``<persona id>.<json|png|charx>``, byte for byte.

    Each file is parsed first; a bad one is reported in its result and the others still import.

    Args:
        paths: Card files.
        personas_dir: The personas folder (must exist).
        replace: Overwrite a different file already at the target name.
        limits: Size caps.

    Raises:
        CardError: ``personas_dir`` is not a directory.
    """
    folder = Path(personas_dir)
    if not folder.is_dir():
        raise CardError(str(folder), "the personas folder does not exist; create it or fix personas_dir")
    results: list[ImportResult] = []
    for given in paths:
        source = Path(given)
        try:
            data = read_card_bytes(source, limits=limits)
            persona_id = card_persona_id(parse_card_bytes(data, source.name, limits=limits))
            target = folder / f"{persona_id}{_suffix(data)}"
            if target.exists() and target.read_bytes() == data:
                results.append(ImportResult(source, persona_id, target))
                continue
            if target.exists() and not replace:
                raise CardError(
                    source.name,
                    f"{target.name} already exists in the personas folder with other "
                    "content; pass replace=True (--replace) to overwrite it",
                )
            _write_atomically(target, data)
            results.append(ImportResult(source, persona_id, target, copied=True))
        except CardError as exc:
            results.append(ImportResult(source, problem=str(exc)))
        except OSError as exc:
            results.append(
                ImportResult(source, problem=f"{source.name}: cannot import ({exc.strerror or exc})")
            )
    return results


def export_card(
    card_file: str | Path, fmt: str, *, spec: str = "raw", limits: CardLimits = DEFAULT_LIMITS
) -> bytes:
    """A card file exported as ``json`` or ``png``.

    A PNG export reuses the card's picture: the file itself when it is a PNG, the embedded main icon
    of a CHARX archive when that is a PNG, else a 1x1 blank image.

    Args:
        card_file: The card in the personas folder.
        fmt: ``"json"`` or ``"png"``.
        spec: For JSON: ``"raw"`` (lossless), ``"v2"`` or ``"v3"``.
        limits: Size caps.

    Raises:
        CardError: Unknown format, or the file is not a usable card.
    """
    if fmt not in ("json", "png"):
        raise CardError(Path(card_file).name, f"unknown export format {fmt!r}; use json or png")
    data = read_card_bytes(card_file, limits=limits)
    card = parse_card_bytes(data, Path(card_file).name, limits=limits)
    if fmt == "json":
        return card_to_json(card, spec=spec)
    # The card's own picture: the PNG itself, or a CHARX archive's embedded main icon.
    image = data if data.startswith(PNG_SIGNATURE) else None
    if data.startswith(b"PK"):
        image = charx_icon(data, card.data, Path(card_file).name, limits)
    return card_to_png(card, image, limits=limits)


def show_card(
    card_file: str | Path,
    *,
    user: str = DEFAULT_USER,
    session_id: str = "show",
    messages: Sequence[str] = (),
    limits: CardLimits = DEFAULT_LIMITS,
) -> str:
    """The rendered prompt of a card file, as the model would get it (``valis personas show``).

    Raises:
        CardError: The file is not a usable card.
    """
    card = read_card(card_file, limits=limits)
    return render_card_prompt(card, user=user, session_id=session_id, messages=messages).text()
