"""What the kit needs beyond the runtime, and the error that says how to get it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["INSTALL_HINT", "missing_extra", "require"]

INSTALL_HINT = 'pip install "valis_actors[testing]"'


def missing_extra(feature: str, error: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error to raise when ``feature`` of the kit cannot import a package of the extra."""
    package = (error.name or "a package").split(".")[0]
    return ModuleNotFoundError(
        f"{feature} needs {package}, which is not installed; install the testing kit's extra: {INSTALL_HINT}",
        name=error.name,
    )


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``; if its package is missing, say which extra installs it.

    Raises:
        ModuleNotFoundError: The package is not installed (the message names the extra).
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the package itself: a module missing *inside* an installed package is a different bug.
        if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        raise missing_extra(feature, exc) from None
