"""The one error a character card can raise: ``CardError``, defined in ``valis_actors._errors``.

    ValisError
    └── ConfigError (also ValueError)
        └── PersonaError
            └── CardError      (a card file that cannot be used)

Every failure while reading, parsing or writing a card (bad container, bomb,
zip-slip, invalid base64/UTF-8/JSON, a wrong field type) becomes a ``CardError``
whose message starts with the file name, so a store can report it and go on.
"""

from __future__ import annotations

from .._errors import CardError

__all__ = ["CardError"]
