"""The one error a character card can raise.

    ValisError
    └── ConfigError (also ValueError)
        └── PersonaError
            └── CardError      (this module: a card file that cannot be used)

Every failure while reading, parsing or writing a card (bad container, bomb,
zip-slip, invalid base64/UTF-8/JSON, a wrong field type) becomes a ``CardError``
whose message starts with the file name, so a store can report it and go on.
"""

from __future__ import annotations

from .._errors import PersonaError

__all__ = ["CardError"]


class CardError(PersonaError):
    """A character card cannot be read, parsed or written.

    Attributes:
        source: The file (or label) the card came from.
        problem: What is wrong, without the file name.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
