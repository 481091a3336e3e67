"""Small helpers with no dependencies of ours: the public-constructor guard, module fix-up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = ["NoPublicConstructor", "fixup_module_metadata"]

T = TypeVar("T")


class NoPublicConstructor(type):
    """A metaclass for classes that users get from an ``open_*`` function, never build.

    ``Cls(...)`` raises ``TypeError``; the library builds instances with ``Cls._create(...)``
    (trio's pattern for ``Nursery`` and ``CancelScope`` internals).
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
            "use `async with valis_actors.open_runtime(config) as runtime`"
        )

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


def fixup_module_metadata(module_name: str, namespace: dict[str, Any], names: Iterable[str]) -> None:
    """Make re-exported objects report their public home (``valis_actors.ValisError``).

    attrs classes keep their defining module: attrs and cattrs resolve their string
    annotations in that module's namespace, which the public package does not mirror.
    """
    for name in names:
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith(module_name + ".") and not hasattr(obj, "__attrs_attrs__"):
            try:
                obj.__module__ = module_name
            except (AttributeError, TypeError):  # pragma: no cover - builtins and slots
                continue
